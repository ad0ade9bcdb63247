import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAiVerifier, scoreFromAnswer, VerifierAnswerError, type VerifierClient } from '../../src/orm/client.js';
import { SHORTER_LIMITS, verifierMessages, type RenderLimits } from '../../src/orm/render.js';
import { scoreEvalPool } from '../../src/orm/score-eval.js';
import { ScoreRecordSchema } from '../../src/orm/scores.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { estimateTokens } from '../../src/doubles/policy.js';
import { SIM_VERIFIER_NAME } from '../../src/doubles/verifier.js';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { Ledger, readRecords } from '../../src/store/ledger.js';
import { minigym, sampleTrajectory, writePool, type PoolSample } from './records.js';

const tasks = minigym().slice(0, 3);
const byId = new Map(tasks.map((i) => [i.instance_id, i]));

/** 3 instances × 4 candidates: a gold patch, two wrong ones, and (on the first) an empty patch. */
function samples(): PoolSample[] {
  return tasks.flatMap((instance, i) => [
    { instance, sample: 0, kind: 'gold' as const },
    { instance, sample: 1, kind: 'wrong' as const },
    { instance, sample: 2, kind: i === 0 ? ('empty' as const) : ('wrong' as const) },
    { instance, sample: 3, kind: 'wrong' as const },
  ]);
}

function evalDir(): { dir: string; trajectories: string; scores: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-orm-score-'));
  const trajectories = path.join(dir, 'trajectories.jsonl');
  writePool(trajectories, null, samples());
  return { dir, trajectories, scores: path.join(dir, 'scores.jsonl') };
}

const never = () => false;

describe('scoreFromAnswer', () => {
  const answer = (tops: Array<[string, number]>, first = tops[0]!) => ({
    choices: [{ message: { content: first[0] }, logprobs: { content: [{ token: first[0], logprob: Math.log(first[1]), top_logprobs: tops.map(([token, p]) => ({ token, logprob: Math.log(p) })) }] } }],
  });

  it('is P(YES) normalised over the YES and NO spellings in the top logprobs', () => {
    const s = scoreFromAnswer(answer([['YES', 0.6], ['NO', 0.2], [' Yes', 0.1], ['\n', 0.1]]));
    expect(s.p_yes).toBeCloseTo(0.7, 10);
    expect(s.p_no).toBeCloseTo(0.2, 10);
    expect(s.score).toBeCloseTo(0.7 / 0.9, 10);
    expect(scoreFromAnswer(answer([['<NO>', 0.9], ['\n', 0.1]])).score).toBe(0);
  });

  it('refuses an answer without logprobs, without YES/NO, or with garbage', () => {
    expect(() => scoreFromAnswer({ choices: [{ message: { content: 'YES' }, logprobs: null }] })).toThrow(/without logprobs/);
    expect(() => scoreFromAnswer(answer([['Maybe', 0.7], ['\n', 0.3]]))).toThrow(/neither YES nor NO.*"Maybe"/);
    expect(() => scoreFromAnswer('<html>502 Bad Gateway</html>')).toThrow(VerifierAnswerError);
    expect(() => scoreFromAnswer({ choices: [] })).toThrow(/not a chat completion.*no choices/);
    expect(() => scoreFromAnswer({ choices: [{ logprobs: { content: [{ token: 'YES', logprob: 3 }] } }] })).toThrow(/no log-probability/);
  });
});

