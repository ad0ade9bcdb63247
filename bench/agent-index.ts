/**
 * The agent's code index on a large real Python tree (Debian's python3-sympy, unpacked at bench
 * time into a temporary folder: `apt-get download python3-sympy && dpkg -x`; nothing is
 * committed) and on a neighbouring tree made from it as a neighbouring base commit would be (a
 * few dozen files changed, two added, two removed). Every variant is a build in a worker thread
 * (WorkerCodeIndex, as the loop runs it), each in its own process so that its peak RSS is its own
 * (getrusage's maxrss: the snapshot on the main thread plus the worker), side by side in one run:
 *   no cache:        the index built from every file (rft before the index cache);
 *   cold cache:      the first tree with an empty cache (every file parsed and its entry written);
 *   warm, neighbour: the neighbouring tree with the cache the cold build left (the case of the
 *                    next instance of the same repository);
 *   warm, same tree: the first tree again.
 * Figures: build wall time and CPU (the process's, worker included), peak RSS, the cache's hits,
 * search latency p50/p95 per kind, and the event loop's longest stall while the index builds
 * with 16 simulated LLM calls in flight (timers of 50 ms; the stall is how late one fires).
 *
 *   node --expose-gc dist-bench/bench/agent-index.js [--tree DIR] [--cache DIR]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { PythonSpanParser } from '../src/agent/python-spans.js';
import { WorkerCodeIndex } from '../src/agent/worker-index.js';
import { countTokens } from '../src/util/tokens.js';

function arg(name: string): string | undefined {
  const flag = process.argv.indexOf(name);
  return flag >= 0 ? process.argv[flag + 1] : undefined;
}

function sympyTree(): string {
  const given = arg('--tree');
  if (given) return given;
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-bench-sympy-'));
  execFileSync('apt-get', ['download', 'python3-sympy'], { cwd: dir, stdio: 'ignore' });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'))!;
  execFileSync('dpkg', ['-x', deb, 'x'], { cwd: dir });
  return path.join(dir, 'x/usr/lib/python3/dist-packages');
}

function readTree(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const rel of readdirSync(root, { recursive: true, encoding: 'utf8' }).sort()) {
    const full = path.join(root, rel);
    if (!rel.endsWith('.py') || !statSync(full).isFile()) continue;
    files.set(rel.split(path.sep).join('/'), readFileSync(full, 'utf8'));
  }
  return files;
}

/** Files of the neighbouring tree that differ from the first. */
const CHANGED = 36;

/**
 * The tree at a neighbouring base commit: CHANGED files spread over the tree edited (a line
 * changed near the top, a function added at the end: every line number below moves), two files
 * added and two removed. Deterministic.
 */
function neighbour(files: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map(files);
  const python = [...files.keys()].filter((p) => p.endsWith('.py') && files.get(p)!.length > 200);
  const step = Math.floor(python.length / (CHANGED + 2));
  for (let i = 0; i < CHANGED; i++) {
    const file = python[i * step]!;
    const text = files.get(file)!;
    const cut = text.indexOf('\n') + 1;
    out.set(file, `${text.slice(0, cut)}# neighbouring commit: ${i}\n${text.slice(cut)}\n\ndef _neighbour_helper_${i}(value, scale=2):\n    """Added by the neighbouring commit."""\n    return value * scale\n`);
  }
  out.delete(python[CHANGED * step]!);
  out.delete(python[CHANGED * step + 1]!);
  out.set('sympy/core/_neighbour_a.py', 'from sympy.core.basic import Basic\n\n\nclass NeighbourA(Basic):\n    def doit(self, **hints):\n        return self\n');
  out.set('sympy/utilities/_neighbour_b.py', 'def neighbour_b(expr):\n    """Returns expr."""\n    return expr\n');
  return out;
}

/** 16 LLM calls in flight: timers that should fire every 50 ms; the worst lateness is the stall. */
function inFlightCalls(): { stop: () => number } {
  let worst = 0;
  let stopped = false;
  for (let i = 0; i < 16; i++) {
    const arm = () => {
      const due = performance.now() + 50;
      setTimeout(() => {
        worst = Math.max(worst, performance.now() - due);
        if (!stopped) arm();
      }, 50);
    };
    arm();
  }
  return {
    stop: () => {
      stopped = true;
      return worst;
    },
  };
}

