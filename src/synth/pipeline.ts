import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type Docker from 'dockerode';
import pLimit from 'p-limit';
import { LABEL, reapContainers } from '../sandbox/container.js';
import { writeFileAtomic, writeJsonAtomic } from '../store/atomic.js';
import { Ledger, readRecords } from '../store/ledger.js';
import { canonicalJson } from '../util/canonical.js';
import { InstanceSchema, type Instance } from '../tasks/instance.js';
import { environmentSeed, synthEnvironment, type Environment, type SynthSettings } from './environment.js';
import { REJECTIONS } from './judge.js';
import { SynthRecordSchema, SynthResumeError, type CandidateRecord, type SynthRecord, type TraceRecord } from './records.js';
import { yieldReport, formatYieldReport, type YieldReport } from './report.js';

export interface SynthOptions extends SynthSettings {
  docker: Docker;
  sources: readonly Instance[];
  /** Image of a source instance (its environment). */
  imageFor: (instance: Instance) => string;
  out: string;
  concurrency: number;
  /** Stop starting candidates after this many seconds; unfinished environments go on in a later run of the same command. */
  maxSeconds?: number;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

export interface SynthResult {
  tasks: Instance[];
  report: YieldReport;
  ledger: string;
  reportFile: string;
}

/** The ledger and report files beside the task file. */
export const ledgerFile = (out: string) => `${out}.ledger.jsonl`;

/** The rft.run label of a synth run's containers (one per ledger, so a resumed run reaps its killed predecessor's). */
export const synthRunLabel = (out: string) => `synth-${createHash('sha256').update(ledgerFile(out)).digest('hex').slice(0, 12)}`;
export const reportFile = (out: string) => `${out}.report.json`;

/**
 * Source instances → environments: one per (repository, base commit), named after its first
 * instance (several tasks of one repository at one commit are one environment: tracing and
 * trying bugs there again would only make duplicates).
 */
export function environmentsOf(sources: readonly Instance[], imageFor: (i: Instance) => string): Environment[] {
  const byCommit = new Map<string, Environment>();
  for (const source of sources) {
    const key = `${source.repo.toLowerCase()}@${source.base_commit}`;
    if (!byCommit.has(key)) byCommit.set(key, { id: source.instance_id, source, image: imageFor(source) });
  }
  return [...byCommit.values()];
}

/** What decides the tasks of a run; a resume with a different fingerprint is refused rather than mixed. */
function fingerprint(options: SynthOptions, envs: readonly Environment[]): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        seed: options.seed,
        limit: options.limit,
        maxCandidates: options.maxCandidates,
        strategies: options.strategies.map((s) => s.name),
        bounds: options.bounds,
        timeoutS: options.timeoutS,
        traceScope: options.traceScope,
        imageTemplate: options.imageTemplate,
        envs: envs.map((e) => [e.id, e.image]),
      }),
    )
    .digest('hex');
}

/**
 * `rft tasks synth`: every environment synthesized (up to `concurrency` containers at once), each
 * step recorded in the ledger as it finishes; then the task file and the yield report, written
 * from the ledger alone — environments in the order of the source file, each one's tasks in its
 * candidates' order, later duplicates (the same normalised diff in another environment of the
 * same repository) dropped. The same seed and settings give the same file, whether or not the run
 * was interrupted.
 */
