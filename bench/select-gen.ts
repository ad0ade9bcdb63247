/**
 * Generates a selection pool of SWE-Gym scale: one iteration's trajectory ledger and verdict
 * ledger, in the records' real format (TrajectorySchema, VerdictSchema), with realistic sizes:
 * 30 samples per instance; 4–14 calls per trajectory (successes 5–10); each call the agent's real system prompt
 * for its state (src/agent/prompts.ts), a user message with an issue and a file context of Python
 * code cut from the bundled repositories (0.2–1.8 × BENCH_SELECT_CONTEXT_KB, one context in 64 of
 * 40 KB, past the 10,240-token limit), an action as completion; token counts precomputed (chars / 3.6 + 4 per message, no
 * tokenizer run). Successes are rare and concentrated (half the instances never succeed), each
 * instance's successes share one to three patches, failed patches are mostly distinct or empty,
 * a few samples carry an infrastructure-error record before their real one.
 *
 * Written with pre-escaped JSON fragments so generating gigabytes stays fast.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { STATES, type StateName } from '../src/agent/actions.js';
import { systemPrompt } from '../src/agent/actions.js';
import { sha256Hex } from '../src/util/canonical.js';
import { normalizePatch, patchHash } from '../src/verify/patch.js';
import { loadInstances } from '../src/tasks/load.js';
import { bundledPythonFiles, TASKS_FILE } from './lib/fixtures.js';
import { mulberry32 } from '../src/util/prng.js';

export const POOL_FORMAT = 'rft-bench-pool/2';

export interface PoolSpec {
  trajectories: number;
  /** Mean KB of file context per call (the dominant part of a prompt). */
  contextKb: number;
  seed: number;
}

export interface PoolFiles {
  dir: string;
  trajectoriesFile: string;
  verdictsFile: string;
  bytes: number;
  generatedSeconds: number;
  reused: boolean;
}

/** The stand-in eval spec hash of an instance (the pool's verdict keys use it). */
export function specHashOf(instanceId: string): string {
  return sha256Hex(`spec:${instanceId}`);
}

const REPOS = [
  'getmoto__moto',
  'pandas-dev__pandas',
  'python__mypy',
  'iterative__dvc',
  'pydantic__pydantic',
  'dask__dask',
  'conan-io__conan',
  'modin-project__modin',
  'facebookresearch__hydra',
  'bokeh__bokeh',
  'Project-MONAI__MONAI',
];

/** A JSON string literal's inside (no quotes). */
const esc = (text: string) => JSON.stringify(text).slice(1, -1);

function pythonCorpus(): string[] {
  return bundledPythonFiles().flatMap((f) => [`# ${f.rel}`, ...f.text.split('\n')]);
}

/** Pool files for a spec, generated once into `baseDir` (reused while its marker says the same spec). */
export function ensurePool(baseDir: string, spec: PoolSpec): PoolFiles {
  const dir = path.join(baseDir, `pool-${spec.trajectories}-${spec.contextKb}kb-s${spec.seed}`);
  const marker = path.join(dir, 'DONE');
  const trajectoriesFile = path.join(dir, 'trajectories.jsonl');
  const verdictsFile = path.join(dir, 'verdicts.jsonl');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === POOL_FORMAT) {
    return { dir, trajectoriesFile, verdictsFile, bytes: statSync(trajectoriesFile).size, generatedSeconds: 0, reused: true };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  generate(spec, `${trajectoriesFile}.part`, `${verdictsFile}.part`);
  renameSync(`${trajectoriesFile}.part`, trajectoriesFile);
  renameSync(`${verdictsFile}.part`, verdictsFile);
  writeFileSync(marker, POOL_FORMAT);
  return { dir, trajectoriesFile, verdictsFile, bytes: statSync(trajectoriesFile).size, generatedSeconds: (Date.now() - started) / 1000, reused: false };
}

