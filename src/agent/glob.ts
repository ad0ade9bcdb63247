import { SearchRequestError } from './search-request-error.js';

/**
 * The glob language of a search's file_pattern, as a RegExp (globToRegExp) and as a linear-time
 * matcher (globMatcher) for patterns that come from the model.
 */

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * A glob as a RegExp over repository-relative paths (`/`-separated): `*` and `?` stay inside one
 * path segment, `**` crosses segments (`**​/x.py` matches x.py at any depth, the root included),
 * `[abc]`, `[!abc]` and `{a,b}` work as in shells. A glob without `/` matches the basename in any
 * directory (`units.py`, `*.py`); one with `/` is anchored at the repository root. An empty glob
 * matches everything. A backtracking RegExp: never run it on a pattern from the model against
 * long paths — search() uses globMatcher, the same language run in linear time.
 */
export function globToRegExp(glob: string): RegExp {
  let pattern = glob.trim();
  while (pattern.startsWith('./')) pattern = pattern.slice(2);
  pattern = pattern.replace(/^\/+/, '');
  if (pattern === '') return /^.*$/;
  const body = regExpSource(parseGlob(pattern));
  if (!pattern.includes('/')) return new RegExp(`^(?:.*/)?${body}$`);
  return new RegExp(`^${body}$`);
}

/** Longest file_pattern a search accepts. */
export const MAX_GLOB_LENGTH = 1000;

/** One piece of a glob: a character (its RegExp source and its test), a star, a double star, directories, or braces. */
type GlobNode =
  | { kind: 'char'; source: string; test: (c: string) => boolean }
  | { kind: 'star' | 'any' | 'dirs' }
  | { kind: 'alt'; options: GlobNode[][] };

const notSlash = (c: string) => c !== '/';
/** What `.` matches in a RegExp without the s flag. */
const notLineBreak = (c: string) => c !== '\n' && c !== '\r' && c !== '\u2028' && c !== '\u2029';

/** What the pieces other than characters match, as RegExp source. */
const SOURCE = { star: '[^/]*', any: '.*', dirs: '(?:[^/]*/)*' } as const;

/** The glob's pieces as RegExp source: the language globMatcher runs, for globToRegExp. */
function regExpSource(nodes: readonly GlobNode[]): string {
  return nodes.map((node) => (node.kind === 'char' ? node.source : node.kind === 'alt' ? `(?:${node.options.map(regExpSource).join('|')})` : SOURCE[node.kind])).join('');
}

/** A character matched as itself. */
function literal(char: string): GlobNode {
  return { kind: 'char', source: escapeRegExp(char), test: (c) => c === char };
}

/**
 * The glob's pieces: `\x` is x itself; `**` followed by `/` at the start of a segment is any number
 * of directories (none included), any other `**` anything, `*` anything but `/`, `?` one character
 * but `/`; `[abc]`, `[!abc]`, `{a,b}`; an unclosed `[` or `{` is itself.
 */
function parseGlob(glob: string): GlobNode[] {
  const nodes: GlobNode[] = [];
  let i = 0;
  while (i < glob.length) {
    const char = glob[i]!;
    if (char === '\\' && i + 1 < glob.length) {
      nodes.push(literal(glob[i + 1]!));
      i += 2;
    } else if (char === '*') {
      let end = i;
      while (glob[end] === '*') end++;
      const atSegmentStart = i === 0 || glob[i - 1] === '/';
      if (end - i >= 2 && atSegmentStart && glob[end] === '/') {
        nodes.push({ kind: 'dirs' });
        i = end + 1;
      } else {
        nodes.push({ kind: end - i >= 2 ? 'any' : 'star' });
        i = end;
      }
    } else if (char === '?') {
      nodes.push({ kind: 'char', source: '[^/]', test: notSlash });
      i++;
    } else if (char === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        nodes.push(literal('['));
        i++;
        continue;
      }
      let content = glob.slice(i + 1, close);
      const negate = content.startsWith('!') || content.startsWith('^');
      if (negate) content = content.slice(1);
      const source = `[${negate ? '^' : ''}${content.replace(/[\\\]^[]/g, '\\$&')}]`;
      // One character against a class: the RegExp cannot backtrack (it throws on a bad range).
      const single = new RegExp(`^${source}$`);
      nodes.push({ kind: 'char', source, test: (c) => single.test(c) });
      i = close + 1;
    } else if (char === '{') {
      const close = glob.indexOf('}', i + 1);
      if (close < 0) {
        nodes.push(literal('{'));
        i++;
        continue;
      }
      nodes.push({ kind: 'alt', options: glob.slice(i + 1, close).split(',').map(parseGlob) });
      i = close + 1;
    } else {
      nodes.push(literal(char));
      i++;
    }
  }
  return nodes;
}

