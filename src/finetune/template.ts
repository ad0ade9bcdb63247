/**
 * Command templates of the recipe (finetune.command, serve.command, …): `{name}` placeholders,
 * filled from a fixed set of values. An unknown placeholder is an error that names it, so a typo
 * never reaches a paid run. Shell parameter expansions such as `${HOME}` are left alone (a `{`
 * right after `$` is not a placeholder), and braces around anything that is not a name (awk
 * programs, JSON) are left alone too.
 */

export type TemplateValue = string | number | boolean;
export type TemplateValues = Record<string, TemplateValue>;

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const PLACEHOLDER = /(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)\}/g;

/** The placeholder names a template uses, in order of first use. */
export function templatePlaceholders(template: string): string[] {
  const names: string[] = [];
  for (const match of template.matchAll(PLACEHOLDER)) if (!names.includes(match[1]!)) names.push(match[1]!);
  return names;
}

export interface RenderOptions {
  /** Applied to every substituted value (e.g. shellQuote); the template's own text is kept as is. */
  quote?: (value: string) => string;
  /** Names the template in errors, e.g. `finetune.command`. */
  what: string;
}

export function renderTemplate(template: string, values: TemplateValues, options: RenderOptions): string {
  const unknown = templatePlaceholders(template).filter((name) => !Object.hasOwn(values, name));
  if (unknown.length > 0) {
    const known = Object.keys(values).map((name) => `{${name}}`);
    throw new TemplateError(
      `${options.what}: unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `{${name}}`).join(', ')}` +
        ` (known: ${known.join(', ') || 'none'})`,
    );
  }
  const quote = options.quote ?? ((value: string) => value);
  return template.replace(PLACEHOLDER, (_match, name: string) => quote(formatValue(values[name]!)));
}

/** Numbers as JavaScript prints them (2e-5 → 0.00002, 1e-7 → 1e-7), booleans as true/false. */
export function formatValue(value: TemplateValue): string {
  return typeof value === 'string' ? value : String(value);
}

/**
 * Quotes a value for /bin/sh: left bare when it is made only of characters the shell never
 * interprets (so a template that already quotes `'{dataset}'` stays correct), else single-quoted.
 */
export function shellQuote(value: string): string {
  if (value !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `{hp.NAME}` values from the recipe's hyperparameters. */
export function hyperparameterValues(hyperparameters: Record<string, TemplateValue>): TemplateValues {
  const values: TemplateValues = {};
  for (const [name, value] of Object.entries(hyperparameters)) values[`hp.${name}`] = value;
  return values;
}
