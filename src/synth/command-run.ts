import { ArgumentError } from '../cli/arguments.js';
import { connectEngine } from '../sandbox/engine.js';
import { parseByteSize } from '../sandbox/limits.js';
import { checkImageTemplate, imageNameFor } from '../tasks/image-name.js';
import type { Instance } from '../tasks/instance.js';
import type { PythonEnvMode } from '../verify/spec.js';
import { chatEndpoint } from './chat.js';
import type { Bounds } from './judge.js';
import { formatYieldReport, synthesize } from './pipeline.js';
import { loadStrategies, writeIssue } from './registry.js';

export interface SynthCommandInput {
  sources: readonly Instance[];
  out: string;
  image: string;
  limits: { memory: string; cpus: number; pids: number };
  pythonEnv: PythonEnvMode;
  limit: number;
  maxCandidates: number;
  seed: number;
  strategies: string[] | null;
  traceScope: 'instance' | 'all';
  bounds: Bounds;
  timeoutS: number;
  concurrency: number;
  maxMinutes: number | null;
  policy: { baseUrl: string; model: string; apiKeyEnv: string } | null;
}

/** `rft tasks synth` once its arguments are read: strategies picked, the run made, the yield printed. */
export async function runSynthCommand(input: SynthCommandInput): Promise<void> {
  checkImageTemplate(input.image);
  const available = await loadStrategies();
  const llm = input.policy ? chatEndpoint({ baseUrl: input.policy.baseUrl, model: input.policy.model, apiKey: process.env[input.policy.apiKeyEnv] ?? null }) : undefined;
  const names = input.strategies ?? available.map((s) => s.name).filter((name) => llm !== undefined || name !== 'llm_rewrite');
  const unknown = names.filter((name) => !available.some((s) => s.name === name));
  if (unknown.length > 0) throw new ArgumentError(`--strategies: unknown ${unknown.join(', ')} (known: ${available.map((s) => s.name).join(', ') || 'none in this build'})`);
  if (names.length === 0) throw new ArgumentError('--strategies: no strategy to run');
  if (names.includes('llm_rewrite') && !llm) throw new ArgumentError('--strategies llm_rewrite needs --policy-url and --model');
  const started = Date.now();
  const result = await synthesize({
    docker: await connectEngine(),
    sources: input.sources,
    imageFor: (instance) => imageNameFor(instance.instance_id, input.image),
    out: input.out,
    concurrency: input.concurrency,
    ...(input.maxMinutes !== null ? { maxSeconds: input.maxMinutes * 60 } : {}),
    seed: input.seed,
    limit: input.limit,
    maxCandidates: input.maxCandidates,
    strategies: names.map((name) => available.find((s) => s.name === name)!),
    bounds: input.bounds,
    timeoutS: input.timeoutS,
    pythonEnv: input.pythonEnv,
    traceScope: input.traceScope,
    limits: { memoryBytes: parseByteSize(input.limits.memory), cpus: input.limits.cpus, pids: input.limits.pids },
    imageTemplate: 'synth',
    ...(llm ? { llm } : {}),
    issueText: writeIssue,
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${formatYieldReport(result.report)}\n`);
  process.stdout.write(`${result.tasks.length} tasks written to ${input.out} (images rft-synth/…: give --image synth to other commands); report ${result.reportFile}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}
