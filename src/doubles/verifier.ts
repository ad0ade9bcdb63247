import { createHash } from 'node:crypto';
import type { Instance } from '../tasks/instance.js';
import { mulberry32 } from '../util/prng.js';

/**
 * The SIMULATED verifier (a test double, like the SIMULATED policy it is served beside): answers
 * the learned verifier's scoring request as vLLM answers a chat request with `logprobs: true`,
 * without any model. It reads the request alone: the task from the text in <issue>, the candidate
 * from <diff>; the "truth" it is noisy about is whether the diff makes the gold patch's changes
 * (the same changed lines, whitespace aside) — which is how the SIMULATED policy writes a correct
 * fix. Its P(YES) is σ(±SEPARATION + NOISE·z), z a standard normal drawn from a PRNG seeded with
 * the request's text: the same request always gets the same score, scores are correlated with
 * the verdict but overlap, so best@k rises above random@k without reaching pass@k. A request it
 * cannot place (an unknown issue, no diff) gets a score of noise alone.
 */

export { SIM_VERIFIER_NAME } from '../policy/simulated.js';

/** Logit shift of a correct (+) or wrong (−) candidate, and the spread of the noise added. */
export const SIM_VERIFIER = { separation: 1.2, noise: 1.3 } as const;

export interface SimVerifierRequest {
  messages: ReadonlyArray<{ role: string; content?: unknown }>;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}

interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface SimVerifierAnswer {
  content: string;
  /** null unless the request asked for logprobs (as vLLM). */
  logprobs: { content: Array<TopLogprob & { top_logprobs: TopLogprob[] }> } | null;
  p_yes: number;
  instance_id: string | null;
}

const normalize = (text: string) => text.replace(/\s+/g, ' ').trim();

/** The +/− lines of a unified diff, whitespace-trimmed, sorted: what a fix changes, not where its hunks start. */
export function changedLines(diff: string): string {
  return diff
    .split('\n')
    .filter((l) => (l.startsWith('+') && !l.startsWith('+++')) || (l.startsWith('-') && !l.startsWith('---')))
    .map((l) => `${l[0]}${l.slice(1).trim()}`)
    .filter((l) => l.length > 1)
    .sort()
    .join('\n');
}

export class SimVerifier {
  private readonly byIssue = new Map<string, Instance>();

  constructor(instances: readonly Instance[]) {
    for (const i of instances) this.byIssue.set(normalize(i.problem_statement), i);
  }

  answer(request: SimVerifierRequest): SimVerifierAnswer {
    const text = request.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
    const issue = /<issue>\n?([\s\S]*?)\n?<\/issue>/.exec(text)?.[1];
    const diff = /<diff>\n?([\s\S]*?)\n?<\/diff>/.exec(text)?.[1];
    const instance = issue === undefined ? undefined : this.byIssue.get(normalize(issue));
    const rng = mulberry32(createHash('sha256').update(`sim-verifier\u0000${text}`).digest().readUInt32BE(0));
    // Box–Muller: one standard normal from two uniforms.
    const z = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    let logit = SIM_VERIFIER.noise * z;
    if (instance && diff !== undefined) {
      const correct = diff.trim() !== '' && changedLines(diff) === changedLines(instance.patch);
      logit += correct ? SIM_VERIFIER.separation : -SIM_VERIFIER.separation;
    }
    const p = 1 / (1 + Math.exp(-logit));
    // Most mass on the trained answers, a little on their other spellings and a stray newline.
    const dist: Array<[string, number]> = [
      ['YES', 0.92 * p],
      ['NO', 0.92 * (1 - p)],
      ['Yes', 0.05 * p],
      ['No', 0.05 * (1 - p)],
      ['\n', 0.03],
    ];
    dist.sort((a, b) => b[1] - a[1]);
    const entry = ([token, prob]: [string, number]): TopLogprob => ({ token, logprob: Math.log(Math.max(prob, 1e-12)), bytes: [...Buffer.from(token, 'utf8')] });
    const chosen = entry(dist[0]!);
    const top = dist.slice(0, Math.max(0, Math.min(request.top_logprobs ?? 0, dist.length))).map(entry);
    return {
      content: chosen.token,
      logprobs: request.logprobs ? { content: [{ ...chosen, top_logprobs: top }] } : null,
      p_yes: p,
      instance_id: instance?.instance_id ?? null,
    };
  }
}