const QUERIES = {
  class: [['Symbol'], ['Matrix'], ['Integral'], ['Poly'], ['Rational']].map((c) => ({ class_names: c, function_names: [] })),
  function: [['simplify'], ['integrate'], ['solve'], ['factor'], ['series']].map((f) => ({ class_names: [], function_names: f })),
  query: ['simplify trigonometric expression with nested powers', 'matrix determinant of symbolic entries raises error', 'limit at infinity of rational function', 'printing latex of piecewise function', 'solve polynomial equation with rational coefficients'].map((q) => ({ query: q, class_names: [], function_names: [] })),
  snippet: ['def simplify(expr, ratio=1.7', 'def integrate(*args', 'class Symbol(AtomicExpr, Boolean)', 'return self.func(*args)', 'def _eval_is_positive(self)'].map((s) => ({ code_snippet: s, class_names: [], function_names: [] })),
};

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

type Row = Record<string, string | number>;

const VARIANTS = {
  'no cache': { tree: 'first', cache: false },
  'cold cache': { tree: 'first', cache: true },
  'warm, neighbour': { tree: 'neighbour', cache: true },
  'warm, same tree': { tree: 'first', cache: true },
} as const;
type Variant = keyof typeof VARIANTS;

/** One build and its searches, in this process (a child of main). */
async function measure(variant: Variant, treeDir: string, cacheDir: string): Promise<Row> {
  // One snapshot in memory, as the loop holds one per instance (the first tree is not kept beside its neighbour).
  const files = VARIANTS[variant].tree === 'first' ? readTree(treeDir) : neighbour(readTree(treeDir));
  const parser = await PythonSpanParser.create();
  // The loop's thread has its token encoder long before an index is searched (it counts every
  // prompt), and the hits' tokens are counted on the asking thread: built here before the clock.
  countTokens('the encoder, as the loop already has it');
  global.gc?.();
  const calls = inFlightCalls();
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const index = await WorkerCodeIndex.start(files, parser, VARIANTS[variant].cache ? { dir: cacheDir, maxBytes: 2 ** 31 } : null);
  const buildMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  // Let the timers a blocked event loop held back fire, so their lateness is counted.
  await new Promise((resolve) => setTimeout(resolve, 120));
  const stall = calls.stop();
  const stats = index.cacheStats;
  const row: Row = {
    variant,
    files: files.size,
    parsed: stats ? stats.misses : files.size,
    build_s: +(buildMs / 1000).toFixed(2),
    build_cpu_s: +((cpu.user + cpu.system) / 1e6).toFixed(2),
    peak_rss_mb: 0,
    stall_ms: Math.round(stall),
  };
  for (const [kind, requests] of Object.entries(QUERIES)) {
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (const request of requests) {
        const t0 = performance.now();
        await index.search(request);
        times.push(performance.now() - t0);
      }
    }
    row[`${kind}_p50_ms`] = Math.round(percentile(times, 50));
    row[`${kind}_p95_ms`] = Math.round(percentile(times, 95));
  }
  await index.close();
  // The kernel's peak for the process (main thread and worker), build and searches.
  row.peak_rss_mb = Math.round(process.resourceUsage().maxRSS / 1024);
  return row;
}

async function main(): Promise<void> {
  const variant = arg('--variant') as Variant | undefined;
  if (variant) {
    process.stdout.write(`${JSON.stringify(await measure(variant, arg('--tree')!, arg('--cache')!))}\n`);
    return;
  }
  const tree = sympyTree();
  if (!existsSync(tree)) throw new Error(`no tree at ${tree}`);
  const first = readTree(tree);
  const second = neighbour(first);
  const bytes = [...first.values()].reduce((n, t) => n + t.length, 0);
  const differing = [...new Set([...first.keys(), ...second.keys()])].filter((p) => first.get(p) !== second.get(p)).length;
  console.log(`tree: ${tree}: ${first.size} Python files, ${(bytes / 2 ** 20).toFixed(1)} MiB; the neighbouring tree differs in ${differing} files`);
  const cacheDir = arg('--cache') ?? mkdtempSync(path.join(tmpdir(), 'rft-bench-index-cache-'));
  rmSync(cacheDir, { recursive: true, force: true });
  const rows: Row[] = [];
  for (const name of Object.keys(VARIANTS) as Variant[]) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--variant', name, '--tree', tree, '--cache', cacheDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (child.status !== 0) throw new Error(`variant ${name} failed (${child.status})`);
    rows.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!) as Row);
    console.error(`[agent-index] ${name}: ${JSON.stringify(rows.at(-1))}`);
  }
  const cacheBytes = readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).reduce((n, rel) => {
    const full = path.join(cacheDir, rel);
    return statSync(full).isFile() ? n + statSync(full).size : n;
  }, 0);
  const keys = Object.keys(rows[0]!);
  console.log(`| ${keys.join(' | ')} |`);
  console.log(`|${keys.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${keys.map((k) => row[k]).join(' | ')} |`);
  console.log(`cache on disk after the runs: ${(cacheBytes / 2 ** 20).toFixed(1)} MiB`);
  rmSync(cacheDir, { recursive: true, force: true });
}

await main();
