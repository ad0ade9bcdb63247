import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeIndex } from '../../src/agent/code-index.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import { runTrajectory } from '../../src/agent/run.js';
import type { Trajectory } from '../../src/agent/trajectory.js';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { AgentSchema } from '../../src/recipe/schema.js';
import { buildExamples, lineMessages } from '../../src/sft/examples.js';
import { minigymInstances, minigymRepoFiles } from '../helpers/minigym.js';

/**
 * The SFT data teaches what the model sees (design §5, moatless's layout): in every multi-turn
 * example the CURRENT file context is in the last user message, and nothing before it shows code
 * newer than the action that follows it. Trajectories come from the real agent against the
 * SIMULATED policy over HTTP on the bundled tasks' repositories (as the demo samples them).
 */

let sim: SimServer;
const trajectories: Trajectory[] = [];

beforeAll(async () => {
  sim = await startSimServer({ models: [], tasks: minigymInstances() });
  const parser = await PythonSpanParser.create();
  const policy = new OpenAiPolicy({ baseUrl: sim.url, model: 'sim-base', apiKey: null, timeoutMs: 30_000, maxRetries: 0 });
  for (const instance of minigymInstances()) {
    const files = minigymRepoFiles(instance.repo.split('/')[1]!);
    const index = await CodeIndex.build(files, parser);
    for (const protocol of ['json', 'tools'] as const) {
      for (let seed = 0; seed < 4; seed++) {
        trajectories.push(
          await runTrajectory({
            ids: { run: 'view', iteration: 0, instance_id: instance.instance_id, sample_index: seed + (protocol === 'tools' ? 100 : 0) },
            seed,
            instance,
            files,
            index,
            parser,
            policy,
            agent: AgentSchema.parse({ protocol }),
            sampling: { temperature: 1, top_p: 1 },
          }),
        );
      }
    }
  }
}, 300_000);

afterAll(async () => {
  await sim.close();
});

const CODE_BLOCKS = /<(file_context|search_results)>/;

describe('the model view in the SFT examples', () => {
  it('every multi-turn example holds the current file context in its last user message and only there', () => {
    const { examples } = buildExamples(trajectories, { unit: 'call', max_tokens: 100_000, tokenizer: 'cl100k_base' });
    const multi = examples.filter((e) => lineMessages(e.line).filter((m) => m.role === 'user').length > 1);
    expect(multi.length).toBeGreaterThan(20);
    for (const example of multi) {
      const messages = lineMessages(example.line);
      // The target's prompt: everything before the trained answer, minus retry pairs of the same visit.
      const prompt = messages.slice(0, -1);
      const retryAt = prompt.findIndex((m) => (m.role === 'user' || m.role === 'tool') && m.content!.startsWith('Your last reply was not a valid action:'));
      const view = retryAt < 0 ? prompt : prompt.slice(0, retryAt - 1);
      const users = view.filter((m) => m.role === 'user');
      const where = `${example.source.instance_id}#${example.source.sample_index} call ${example.source.call_index} (${example.source.state})`;
      expect(users.at(-1)!.content, where).toMatch(/<file_context>/);
      expect(view.at(-1)!.role, where).toBe('user');
      for (const m of view.slice(0, -1)) expect({ where, content: CODE_BLOCKS.test(m.content ?? '') }).toEqual({ where, content: false });
    }
  });

  it('no example shows code newer than the action that follows it: each outcome message answers the action just before it', () => {
    const { examples } = buildExamples(trajectories, { unit: 'call', max_tokens: 100_000, tokenizer: 'cl100k_base' });
    let checked = 0;
    for (const example of examples) {
      const messages = lineMessages(example.line);
      for (let i = 1; i < messages.length - 1; i++) {
        const reply = messages[i]!;
        if ((reply.role !== 'user' && reply.role !== 'tool') || !/^(Applied the change to|The edit of|The change to) /.test(reply.content!)) continue;
        // The assistant turn just before it asked for exactly that change.
        const before = messages[i - 1]!;
        expect(before.role).toBe('assistant');
        const text = before.role === 'assistant' ? (before.tool_calls?.[0]?.function.arguments ?? before.content ?? '') : '';
        const action = (typeof text === 'string' ? JSON.parse(text) : text) as { action: string; file_path: string; span_id: string };
        expect(action.action).toBe('modify');
        const named = /^(?:Applied the change to|The edit of|The change to) (\S+?):(\S+?)[.:]?\s/.exec(`${reply.content!} `)!;
        expect([named[1], named[2]]).toEqual([action.file_path, action.span_id]);
        // A diff in it is of that one change: it never shows a later edit.
        const diff = /<diff>\n([\s\S]*?)<\/diff>/.exec(reply.content!);
        if (diff) expect(diff[1]!.match(/^diff --git /gm)).toHaveLength(1);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(5);
  });
});
