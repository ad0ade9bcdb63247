import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileContextBlock, issueBlock } from '../../src/agent/prompts.js';
import { systemPrompt } from '../../src/agent/actions.js';
import { readJob } from '../../src/finetune/job.js';
import { runLayout } from '../../src/loop/layout.js';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { FAULT_KINDS, startFaultFront, type FaultFront } from '../../src/doubles/faults.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { ROOT, rft } from '../cli/helpers.js';
import { OpenAiStandin } from '../finetune/openai-standin.js';
import { startRft } from '../loop/helpers.js';
import { MINIGYM_TASKS, minigymInstance, minigymInstances } from '../helpers/minigym.js';

/**
 * API keys never leave the process: with recognisable fake keys in the env variables a recipe
 * names, runs are made to fail on purpose against servers that echo the key back (in a 401, in
 * every error body, in a failed fine-tune job's message), and then every file of the run
 * directory (ledgers, state, records, trainer logs), rft's stdout and stderr and every error
 * message are searched for the keys. The keys are not shaped like OpenAI keys (sk-…), so only
 * redaction of the key itself can hide them.
 */

const POLICY_KEY = `rftPolicyKEY${randomBytes(9).toString('hex')}`;
const FT_KEY = `rftTrainerKEY${randomBytes(9).toString('hex')}`;
const KEYS = [POLICY_KEY, FT_KEY];
const ENV = { RFT_TEST_POLICY_KEY: POLICY_KEY, RFT_TEST_FT_KEY: FT_KEY };

let sim: SimServer;
let front: FaultFront;
let standin: OpenAiStandin;
/** Every place searched, and how many bytes it held: the report of what was checked. */
const searched: { where: string; bytes: number }[] = [];

beforeAll(async () => {
  // The children inherit them (this test file has a process of its own).
  Object.assign(process.env, ENV);
  sim = await startSimServer({ models: [], tasks: minigymInstances() });
  front = await startFaultFront({ target: sim.url });
  standin = new OpenAiStandin({ apiKey: FT_KEY, outcomes: [{ kind: 'fail', code: 'invalid_training_file', message: `training file rejected for the key ${FT_KEY} (Bearer ${FT_KEY})` }] });
  await standin.start();
});
afterAll(async () => {
  await standin?.close();
  await front?.close();
  await sim?.close();
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => path.join(dir, name))
    .filter((file) => statSync(file).isFile());
}

/** Asserts that no key is in the text (as it is, or in the JSON-escaped form a record would hold). */
function expectNoKey(where: string, text: string): void {
  searched.push({ where, bytes: Buffer.byteLength(text) });
  for (const key of KEYS) expect({ where, leaks: text.includes(key) }).toEqual({ where, leaks: false });
}

function expectRunClean(runDir: string, output: { stdout: string; stderr: string }, label: string): number {
  expectNoKey(`${label}: stdout`, output.stdout);
  expectNoKey(`${label}: stderr`, output.stderr);
  const files = filesUnder(runDir);
  for (const file of files) expectNoKey(`${label}: ${path.relative(runDir, file)}`, readFileSync(file, 'latin1'));
  const status = rft(['status', runDir], { env: ENV });
  expectNoKey(`${label}: rft status`, status.stdout + status.stderr);
  return files.length;
}

function writeRecipe(name: string, options: { retries: number; finetune: 'command' | 'openai' }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-secrets-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), 'minigym__unitkit-101\n');
  const finetune =
    options.finetune === 'openai'
      ? `finetune: {backend: openai, base_model: gpt-4o-mini-2024-07-18, base_url: ${standin.url}, api_key_env: RFT_TEST_FT_KEY, poll_interval_s: 1}`
      : `finetune:
  backend: command
  command: "node ${path.join(ROOT, 'scripts/sim-train.mjs')} --dataset {dataset} --base {base_model} --iteration {iteration} --out {output_dir} --models-dir {run_dir}/sim-models"
  base_model: sim-base
  output_model_file: '{output_dir}/MODEL'`;
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(
    file,
    `name: ${name}
seed: 1
iterations: 1
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: {kind: openai, base_url: ${front.url}, model: sim-base, api_key_env: RFT_TEST_POLICY_KEY, retries: ${options.retries}, request_timeout_s: 2, concurrency: 4}
sampling: {samples_per_task: 2, instances_in_flight: 1}
select: {cap: 2}
${finetune}
`,
  );
  return file;
}

