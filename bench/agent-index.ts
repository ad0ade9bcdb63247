/**
 * The agent's code index on a large real Python tree (Debian's python3-sympy, unpacked at bench
 * time into a temporary folder: `apt-get download python3-sympy && dpkg -x`; nothing is
 * committed). Side by side in one run:
 *   before: the index built on the event loop (as rft did), searched on it;
 *   after:  the index built and searched in a worker thread (WorkerCodeIndex).
 * Figures: build time, peak RSS of the process, search latency p50/p95 per kind, and the event
 * loop's longest stall while an index builds with 16 simulated LLM calls in flight (each a timer
 * of 50 ms, re-armed as it fires; the stall is how late a timer fires).
 *
 *   node dist-bench/bench/agent-index.js [--tree DIR]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CodeIndex, type AgentIndex } from '../src/agent/code-index.js';
import { PythonSpanParser } from '../src/agent/python-spans.js';
import { WorkerCodeIndex } from '../src/agent/worker-index.js';

function sympyTree(): string {
  const flag = process.argv.indexOf('--tree');
  if (flag >= 0) return process.argv[flag + 1]!;
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

function rssSampler(): { stop: () => number } {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage.rss());
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

async function measure(name: string, build: () => Promise<AgentIndex>): Promise<Record<string, string | number>> {
  if (global.gc) global.gc();
  const rss = rssSampler();
  const calls = inFlightCalls();
  const started = performance.now();
  const index = await build();
  const buildMs = performance.now() - started;
  // Let the timers a synchronous build held back fire, so their lateness is counted.
  await new Promise((resolve) => setTimeout(resolve, 120));
  const stall = calls.stop();
  const peak = rss.stop();
  const row: Record<string, string | number> = { variant: name, build_s: +(buildMs / 1000).toFixed(2), stall_ms: Math.round(stall), peak_rss_mb: Math.round(peak / 2 ** 20) };
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
  if (index instanceof WorkerCodeIndex) await index.close();
  return row;
}

async function main(): Promise<void> {
  const tree = sympyTree();
  if (!existsSync(tree)) throw new Error(`no tree at ${tree}`);
  const files = readTree(tree);
  const bytes = [...files.values()].reduce((n, t) => n + t.length, 0);
  console.log(`tree: ${tree}: ${files.size} Python files, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  const parser = await PythonSpanParser.create();
  const rows = [];
  rows.push(await measure('before: event loop', () => CodeIndex.build(files, parser)));
  rows.push(await measure('after: worker thread', () => WorkerCodeIndex.start(files, parser)));
  const keys = Object.keys(rows[0]!);
  console.log(`| ${keys.join(' | ')} |`);
  console.log(`|${keys.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${keys.map((k) => row[k]).join(' | ')} |`);
  const [before, after] = rows as [Record<string, number>, Record<string, number>];
  console.log(`stall ratio before/after: ${(before.stall_ms! / Math.max(1, after.stall_ms!)).toFixed(1)}×`);
}

await main();
