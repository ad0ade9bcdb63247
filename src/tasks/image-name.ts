import { IMAGE_PRESETS } from '../recipe/schema.js';

export class ImageNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageNameError';
  }
}

/** What each placeholder of an image template becomes for an instance id. */
const PLACEHOLDERS = {
  id: (id: string) => id,
  id_lower: (id: string) => id.toLowerCase(),
  /** SWE-bench's published images (swebench/…): "__" becomes "_1776_", then lower case. */
  id_swebench: (id: string) => id.replace(/__/g, '_1776_').toLowerCase(),
  /** SWE-Gym's published images: "__" becomes "_s_", then lower case. */
  id_swegym: (id: string) => id.replace(/__/g, '_s_').toLowerCase(),
} as const satisfies Record<string, (id: string) => string>;

type PlaceholderName = keyof typeof PLACEHOLDERS;

const isPreset = (name: string): name is keyof typeof IMAGE_PRESETS => Object.hasOwn(IMAGE_PRESETS, name);
const isPlaceholder = (name: string): name is PlaceholderName => Object.hasOwn(PLACEHOLDERS, name);

/** A preset name's template, or the template itself. */
export function expandImageTemplate(template: string): string {
  return isPreset(template) ? IMAGE_PRESETS[template] : template;
}

/**
 * Checks a template (or preset name) without an instance: every placeholder known, braces
 * balanced, and the name it yields for a typical id a valid image reference. Throws ImageNameError.
 */
export function checkImageTemplate(template: string): void {
  imageNameFor('owner__repo-1', template);
}

/**
 * The Docker image for an instance. `template` is a preset from IMAGE_PRESETS (`swebench`,
 * `swebench-hub`, `swegym`) or a template using {id}, {id_lower}, {id_swebench} and {id_swegym}; `:latest` is added when the
 * name has no tag or digest (a registry port such as localhost:5000/ is not a tag).
 */
export function imageNameFor(instanceId: string, template: string): string {
  const expanded = expandImageTemplate(template);
  const unknown: string[] = [];
  const filled = expanded.replace(/\{([^{}]*)\}/g, (_match, name: string) => {
    if (isPlaceholder(name)) return PLACEHOLDERS[name](instanceId);
    unknown.push(`{${name}}`);
    return '';
  });
  if (unknown.length > 0) {
    throw new ImageNameError(
      `image template "${template}": unknown placeholder ${unknown.join(', ')} (known: {id}, {id_lower}, {id_swebench}, {id_swegym}; presets: ${Object.keys(IMAGE_PRESETS).join(', ')})`,
    );
  }
  if (/[{}]/.test(filled)) {
    throw new ImageNameError(`image template "${template}": unbalanced { or }`);
  }
  const name = hasTagOrDigest(filled) ? filled : `${filled}:latest`;
  const problem = referenceProblem(name);
  if (problem !== null) {
    throw new ImageNameError(`image template "${template}" gives "${name}" for ${instanceId}, which is not a valid image name: ${problem}`);
  }
  return name;
}

/** A tag is a colon in the last path component; a colon before a slash is a registry port. */
function hasTagOrDigest(name: string): boolean {
  if (name.includes('@')) return true;
  const lastComponent = name.slice(name.lastIndexOf('/') + 1);
  return lastComponent.includes(':');
}

// Docker's reference grammar (distribution/reference), without IPv6 hosts.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

function referenceProblem(name: string): string | null {
  let rest = name;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!DIGEST.test(rest.slice(at + 1))) return `bad digest "${rest.slice(at + 1)}"`;
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    const tag = rest.slice(colon + 1);
    if (!TAG.test(tag)) return `bad tag "${tag}" (letters, digits, "_", "." and "-", at most 128)`;
    rest = rest.slice(0, colon);
  }
  if (rest.length > 255) return 'the repository part is longer than 255 characters';
  const components = rest.split('/');
  const first = components[0]!;
  // As Docker decides: the first component is a registry host if it has a dot or a port, or is localhost.
  if (components.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) return `bad registry host "${first}"`;
    components.shift();
  }
  for (const component of components) {
    if (!PATH_COMPONENT.test(component)) {
      return component === ''
        ? 'empty path component'
        : `"${component}" must be lower-case letters and digits separated by ".", "_", "__" or "-"` +
            (/[A-Z]/.test(component) ? ' (use {id_lower}, {id_swebench} or {id_swegym} for ids with upper case)' : '');
    }
  }
  return null;
}