describe('best-of-n scoring against the SIMULATED verifier', () => {
  let sim: SimServer;
  beforeAll(async () => {
    sim = await startSimServer({ models: [], tasks });
  });
  afterAll(async () => {
    await sim.close();
  });
  const client = () => new OpenAiVerifier({ baseUrl: sim.url, model: SIM_VERIFIER_NAME, apiKey: null, timeoutMs: 10_000, maxRetries: 0 });

  it('scores every candidate once, empty patches without a request, gold patches above the rest on average', async () => {
    const { trajectories, scores } = evalDir();
    const before = sim.verifierRequests.length;
    const result = await scoreEvalPool({ trajectoriesFile: trajectories, scoresFile: scores, instances: byId, client: client(), concurrency: 3, stopping: never });
    expect(result).toEqual({ candidates: 12, scored: 12, known: 0, complete: true });
    expect(sim.verifierRequests.length - before).toBe(11);
    const records = [...readRecords(scores, ScoreRecordSchema)];
    expect(records).toHaveLength(12);
    expect(records.filter((r) => r.source === 'empty_patch').map((r) => [r.instance_id, r.sample_index, r.score])).toEqual([[tasks[0]!.instance_id, 2, 0]]);
    // Every request named an instance the SIMULATED verifier recognised from the issue text.
    expect(sim.verifierRequests.slice(before).every((r) => r.instance_id !== null)).toBe(true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const gold = records.filter((r) => r.sample_index === 0).map((r) => r.score);
    const wrong = records.filter((r) => r.sample_index !== 0 && r.source === 'verifier').map((r) => r.score);
    expect(mean(gold)).toBeGreaterThan(mean(wrong));

    // Again: nothing is asked twice.
    const again = await scoreEvalPool({ trajectoriesFile: trajectories, scoresFile: scores, instances: byId, client: client(), concurrency: 3, stopping: never });
    expect(again).toEqual({ candidates: 12, scored: 0, known: 12, complete: true });
    expect(sim.verifierRequests.length - before).toBe(11);
  });

  it('resumes in the middle of scoring: asks only what is not recorded, and ends where an uninterrupted run ends', async () => {
    const clean = evalDir();
    await scoreEvalPool({ trajectoriesFile: clean.trajectories, scoresFile: clean.scores, instances: byId, client: client(), concurrency: 1, stopping: never });

    const { trajectories, scores } = evalDir();
    // The first process dies after its 4th answer: a client that fails from the 5th request on.
    const real = client();
    let calls = 0;
    const dying: VerifierClient = {
      model: real.model,
      score: async (m) => {
        calls += 1;
        if (calls > 4) throw new Error('process killed');
        return real.score(m);
      },
    };
    await expect(scoreEvalPool({ trajectoriesFile: trajectories, scoresFile: scores, instances: byId, client: dying, concurrency: 1, stopping: never })).rejects.toThrow('process killed');
    const partial = [...readRecords(scores, ScoreRecordSchema)];
    expect(partial.length).toBeGreaterThanOrEqual(4);
    expect(partial.length).toBeLessThan(12);
    // …and left half a line behind (killed mid-write): dropped on resume, that candidate asked again.
    appendFileSync(scores, JSON.stringify(partial[0]).slice(0, 40));

    const before = sim.verifierRequests.length;
    const resumed = await scoreEvalPool({ trajectoriesFile: trajectories, scoresFile: scores, instances: byId, client: client(), concurrency: 2, stopping: never });
    expect(resumed.known).toBe(partial.length);
    expect(resumed.scored).toBe(12 - partial.length);
    const emptyLeft = partial.some((r) => r.source === 'empty_patch') ? 0 : 1;
    expect(sim.verifierRequests.length - before).toBe(12 - partial.length - emptyLeft);
    const strip = (file: string) =>
      [...readRecords(file, ScoreRecordSchema)]
        .map(({ created_at: _, ...r }) => r)
        .sort((a, b) => a.instance_id.localeCompare(b.instance_id) || a.sample_index - b.sample_index);
    expect(strip(scores)).toEqual(strip(clean.scores));
  });

  it('answers as vLLM does: logprobs only when asked, top_logprobs as many as asked, the same score for the same request', async () => {
    const ask = async (extra: Record<string, unknown>) => {
      const res = await fetch(`${sim.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: SIM_VERIFIER_NAME, max_tokens: 1, messages: [{ role: 'user', content: `<issue>\n${tasks[0]!.problem_statement}\n</issue>\n<diff>\n${tasks[0]!.patch}\n</diff>` }], ...extra }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { system_fingerprint: string; choices: Array<{ message: { content: string }; logprobs: { content: Array<{ token: string; top_logprobs: Array<{ token: string; logprob: number }> }> } | null }> };
    };
    const plain = await ask({});
    expect(plain.choices[0]!.logprobs).toBeNull();
    expect(plain.system_fingerprint).toBe('rft-simulated-verifier');
    const two = await ask({ logprobs: true, top_logprobs: 2 });
    expect(two.choices[0]!.logprobs!.content[0]!.top_logprobs).toHaveLength(2);
    expect(two.choices[0]!.logprobs!.content[0]!.token).toBe(two.choices[0]!.message.content);
    expect(await ask({ logprobs: true, top_logprobs: 2 })).toMatchObject({ choices: two.choices });
  });

  it('a stop request ends scoring early with what is recorded kept', async () => {
    const { trajectories, scores } = evalDir();
    let n = 0;
    const result = await scoreEvalPool({ trajectoriesFile: trajectories, scoresFile: scores, instances: byId, client: client(), concurrency: 1, stopping: () => n > 2, onScore: () => (n += 1) });
    expect(result.complete).toBe(false);
    expect([...readRecords(scores, ScoreRecordSchema)]).toHaveLength(3);
  });
});

describe("a candidate whose rendering is longer than the verifier's context", () => {
  /** The prompt tokens the SIMULATED server counts, as vLLM would refuse them (max_tokens 1 added). */
  const promptTokens = (trajectory: Trajectory, limits: RenderLimits) =>
    verifierMessages({ problem_statement: byId.get(trajectory.instance_id)!.problem_statement, trajectory }, limits).reduce((n, m) => n + 4 + estimateTokens(m.content ?? ''), 0) + 1;

  /** The pool's candidates with 16 steps each of long replies and long search results (a real trajectory's size). */
  function longPool(file: string): Trajectory[] {
    const ledger = Ledger.open(file, TrajectorySchema).ledger;
    const out = samples().map((s) => {
      const t = sampleTrajectory(s);
      const first = t.calls[0]!;
      t.calls = Array.from({ length: 16 }, (_, i) => ({
        ...first,
        messages: i === 0 ? first.messages : [first.messages[0]!, { role: 'user' as const, content: `search results ${i}\n${'def f():\n    return 1\n'.repeat(150)}` }],
        completion: { role: 'assistant' as const, content: `{"scratch_pad": "${'thinking '.repeat(300)}"}` },
      }));
      const parsed = TrajectorySchema.parse(t);
      ledger.append(parsed);
      return parsed;
    });
    ledger.close();
    return out.filter((t) => t.patch.trim() !== '');
  }

  async function scoreWith(maxModelLen: number) {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-orm-long-'));
    const trajectories = path.join(dir, 'trajectories.jsonl');
    const written = longPool(trajectories);
    const scores = path.join(dir, 'scores.jsonl');
    const sim = await startSimServer({ models: [], tasks, maxModelLen });
    const warnings: string[] = [];
    try {
      const client = new OpenAiVerifier({ baseUrl: sim.url, model: SIM_VERIFIER_NAME, apiKey: null, timeoutMs: 10_000, maxRetries: 0 });
      const run = () => scoreEvalPool({ trajectoriesFile: trajectories, scoresFile: scores, instances: byId, client, concurrency: 2, stopping: never, warn: (w) => warnings.push(w) });
      const result = await run();
      const asked = sim.verifierRequests.length;
      const again = await run();
      return { written, result, again, askedAgain: sim.verifierRequests.length - asked, warnings, records: [...readRecords(scores, ScoreRecordSchema)] };
    } finally {
      await sim.close();
    }
  }

  it('is asked again, rendered shorter, and scored by the verifier', async () => {
    const probe = longPool(path.join(mkdtempSync(path.join(tmpdir(), 'rft-orm-probe-')), 't.jsonl'));
    const full = probe.map((t) => promptTokens(t, SHORTER_LIMITS[0]!));
    const shortest = probe.map((t) => promptTokens(t, SHORTER_LIMITS.at(-1)!));
    // A context that the longest full rendering overflows and every shortest one fits.
    const maxModelLen = Math.max(...shortest) + 1;
    expect(Math.max(...full)).toBeGreaterThan(maxModelLen);
    const { written, result, again, askedAgain, records } = await scoreWith(maxModelLen);
    expect(result.complete).toBe(true);
    expect(again).toMatchObject({ scored: 0, known: 12 });
    expect(askedAgain).toBe(0);
    for (const t of written) {
      const r = records.find((x) => x.instance_id === t.instance_id && x.sample_index === t.sample_index)!;
      expect(r.source).toBe('verifier');
      // Shortened exactly when the full rendering did not fit, and then to a rendering that fits.
      if (promptTokens(t, SHORTER_LIMITS[0]!) > maxModelLen) {
        expect(r.shortened).toBeGreaterThan(0);
        expect(promptTokens(t, SHORTER_LIMITS[r.shortened!]!)).toBeLessThanOrEqual(maxModelLen);
      } else expect(r.shortened).toBeUndefined();
    }
    expect(records.some((r) => r.shortened !== undefined)).toBe(true);
  });

  it('past the shortest rendering ranks last (score 0, too_long), with a warning, and the scoring completes', async () => {
    const { written, result, askedAgain, warnings, records } = await scoreWith(60);
    expect(result).toEqual({ candidates: 12, scored: 12, known: 0, complete: true });
    expect(askedAgain).toBe(0);
    expect(records.filter((r) => r.source === 'too_long')).toHaveLength(written.length);
    expect(records.filter((r) => r.source === 'too_long').every((r) => r.score === 0 && r.p_yes === null)).toBe(true);
    expect(warnings).toHaveLength(written.length);
    expect(warnings[0]).toMatch(/refused even the shortest rendering/);
  });

  it('the shortened rendering keeps the first two and the last steps, and says how many it left out', () => {
    const t = writePool(path.join(mkdtempSync(path.join(tmpdir(), 'rft-orm-steps-')), 't.jsonl'), null, samples())[0]!;
    const calls = Array.from({ length: 10 }, (_, i) => ({ ...t.calls[0]!, state: i % 2 ? 'PlanToCode' : 'SearchCode' })) as Trajectory['calls'];
    const text = verifierMessages({ problem_statement: 'issue', trajectory: { ...t, calls } }, { ...SHORTER_LIMITS[0]!, maxSteps: 5 })[1]!.content as string;
    expect([...text.matchAll(/<step n="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([1, 2, 8, 9, 10]);
    expect(text).toContain('<omitted steps="5"/>');
  });
});

describe('a verifier endpoint that answers wrong', () => {
  let server: Server;
  let url: string;
  type Mode = 'no-logprobs' | 'not-json' | 'no-yes-no' | 'http-400';
  let mode = 'no-logprobs' as Mode;
  let requests: unknown[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests.push(JSON.parse(body));
        if (mode === 'http-400') {
          res.writeHead(400, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: { message: 'logprobs are not supported by this model', type: 'invalid_request_error' } }));
        }
        if (mode === 'not-json') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end('<html>upstream went away</html>');
        }
        const logprobs = mode === 'no-logprobs' ? null : { content: [{ token: 'The', logprob: -0.1, top_logprobs: [{ token: 'The', logprob: -0.1 }, { token: 'A', logprob: -2.5 }] }] };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 0, model: 'v', choices: [{ index: 0, message: { role: 'assistant', content: 'The' }, logprobs, finish_reason: 'length' }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const cases: Array<[Mode, RegExp]> = [
    ['no-logprobs', /answered without logprobs/],
    ['not-json', /not a chat completion|not JSON/],
    ['no-yes-no', /neither YES nor NO.*"The"/],
    ['http-400', /HTTP 400.*logprobs are not supported/],
  ];
  for (const [which, message] of cases) {
    it(`${which}: a clear error, and nothing recorded for the candidate`, async () => {
      mode = which;
      requests = [];
      const { trajectories, scores } = evalDir();
      const client = new OpenAiVerifier({ baseUrl: url, model: 'my-verifier', apiKey: 'sk-secret-key-123456', timeoutMs: 5000, maxRetries: 0 });
      const error = await scoreEvalPool({ trajectoriesFile: trajectories, scoresFile: scores, instances: byId, client, concurrency: 1, stopping: never }).then(
        () => null,
        (e: Error) => e,
      );
      expect(error?.message).toMatch(message);
      expect(error?.message).toContain('my-verifier');
      expect(error?.message).not.toContain('sk-secret-key-123456');
      // The request asked for one token with logprobs.
      expect(requests[0]).toMatchObject({ model: 'my-verifier', max_tokens: 1, logprobs: true, top_logprobs: 20 });
      // The first candidate (a gold patch) got no score; nothing else was asked after the error.
      expect(requests).toHaveLength(1);
      expect(readFileSync(scores, 'utf8')).toBe('');
    });
  }
});
