import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The benchmarks (bench/, `npm run bench`) at a tiny size: each prints its table with the
 * expected columns and finite ratios. No wall-clock assertions: the figures are the benchmark's
 * business, this only checks that it runs and reports.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const EXPECTED: Record<string, { columns: string[]; ratios: string[] }> = {
  loop: { columns: ['figure', 'I = 1', 'I = 2'], ratios: ['wall_over_bound', 'wall_over_bound_I2'] },
  dedup: { columns: ['version', 'trajectories', 'container runs', 'runs / trajectory', 'wall s', 's / trajectory'], ratios: ['container_runs_cache_over_naive', 'wall_cache_over_naive'] },
  tokens: { columns: ['figure', 'uncached', 'cached (TokenCounter)'], ratios: ['uncached_share_of_loop_cpu', 'cached_share_of_loop_cpu', 'cached_cpu_over_uncached', 'tokens_per_cpu_s'] },
  scaling: {
    columns: ['C', 'trajectories', 'calls', 'wall s', 'trajectories/min', 'calls/s', 'speedup', '× linear', '× ideal C/ℓ', 'loop CPU ms/call', 'loop CPU', 'sim CPU', 'loop waits for CPU'],
    ratios: ['efficiency_C1', 'efficiency_C2'],
  },
  select: {
    columns: ['pool', 'version', 'trajectories', 'ledger GB', 'time s', 'CPU s', 'CPU wait s', 'peak RSS MB', 'kept', 'examples', 'result'],
    ratios: ['full_stream_seconds_over_20s', 'full_stream_rss_over_1GiB', 'full_scan_gb_per_s', 'small_time_stream_over_naive', 'small_rss_stream_over_naive'],
  },
  scale: {
    columns: ['command', 'layout', 'code', 'trajectories', 'wall s', 'emit step s', 'CPU s', 'peak RSS MB', 'result'],
    ratios: ['whole_over_compact_bytes', 'emit_seconds_full_over_60s', 'max_rss_full_over_1GiB', 'max_rss_measured_over_1GiB'],
  },
};

interface Table {
  id: string;
  title: string;
  columns: string[];
  rows: Array<Array<string | number | null>>;
  ratios: Record<string, number>;
  targets: Array<{ name: string; met: boolean | null; reason: string }>;
}

describe('benchmarks at a tiny size', () => {
  let dir: string;
  let tables: Table[] = [];
  let stdout = '';
  let markdown = '';

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rft-bench-smoke-'));
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'bench/tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
    const run = spawnSync(process.execPath, [path.join(ROOT, 'dist-bench/bench/main.js')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        BENCH_LATENCY_MS: '20',
        BENCH_LOOP_INSTANCES: '2',
        BENCH_LOOP_SAMPLES: '2',
        BENCH_LOOP_IN_FLIGHT: '1,2',
        BENCH_DEDUP_INSTANCES: '1',
        BENCH_SCALING_LEVELS: '1,2',
        BENCH_SCALING_MIN_TRAJECTORIES: '2',
        BENCH_SCALING_PER_SLOT: '1',
        BENCH_SELECT_TRAJECTORIES: '240',
        BENCH_SELECT_SMALL: '60',
        BENCH_SCALE_TRAJECTORIES: '90',
        BENCH_SCALE_OLD: '30',
        BENCH_POOL_DIR: path.join(dir, 'pools'),
        BENCH_RESULTS: path.join(dir, 'RESULTS.md'),
        BENCH_JSON: path.join(dir, 'tables.json'),
      },
    });
    stdout = run.stdout;
    if (run.status !== 0) throw new Error(`npm run bench (tiny) failed with ${run.status}: ${run.stderr.slice(-3000)}`);
    tables = JSON.parse(readFileSync(path.join(dir, 'tables.json'), 'utf8')) as Table[];
    markdown = readFileSync(path.join(dir, 'RESULTS.md'), 'utf8');
  }, 900_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints one table per benchmark, in order', () => {
    expect(tables.map((t) => t.id)).toEqual(['loop', 'scaling', 'dedup', 'select', 'tokens', 'scale']);
    for (const t of tables) expect(stdout).toContain(`== ${t.title}`);
  });

  it.each(Object.keys(EXPECTED))('%s: the expected columns, full rows, finite ratios, targets with reasons', (id) => {
    const table = tables.find((t) => t.id === id)!;
    const expected = EXPECTED[id]!;
    expect(table.columns).toEqual(expected.columns);
    expect(table.rows.length).toBeGreaterThan(0);
    for (const row of table.rows) expect(row).toHaveLength(table.columns.length);
    for (const name of expected.ratios) {
      expect(table.ratios, name).toHaveProperty(name);
      expect(Number.isFinite(table.ratios[name]), `${id}.${name} = ${table.ratios[name]}`).toBe(true);
    }
    for (const value of Object.values(table.ratios)) expect(Number.isFinite(value)).toBe(true);
    for (const target of table.targets) expect(target.reason.length).toBeGreaterThan(0);
  });

  it('the streaming and the naive selection write the same dataset', () => {
    const select = tables.find((t) => t.id === 'select')!;
    expect(select.targets.find((t) => t.name.startsWith('same train.jsonl'))?.met).toBe(true);
    expect(select.rows.every((row) => row.at(-1) === 'ok')).toBe(true);
  });

  it('the real rft commands run on the generated run directory, in both layouts, and the compact one is smaller', () => {
    const scale = tables.find((t) => t.id === 'scale')!;
    expect(scale.rows.map((row) => [row[0], row[1]])).toEqual(
      ['compact', 'whole'].flatMap((layout) => ['loop select/emit on resume (rft resume)', 'rft select --cap 1,2,none', 'rft report', 'rft status'].map((c) => [c, layout])),
    );
    expect(scale.rows.every((row) => row.at(-1) === 'ok')).toBe(true);
    expect(scale.ratios.whole_over_compact_bytes).toBeGreaterThan(5);
  });

  it('the cached verifier runs no more containers than the naive one', () => {
    const dedup = tables.find((t) => t.id === 'dedup')!;
    expect(dedup.ratios.container_runs_cache_over_naive).toBeLessThanOrEqual(1);
  });

  it('writes RESULTS.md with the machine, the date and every target', () => {
    expect(markdown).toMatch(/- Date: \d{4}-\d\d-\d\d/);
    expect(markdown).toMatch(/- Machine: \d+ cores/);
    for (const t of tables) for (const target of t.targets) expect(markdown).toContain(target.name);
  });
});