interface NfaState {
  edges: { test: (c: string) => boolean; to: number }[];
  eps: number[];
}

/**
 * A glob as a predicate on repository-relative paths, with exactly globToRegExp's semantics but
 * run as a state machine: time linear in the path for any pattern. A backtracking RegExp of a
 * glob such as `*a*a*a*a*a*a*a*a*b` takes minutes on one long file name, and file_pattern comes
 * from the model. Throws SearchRequestError for a pattern that is too long or has a bad class.
 */
export function globMatcher(glob: string): (path: string) => boolean {
  if (glob.length > MAX_GLOB_LENGTH) throw new SearchRequestError(`file_pattern is longer than ${MAX_GLOB_LENGTH} characters`);
  let pattern = glob.trim();
  while (pattern.startsWith('./')) pattern = pattern.slice(2);
  pattern = pattern.replace(/^\/+/, '');
  if (pattern === '') return () => true;
  let body: GlobNode[];
  try {
    body = parseGlob(pattern);
  } catch (err) {
    throw new SearchRequestError(`file_pattern ${JSON.stringify(pattern.slice(0, 80))} is not a valid glob (${(err as Error).message})`);
  }
  const states: NfaState[] = [];
  const state = (): number => states.push({ edges: [], eps: [] }) - 1;
  const loop = (from: number, test: (c: string) => boolean): number => {
    const head = state();
    const out = state();
    states[from]!.eps.push(head);
    states[head]!.edges.push({ test, to: head });
    states[head]!.eps.push(out);
    return out;
  };
  const build = (nodes: readonly GlobNode[], from: number): number => {
    let at = from;
    for (const node of nodes) {
      if (node.kind === 'char') {
        const to = state();
        states[at]!.edges.push({ test: node.test, to });
        at = to;
      } else if (node.kind === 'star') {
        at = loop(at, notSlash);
      } else if (node.kind === 'any') {
        at = loop(at, notLineBreak);
      } else if (node.kind === 'dirs') {
        // (?:[^/]*\/)*
        const head = state();
        const inner = state();
        const out = state();
        states[at]!.eps.push(head);
        states[head]!.eps.push(out, inner);
        states[inner]!.edges.push({ test: notSlash, to: inner }, { test: (c) => c === '/', to: head });
        at = out;
      } else if (node.kind === 'alt') {
        const out = state();
        for (const option of node.options) {
          const start = state();
          states[at]!.eps.push(start);
          states[build(option, start)]!.eps.push(out);
        }
        at = out;
      }
    }
    return at;
  };
  const start = state();
  let bodyStart = start;
  if (!pattern.includes('/')) {
    // ^(?:.*\/)?body$: the basename in any directory
    bodyStart = state();
    states[start]!.eps.push(bodyStart);
    const dirs = loop(start, notLineBreak);
    states[dirs]!.edges.push({ test: (c) => c === '/', to: bodyStart });
  }
  const accept = build(body, bodyStart);
  const closure = (set: Set<number>): Set<number> => {
    const stack = [...set];
    while (stack.length > 0) {
      for (const next of states[stack.pop()!]!.eps) {
        if (!set.has(next)) {
          set.add(next);
          stack.push(next);
        }
      }
    }
    return set;
  };
  const initial = closure(new Set([start]));
  return (path: string) => {
    let current = initial;
    for (let i = 0; i < path.length && current.size > 0; i++) {
      const c = path[i]!;
      const next = new Set<number>();
      for (const s of current) for (const edge of states[s]!.edges) if (edge.test(c)) next.add(edge.to);
      current = closure(next);
    }
    return current.has(accept);
  };
}