export async function synthesize(options: SynthOptions): Promise<SynthResult> {
  const envs = environmentsOf(options.sources, options.imageFor);
  const file = ledgerFile(options.out);
  const print = options.progress ?? (() => {});
  const { ledger, droppedTornBytes } = Ledger.open<SynthRecord>(file, SynthRecordSchema);
  if (droppedTornBytes > 0) print(`synth: dropped a torn last line (${droppedTornBytes} bytes) from ${file}`);
  const labels = { [LABEL.run]: synthRunLabel(options.out) };
  try {
    const records = existsSync(file) ? [...readRecords(file, SynthRecordSchema)] : [];
    const print0 = fingerprint(options, envs);
    const settings = records.find((r) => r.type === 'settings');
    if (settings && settings.fingerprint !== print0) {
      throw new SynthResumeError(`${file} was written by a synth run with other settings (seed, limits, strategies or sources); use another --out or remove it`);
    }
    if (!settings) ledger.append({ type: 'settings', fingerprint: print0 });
    // Containers of an earlier, killed run of this ledger.
    await reapContainers(options.docker, labels);

    const traces = new Map<string, TraceRecord>();
    const candidates = new Map<string, Map<number, CandidateRecord>>();
    const finished = new Set<string>();
    for (const r of records) {
      if (r.type === 'trace') traces.set(r.env, r);
      else if (r.type === 'candidate') (candidates.get(r.env) ?? candidates.set(r.env, new Map()).get(r.env)!).set(r.index, r);
      else if (r.type === 'env_done') finished.add(r.env);
    }
    const total = envs.length * options.maxCandidates;
    let doneCount = [...candidates.values()].reduce((n, m) => n + m.size, 0);
    let validCount = [...candidates.values()].reduce((n, m) => n + [...m.values()].filter((c) => c.outcome.valid).length, 0);
    const started = Date.now();
    const doneAtStart = doneCount;
    const limit = pLimit(options.concurrency);
    const stopped: string[] = [];
    await Promise.all(
      envs.map((env) =>
        limit(async () => {
          if (finished.has(env.id)) return;
          print(`synth: ${env.id}: ${traces.has(env.id) ? 'resuming' : 'tracing the tests'}`);
          let error: string | null = null;
          try {
            const ended = await synthEnvironment(
              options.docker,
              env,
              options,
              { trace: traces.get(env.id) ?? null, candidates: candidates.get(env.id) ?? new Map() },
              {
                labels,
                stopping: () => options.maxSeconds !== undefined && Date.now() - started > options.maxSeconds * 1000,
                append: (record) => {
                  ledger.append(record);
                  if (record.type === 'trace') print(`synth: ${env.id}: ${record.pass_before.length} passing tests, ${record.functions.length} functions traced (${record.seconds.toFixed(0)} s)`);
                },
                onCandidate: (record) => {
                  doneCount++;
                  if (record.outcome.valid) validCount++;
                  const rate = (Date.now() - started) / 1000 / Math.max(1, doneCount - doneAtStart);
                  const eta = Math.max(0, total - doneCount) * rate;
                  const what = record.outcome.valid ? 'valid' : record.outcome.reason;
                  print(`synth: ${env.id} #${record.index} ${record.strategy}/${record.kind}: ${what} (${record.seconds.toFixed(1)} s) | ${validCount} valid, ${doneCount} tried, ETA ≤ ${formatSeconds(eta)}`);
                },
              },
            );
            if (ended === 'stopped') {
              stopped.push(env.id);
              return;
            }
          } catch (err) {
            error = err instanceof Error ? err.message : String(err);
            print(`synth: ${env.id}: failed: ${error}`);
          }
          ledger.append({ type: 'env_done', env: env.id, error });
        }),
      ),
    );
    if (stopped.length > 0) print(`synth: time is up: ${stopped.join(', ')} not finished; run the same command again to go on`);
  } finally {
    ledger.close();
  }
  return writeOutputs(options, envs, file);
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The task file and the yield report, from the ledger. */
export function writeOutputs(options: Pick<SynthOptions, 'out' | 'seed'>, envs: readonly Environment[], file: string): SynthResult {
  const records = [...readRecords(file, SynthRecordSchema)];
  const byEnv = new Map<string, CandidateRecord[]>();
  for (const r of records) if (r.type === 'candidate') (byEnv.get(r.env) ?? byEnv.set(r.env, []).get(r.env)!).push(r);
  const keys = new Set<string>();
  const tasks: Instance[] = [];
  const counted: CandidateRecord[] = [];
  for (const env of envs) {
    for (const r of (byEnv.get(env.id) ?? []).sort((a, b) => a.index - b.index)) {
      if (r.outcome.valid && keys.has(`${env.source.repo}\0${r.key}`)) {
        counted.push({ ...r, outcome: { valid: false, reason: 'duplicate', detail: 'the same change was made in an earlier environment' } });
        continue;
      }
      if (r.outcome.valid) {
        keys.add(`${env.source.repo}\0${r.key}`);
        tasks.push(InstanceSchema.parse(r.outcome.instance));
      }
      counted.push(r);
    }
  }
  const traces = records.filter((r): r is TraceRecord => r.type === 'trace');
  const errors = records.flatMap((r) => (r.type === 'env_done' && r.error ? [{ env: r.env, error: r.error }] : []));
  const report = yieldReport(envs, traces, counted, errors);
  writeFileAtomic(options.out, tasks.map((t) => `${JSON.stringify(t)}\n`).join(''));
  writeJsonAtomic(reportFile(options.out), report);
  return { tasks, report, ledger: file, reportFile: reportFile(options.out) };
}

export { environmentSeed, formatYieldReport, REJECTIONS };
