import type { Argv } from 'yargs';
import type { Instance } from '../tasks/instance.js';

/**
 * What every command reads alike at the edge: numbers, `--instance-ids`, the sandbox's counts.
 * A bad value is an ArgumentError: a message naming the flag, what was given and what to give,
 * printed without a stack (src/cli/errors.ts).
 */
export class ArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArgumentError';
  }
}

/** The text given for `--flag` on the command line (`--flag v` or `--flag=v`), the last if repeated. */
function givenText(raw: readonly string[], flag: string): string | undefined {
  let found: string | undefined;
  raw.forEach((arg, i) => {
    if (arg === flag && i + 1 < raw.length) found = raw[i + 1];
    else if (arg.startsWith(`${flag}=`)) found = arg.slice(flag.length + 1);
  });
  return found;
}

/**
 * yargs reads `--iteration x` of a number option as NaN and lets it through: refuse it here,
 * naming the flag and the text, before any command acts on it.
 */
export function refuseNonNumbers(argv: Record<string, unknown>, raw: readonly string[]): void {
  for (const [key, value] of Object.entries(argv)) {
    // yargs keeps a camelCase copy of every dashed key: the dashed one is the flag as typed.
    if (key === '$0' || key === '_' || (key.length > 1 && /[A-Z]/.test(key))) continue;
    const values: unknown[] = Array.isArray(value) ? value : [value];
    if (!values.some((v) => typeof v === 'number' && Number.isNaN(v))) continue;
    const flag = key.length === 1 ? `-${key}` : `--${key}`;
    const given = givenText(raw, flag);
    throw new ArgumentError(`${flag}: ${given === undefined ? 'a number is missing' : `${JSON.stringify(given)} is not a number`}; give a number, e.g. ${flag} 2`);
  }
}

/** Counts that must be whole and at least 1 (`--concurrency 0` would wait forever). */
export function requirePositiveInts<T extends object>(args: T, keys: readonly (keyof T & string)[]): void {
  for (const key of keys) {
    const value = args[key];
    if (typeof value === 'number' && !(Number.isInteger(value) && value >= 1)) {
      throw new ArgumentError(`--${key}: ${value} is not a whole number of at least 1; e.g. --${key} 2`);
    }
  }
}

/** The `--instance-ids a,b` option (repeatable), shared by verify, tasks validate and show. */
export function withInstanceIds<T>(y: Argv<T>, what: string): Argv<T & { 'instance-ids'?: string[] }> {
  return y.option('instance-ids', {
    type: 'string',
    array: true,
    describe: `only these instances, comma-separated (repeatable): ${what}`,
  }) as unknown as Argv<T & { 'instance-ids'?: string[] }>;
}

/** The ids of `--instance-ids` in the order given, each once; null when the option is absent. */
export function parseInstanceIds(given: readonly string[] | undefined): string[] | null {
  if (given === undefined) return null;
  const ids = [...new Set(given.flatMap((item) => String(item).split(',')).map((id) => id.trim()).filter((id) => id !== ''))];
  if (ids.length === 0) throw new ArgumentError('--instance-ids: name at least one instance id, e.g. --instance-ids django__django-11099,sympy__sympy-20590');
  return ids;
}

/**
 * The instances `--instance-ids` picks, in the file's order; every id must be known. `source`
 * names where the ids were looked up (a file, a run), and `flag` the option they came from, for the message.
 */
export function pickInstances<T extends Pick<Instance, 'instance_id'>>(instances: readonly T[], ids: readonly string[] | null, source: string, flag = '--instance-ids'): T[] {
  if (ids === null) return [...instances];
  const known = new Set(instances.map((i) => i.instance_id));
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new ArgumentError(
      `${flag}: ${unknown.length === 1 ? 'instance' : `${unknown.length} instances`} not in ${source}: ${unknown.join(', ')}` +
        `; give ids of its instances (${[...known].slice(0, 3).join(', ')}${known.size > 3 ? ', …' : ''})`,
    );
  }
  const wanted = new Set(ids);
  return instances.filter((i) => wanted.has(i.instance_id));
}
