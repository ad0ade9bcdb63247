import { checkServer, checkTrainer } from './checks/commands.js';
import { checkDisk } from './checks/disk.js';
import { checkDocker } from './checks/docker.js';
import { checkContext, checkEndpoints } from './checks/endpoint.js';
import { checkImages } from './checks/images.js';
import { checkOutput } from './checks/output.js';
import { checkTasks } from './checks/tasks.js';
import { checkTokenizer } from './checks/tokenizer.js';
import { DoctorContext, type DoctorOptions } from './context.js';
import type { CheckResult, DoctorReport } from './record.js';

type Check = (ctx: DoctorContext) => Promise<CheckResult[]>;

/**
 * The checks, in the order they are printed. `fast` ones (no registry, no disk walk) also run
 * at the start of `rft run`, before the first LLM call; there the endpoint only has to accept a
 * connection (its model list is the doctor's business).
 */
const CHECKS: { name: string; fast: boolean; run: Check }[] = [
  { name: 'docker', fast: true, run: checkDocker },
  { name: 'tasks', fast: true, run: checkTasks },
  { name: 'images', fast: false, run: checkImages },
  { name: 'endpoint', fast: true, run: (ctx) => checkEndpoints(ctx) },
  { name: 'context', fast: false, run: checkContext },
  { name: 'tokenizer', fast: true, run: checkTokenizer },
  { name: 'trainer', fast: true, run: checkTrainer },
  { name: 'server', fast: false, run: checkServer },
  { name: 'output', fast: false, run: checkOutput },
  { name: 'disk', fast: false, run: checkDisk },
];

export interface RunDoctorOptions extends Partial<Pick<DoctorOptions, 'sample' | 'timeoutMs' | 'env'>> {
  loaded: DoctorOptions['loaded'];
  runsDir: string;
  /** Only the fast checks (rft run). */
  fast?: boolean;
  /** Leave the endpoint out (a resumed run has made its first calls; the endpoint may be M_k's, started later). */
  skipEndpoint?: boolean;
}

/** Network checks give up after this long: the doctor answers in seconds on a machine with nothing running. */
export const DEFAULT_TIMEOUT_MS = 2_000;

/** Runs the checks concurrently; results come back in the table's order. */
export async function runDoctor(options: RunDoctorOptions): Promise<DoctorReport> {
  const started = Date.now();
  const ctx = new DoctorContext({
    loaded: options.loaded,
    runsDir: options.runsDir,
    sample: options.sample ?? null,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    env: options.env ?? process.env,
  });
  const chosen = CHECKS.filter((c) => (!options.fast || c.fast) && !(options.skipEndpoint && c.name === 'endpoint')).map((c) =>
    c.name === 'endpoint' && options.fast ? { ...c, run: (x: DoctorContext) => checkEndpoints(x, { reachableOnly: true }) } : c,
  );
  const results = (
    await Promise.all(
      chosen.map((c) =>
        c.run(ctx).catch((err: unknown): CheckResult[] => [
          { check: c.name, status: 'FAIL', what: c.name, detail: `the check itself failed: ${(err as Error).message}`, fix: 'report this as a bug in rft doctor' },
        ]),
      ),
    )
  ).flat();
  return {
    recipe: options.loaded.file,
    base_dir: options.loaded.baseDir,
    results,
    failed: results.filter((r) => r.status === 'FAIL').length,
    warned: results.filter((r) => r.status === 'warn').length,
    duration_ms: Date.now() - started,
  };
}

/** One line per check: status, what, what was found, and the fix when there is one. */
export function formatResult(result: CheckResult): string {
  const status = result.status.padEnd(4);
  return `${status}  ${result.what}: ${result.detail}${result.fix ? ` — fix: ${result.fix}` : ''}`;
}