/** rft as a child process, asynchronously: the servers it talks to run in this process. */
async function runRft(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await startRft(args).done;
  return { status: code, stdout, stderr };
}

describe('API keys never leak', () => {
  it('policy client: no error of any fault kind carries the key, though every error body quotes it', async () => {
    const request = {
      messages: [
        { role: 'system' as const, content: systemPrompt('SearchCode', 'json') },
        { role: 'user' as const, content: `${issueBlock(minigymInstance('minigym__unitkit-101').problem_statement)}\n\n${fileContextBlock([])}` },
      ],
      seed: 3,
      temperature: 1,
      top_p: 1,
      max_tokens: 2000,
      json: true,
    };
    for (const kind of FAULT_KINDS.filter((k) => k !== 'slow')) {
      front.configure({ script: [kind], echoAuth: true });
      const policy = new OpenAiPolicy({ baseUrl: front.url, model: 'sim-base', apiKey: POLICY_KEY, timeoutMs: 600, maxRetries: 0 });
      const error = await policy.complete(request).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect({ kind, failed: error !== null }).toEqual({ kind, failed: true });
      expectNoKey(`client error (${kind})`, `${error!.message}\n${error!.stack}\n${JSON.stringify(error)}`);
    }
    // The echo really happened: the front saw the key and wrote it into its answers.
    expect(front.injected.auth_echo).toBeGreaterThan(0);
  });

  it('a policy endpoint that answers 401 quoting the Authorization header: the run stops incomplete, says why, and the key is nowhere', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-secrets-401-'));
    front.configure({ downAfter: 0, downKind: 'auth_echo' });
    const result = await runRft(['run', writeRecipe('secrets-401', { retries: 2, finetune: 'command' }), '--runs-dir', runs]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/run incomplete/);
    // The user learns why (the refusal), without the key.
    expect(result.stderr).toMatch(/HTTP 401/);
    expect(result.stderr).toMatch(/Incorrect API key provided: \*\*\*/);
    expect(expectRunClean(path.join(runs, 'secrets-401'), result, '401 run')).toBeGreaterThan(2);
  });

  it('faults of every kind, each error body quoting the key, few retries: the run stops incomplete and the key is nowhere', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-secrets-noisy-'));
    const before = front.totalInjected();
    front.configure({ rate: 0.7, seed: 9, echoAuth: true, kinds: FAULT_KINDS.filter((k) => k !== 'hang'), retryAfterS: 0, retryAfterDateS: 0 });
    const result = await runRft(['run', writeRecipe('secrets-noisy', { retries: 2, finetune: 'command' }), '--runs-dir', runs]);
    expect(front.totalInjected() - before).toBeGreaterThanOrEqual(5);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/run incomplete/);
    expectRunClean(path.join(runs, 'secrets-noisy'), result, 'noisy run');
  });

  it('an OpenAI fine-tune that fails with the key in its message, then a retry refused with the key echoed: the key is nowhere', async () => {
    front.configure({});
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-secrets-ft-'));
    const runDir = path.join(runs, 'secrets-ft');
    const failed = await runRft(['run', writeRecipe('secrets-ft', { retries: 2, finetune: 'openai' }), '--runs-dir', runs]);
    expect(failed.status).toBe(2);
    expect(failed.stderr).toMatch(/fine-tune of iteration 0 failed .*the fine-tune job ftjob-1 failed: training file rejected for the key \*\*\*/);
    expect(standin.jobCreates).toBe(1);
    // The stand-in really saw the key (so a leak was possible).
    expect(standin.requests.some((r) => r.auth === `Bearer ${FT_KEY}`)).toBe(true);
    const job = readJob(runLayout.finetuneDir(runDir, 0));
    expect(job).toMatchObject({ status: 'failed', error: expect.stringMatching(/training file rejected/) });
    expectRunClean(runDir, failed, 'failed fine-tune');

    // Retried against an API that now refuses the key and quotes it back.
    standin.options.apiKey = 'a-different-key';
    const refused = await runRft(['resume', runDir, '--retry-failed']);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/401|Incorrect API key/);
    expectRunClean(runDir, refused, 'refused fine-tune');
  });

  it('searched a good deal', () => {
    // Every test above searched stdout, stderr, rft status and each file of its run.
    expect(searched.length).toBeGreaterThan(30);
    console.log(`secrets: ${searched.length} places searched, ${searched.reduce((n, s) => n + s.bytes, 0)} bytes`);
  });
});