class Out {
  private pending: string[] = [];
  private size = 0;
  private readonly fd: number;
  constructor(file: string) {
    this.fd = openSync(file, 'w');
  }
  write(text: string): void {
    this.pending.push(text);
    this.size += text.length;
    if (this.size >= 8 * 1024 * 1024) this.flush();
  }
  flush(): void {
    if (this.pending.length === 0) return;
    writeSync(this.fd, this.pending.join(''));
    this.pending = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

function generate(spec: PoolSpec, trajectoriesFile: string, verdictsFile: string): void {
  const rand = mulberry32(spec.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

  const corpus = pythonCorpus();
  /** A window of code of about `kb` KB, JSON-escaped. */
  const contextBank: Array<{ text: string; chars: number }> = [];
  for (let i = 0; i < 256; i++) {
    // Sizes around the mean: 0.2× … 3×, plus a few very large contexts (over the token limit).
    const kb = i % 64 === 0 ? 40 : spec.contextKb * (0.2 + (1.6 * ((i * 37) % 256)) / 256);
    const target = Math.max(256, Math.round(kb * 1024));
    const parts: string[] = [];
    let chars = 0;
    let at = Math.floor(rand() * corpus.length);
    let file = 0;
    while (chars < target) {
      if (file === 0 || rand() < 0.02) {
        parts.push(`${REPOS[file % REPOS.length]!.split('__')[1]}/module_${file}.py`, '```python');
        file += 1;
      }
      const line = `${(at % 900) + 1}    ${corpus[at % corpus.length]!}`;
      parts.push(line);
      chars += line.length + 1;
      at += 1;
    }
    const text = parts.join('\n');
    contextBank.push({ text: esc(text), chars: text.length });
  }
  const tasks = loadInstances(TASKS_FILE);
  const systems = new Map<StateName, { text: string; chars: number }>(STATES.map((s) => [s, { text: esc(systemPrompt(s, 'json')), chars: systemPrompt(s, 'json').length }]));
  const completions: Record<string, string[]> = {
    SearchCode: [
      JSON.stringify({ scratch_pad: 'The issue points at the parsing of list values; search for the function that splits them.', search_requests: [{ file_pattern: '**/convert.py', function_names: ['to_list'], class_names: [] }], complete: false }),
      JSON.stringify({ scratch_pad: 'Search by the error message quoted in the issue.', search_requests: [{ query: 'trailing comma empty element list option', class_names: [], function_names: [] }], complete: false }),
    ],
    IdentifyCode: [JSON.stringify({ scratch_pad: 'to_list splits on the separator and keeps empty parts.', identified_spans: [{ file_path: 'pkg/convert.py', span_ids: ['to_list'] }] })],
    DecideRelevance: [JSON.stringify({ scratch_pad: 'The identified code is where the change goes.', relevant: true, complete: true })],
    PlanToCode: [
      JSON.stringify({ scratch_pad: 'Drop empty items after stripping.', action: 'modify', instructions: 'Skip empty parts when building the list.', file_path: 'pkg/convert.py', span_id: 'to_list' }),
      JSON.stringify({ scratch_pad: 'The change is in place and covers both cases from the issue.', action: 'finish', finish: 'Empty list items are dropped.' }),
    ],
    ClarifyCodeChange: [JSON.stringify({ scratch_pad: 'Only the loop body changes.', start_line: 12, end_line: 18 })],
    EditCode: ['<replace>\n    items = []\n    for line in value.splitlines():\n        items.extend(p.strip() for p in line.split(sep) if p.strip())\n    return items\n</replace>'],
  };
  const completionBank = new Map(Object.entries(completions).map(([k, v]) => [k, v.map((c) => ({ text: esc(c), chars: c.length }))]));
  const tok = (chars: number) => Math.ceil(chars / 3.6);

  const out = new Out(trajectoriesFile);
  const verdictOut = new Out(verdictsFile);
  const instances = Math.ceil(spec.trajectories / 30);
  let written = 0;
  const day = Date.UTC(2026, 0, 1);

  for (let i = 0; i < instances && written < spec.trajectories; i++) {
    const repo = REPOS[i % REPOS.length]!;
    const instanceId = `${repo}-${1000 + i}`;
    const specHash = specHashOf(instanceId);
    const task = tasks[i % tasks.length]!;
    const issue = esc(`<issue>\n${task.problem_statement}\n\n(${instanceId})\n</issue>`);
    const issueChars = task.problem_statement.length + 40;
    const pSuccess = rand() < 0.5 ? 0 : 0.02 + 0.36 * rand();
    const goodPatches = Array.from({ length: int(1, 3) }, (_, v) => makePatch(instanceId, `good-${v}`, int(3, 12)));
    const verdictsDone = new Set<string>();
    const testIds = Array.from({ length: int(15, 60) }, (_, t) => `tests/test_${repo.split('__')[1]!.replace(/-/g, '_')}.py::test_case_${t}`);
    const f2p = testIds.slice(0, int(1, 3));
    const p2p = testIds.slice(f2p.length);

    const emitVerdict = (patch: string, outcome: 'resolved' | 'unresolved' | 'apply_failed' | 'timeout' | 'error') => {
      const hash = patchHash(normalizePatch(patch));
      const key = `${hash}:${outcome === 'error' ? 'e' : ''}`;
      if (verdictsDone.has(key)) return;
      verdictsDone.add(key);
      const ran = outcome === 'resolved' || outcome === 'unresolved';
      const failing = outcome === 'unresolved' ? new Set(f2p.slice(0, 1)) : new Set<string>();
      const tests: Record<string, string> = {};
      if (ran) for (const id of testIds) tests[id] = failing.has(id) ? 'FAILED' : 'PASSED';
      const list = (ids: string[]) => ({ success: ids.filter((id) => !failing.has(id)), failure: ids.filter((id) => failing.has(id)) });
      verdictOut.write(
        `${JSON.stringify({
          instance_id: instanceId,
          patch_hash: hash,
          spec_hash: specHash,
          outcome,
          reason: outcome === 'resolved' ? null : outcome === 'unresolved' ? `FAIL_TO_PASS failed: ${f2p[0]}` : outcome === 'apply_failed' ? 'no method applied the patch: error: patch failed: pkg/module.py:12' : outcome === 'timeout' ? 'the tests ran past 1800 s and were killed' : 'infrastructure: the engine did not answer',
          apply_method: ran || outcome === 'timeout' ? 'git_apply' : null,
          test_exit_code: ran ? (outcome === 'resolved' ? 0 : 1) : null,
          tests,
          report: ran ? { FAIL_TO_PASS: list(f2p), PASS_TO_PASS: list(p2p) } : null,
          log_truncated: false,
          duration_ms: int(8_000, 90_000),
          created_at: new Date(day + i * 60_000).toISOString(),
        })}\n`,
      );
    };

    for (let s = 0; s < 30 && written < spec.trajectories; s++) {
      const success = rand() < pSuccess;
      let status: 'finished' | 'rejected' | 'error';
      let patch: string;
      if (success) {
        status = 'finished';
        patch = pick(goodPatches);
        emitVerdict(patch, 'resolved');
      } else {
        const r = rand();
        status = r < 0.45 ? 'finished' : r < 0.6 ? 'rejected' : 'error';
        if (status !== 'finished' && rand() < 0.08) {
          patch = pick(goodPatches); // resolved, but the agent did not finish
          emitVerdict(patch, 'resolved');
        } else if (rand() < 0.18) {
          patch = '';
        } else {
          patch = makePatch(instanceId, `bad-${s}`, int(2, 20));
          const o = rand();
          const outcome = o < 0.8 ? 'unresolved' : o < 0.95 ? 'apply_failed' : 'timeout';
          if (rand() < 0.02) emitVerdict(patch, 'error'); // retried later, as on resume
          emitVerdict(patch, outcome);
        }
      }
      if (rand() < 0.004) {
        // An endpoint failure recorded first; the sample was redone on resume.
        out.write(line(instanceId, issue, issueChars, s, 'infra', '', int(1, 3)));
      }
      const calls = success ? int(5, 10) : int(4, 14);
      out.write(line(instanceId, issue, issueChars, s, status, patch, calls));
      written += 1;
    }
  }
  out.close();
  verdictOut.close();

  function makePatch(instanceId: string, variant: string, changedLines: number): string {
    const file = `${instanceId.split('__')[1]!.split('-')[0]}/module_${variant.length % 7}.py`;
    const at = int(0, corpus.length - 40);
    const ctx = corpus.slice(at, at + 3 + changedLines);
    const body = ctx.map((l, k) => (k >= 3 && k % 2 === 1 ? `-${l}\n+${l.replace(/\S+$/, `${variant}_${k}`)}` : ` ${l}`)).join('\n');
    return `diff --git a/${file} b/${file}\n--- a/${file}\n+++ b/${file}\n@@ -${at + 1},${ctx.length} +${at + 1},${ctx.length} @@\n${body}\n`;
  }

  function line(instanceId: string, issue: string, issueChars: number, sample: number, status: 'finished' | 'rejected' | 'error' | 'infra', patch: string, nCalls: number): string {
    const perCall: number[] = [];
    let promptTokens = 0;
    let completionTokens = 0;
    const calls: string[] = [];
    const transitions: string[] = [];
    const order: StateName[] = ['SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'EditCode', 'PlanToCode'];
    let history = '';
    for (let c = 0; c < nCalls; c++) {
      const state = c < order.length ? order[c]! : (['PlanToCode', 'EditCode', 'SearchCode', 'IdentifyCode'] as const)[c % 4]!;
      const system = systems.get(state)!;
      const context = pick(contextBank);
      const completion = pick(completionBank.get(state)!);
      const invalid = rand() < 0.05;
      const userChars = issueChars + context.chars + 40;
      const promptT = tok(system.chars) + 4 + tok(userChars) + 4 + (history ? tok(history.length) + 8 : 0);
      const completionT = tok(completion.chars) + 4;
      perCall.push(promptT + completionT);
      promptTokens += promptT;
      completionTokens += completionT;
      const hist = history ? `,{"role":"assistant","content":"${esc(history)}"},{"role":"user","content":"Found 3 spans in 1 files."}` : '';
      calls.push(
        `{"state":"${state}","messages":[{"role":"system","content":"${system.text}"},{"role":"user","content":"${issue}\\n\\n<file_context>\\n${context.text}\\n</file_context>"}${hist}],"completion":{"role":"assistant","content":"${completion.text}"},"usage":{"prompt_tokens":${promptT},"completion_tokens":${completionT}},"invalid":${invalid ? '"unparsable JSON: Unexpected token"' : 'null'},"retry":false,"latency_ms":${int(300, 9000)}}`,
      );
      if (state === 'SearchCode' && rand() < 0.5) history = '{"complete":false,"scratch_pad":"look further","search_requests":[{"class_names":[],"function_names":["parse"]}]}';
      const next = c + 1 < nCalls ? (c + 1 < order.length ? order[c + 1]! : 'PlanToCode') : status === 'finished' ? 'Finished' : status === 'rejected' ? 'Rejected' : 'Aborted';
      transitions.push(`{"from":"${state}","to":"${next}","trigger":"${next === 'Finished' ? 'finish' : 'next'}"}`);
    }
    const outcome =
      status === 'finished'
        ? '{"status":"finished","reason":"Fixed the issue."}'
        : status === 'rejected'
          ? '{"status":"rejected","reason":"The requested behaviour is by design."}'
          : status === 'error'
            ? '{"status":"error","reason":"PlanToCode visited more than 8 times","fault":"model"}'
            : '{"status":"error","reason":"http://127.0.0.1:8000/v1: connection failed after retries","fault":"infrastructure"}';
    const seed = Math.floor(rand() * 2 ** 31);
    return `{"run":"bench","iteration":0,"instance_id":"${instanceId}","sample_index":${sample},"seed":${seed},"model":"sim-base","protocol":"json","temperature":1,"calls":[${calls.join(',')}],"transitions":[${transitions.join(',')}],"outcome":${outcome},"patch":"${esc(patch)}","llm_calls":${nCalls},"tokens":{"encoding":"cl100k_base","prompt":${promptTokens},"completion":${completionTokens},"max_example":${Math.max(0, ...perCall)},"per_call":[${perCall.join(',')}]},"usage":{"prompt_tokens":${promptTokens},"completion_tokens":${completionTokens}},"started_at":"${new Date(day + sample * 1000).toISOString()}","duration_ms":${int(20_000, 600_000)}}\n`;
  }
}
