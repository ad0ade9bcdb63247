import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The real path never imports the test doubles (src/doubles/: the SIMULATED policy, trainer,
 * verifier and the tools' stand-ins), and the factories of finetune/ and serve/ live apart from
 * the interfaces their implementations import. Read from the import statements of src/**\/*.ts.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOUBLES = 'src/doubles/';
/** The CLI files that wire a double in (rft sim serve; the loop's SIMULATED policy starter). */
const WIRING = new Set(['src/cli/sim.ts']);

/** `import … from 'x'`, `export … from 'x'`, `import 'x'`, `import('x')`: the specifier x. */
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function specifiers(source: string): string[] {
  // Comments may quote an import; drop them first (block, then line comments not inside a string start).
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(IMPORT)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return tsFiles(rel);
    return entry.name.endsWith('.ts') ? [rel] : [];
  });
}

/** file → the repository files it imports (relative specifiers only; packages are not ours). */
function importGraph(files: readonly string[], read: (file: string) => string): Map<string, string[]> {
  return new Map(
    files.map((file) => [
      file,
      specifiers(read(file))
        .filter((s) => s.startsWith('.'))
        .map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)).replace(/\.js$/, '.ts')),
    ]),
  );
}

function doubleImporters(graph: Map<string, string[]>, allowed: ReadonlySet<string>): string[] {
  return [...graph]
    .filter(([file]) => !file.startsWith(DOUBLES) && !allowed.has(file))
    .flatMap(([file, deps]) => deps.filter((d) => d.startsWith(DOUBLES)).map((d) => `${file} → ${d}`));
}

/** Cycles among the files under `folder` (each reported once, as the path that closes it). */
function cyclesWithin(graph: Map<string, string[]>, folder: string): string[] {
  const inside = (f: string) => f.startsWith(folder);
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, trail: string[]) => {
    state.set(file, 'open');
    for (const dep of (graph.get(file) ?? []).filter(inside)) {
      if (state.get(dep) === 'open') cycles.push([...trail.slice(trail.indexOf(dep)), dep].join(' → '));
      else if (!state.has(dep)) visit(dep, [...trail, dep]);
    }
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].filter(inside).sort()) if (!state.has(file)) visit(file, [file]);
  return cycles;
}

const srcGraph = () => importGraph(tsFiles('src'), (file) => readFileSync(path.join(ROOT, file), 'utf8'));

describe('import graph of src/', () => {
  it('no file outside src/doubles/ imports a test double, except the CLI wiring', () => {
    const graph = srcGraph();
    expect(graph.size).toBeGreaterThan(100);
    expect([...graph.keys()].filter((f) => f.startsWith(DOUBLES)).length).toBeGreaterThan(5);
    expect(doubleImporters(graph, WIRING)).toEqual([]);
    // The wiring file really is the one door: without it allowed, it is reported.
    expect(doubleImporters(graph, new Set())).toEqual(expect.arrayContaining([expect.stringMatching(/^src\/cli\/sim\.ts → src\/doubles\//)]));
  });

  it('finetune/ and serve/ have no import cycles (factories apart from the interfaces)', () => {
    const graph = srcGraph();
    expect(cyclesWithin(graph, 'src/finetune/')).toEqual([]);
    expect(cyclesWithin(graph, 'src/serve/')).toEqual([]);
    expect(graph.get('src/finetune/create-trainer.ts')).toContain('src/finetune/trainer.ts');
    expect(graph.get('src/serve/create-server.ts')).toContain('src/serve/server.ts');
  });

  it('reads every kind of import statement, and finds a cycle and a forbidden import when there is one', () => {
    const sources: Record<string, string> = {
      'src/a/x.ts': "import type { T } from './y.js';\n// import { no } from '../doubles/fake.js';\nexport { z } from '../b/z.js';",
      'src/a/y.ts': "import {\n  x,\n} from './x.js';\nconst lazy = () => import('../doubles/sim.js');",
      'src/b/z.ts': "import '../doubles/side-effect.js';\nimport fs from 'node:fs';",
      'src/doubles/sim.ts': "import { x } from '../a/x.js';",
    };
    const graph = importGraph(Object.keys(sources), (f) => sources[f]!);
    expect(graph.get('src/a/x.ts')).toEqual(['src/a/y.ts', 'src/b/z.ts']);
    expect(graph.get('src/b/z.ts')).toEqual(['src/doubles/side-effect.ts']);
    expect(doubleImporters(graph, new Set(['src/b/z.ts']))).toEqual(['src/a/y.ts → src/doubles/sim.ts']);
    expect(cyclesWithin(graph, 'src/a/')).toEqual(['src/a/x.ts → src/a/y.ts → src/a/x.ts']);
    expect(cyclesWithin(graph, 'src/b/')).toEqual([]);
  });

  it('rft status and rft show load no client, container, tokenizer or index package before their work (lazy commands)', () => {
    // Loaded at start-up these cost more than the commands' own work on a run of any size
    // (bench/RESULTS.md, "Reading at SWE-Gym size"); type-only and dynamic imports load nothing.
    const heavy = ['openai', 'dockerode', 'js-tiktoken', '@huggingface/tokenizers', '@huggingface/jinja', 'minisearch', 'web-tree-sitter', 'hyparquet', 'fast-xml-parser'];
    const loadedAtStart = (entry: string): Map<string, string> => {
      const reached = new Map<string, string>();
      const seen = new Set([entry]);
      const queue = [[entry, entry]];
      while (queue.length > 0) {
        const [file, trail] = queue.shift()!;
        const code = readFileSync(path.join(ROOT, file!), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
        for (const m of code.matchAll(/^(?:import|export)\s(?!type\s)[^'"`;]*?from\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)) {
          const spec = (m[1] ?? m[2])!;
          if (!spec.startsWith('.')) {
            const pkg = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
            if (!reached.has(pkg)) reached.set(pkg, `${trail} → ${pkg}`);
            continue;
          }
          const dep = path.posix.normalize(path.posix.join(path.posix.dirname(file!), spec)).replace(/\.js$/, '.ts');
          if (!seen.has(dep)) {
            seen.add(dep);
            queue.push([dep, `${trail} → ${dep}`]);
          }
        }
      }
      return reached;
    };
    for (const [entry, light] of [['src/cli/main.ts', 'yargs'], ['src/cli/status.ts', 'zod'], ['src/cli/show.ts', 'zod']] as const) {
      const reached = loadedAtStart(entry);
      expect(reached.has(light)).toBe(true);
      expect(heavy.filter((p) => reached.has(p)).map((p) => reached.get(p))).toEqual([]);
    }
    // The run command does load them (the check sees through its imports).
    expect(loadedAtStart('src/cli/run.ts').has('dockerode')).toBe(true);
  });
});
