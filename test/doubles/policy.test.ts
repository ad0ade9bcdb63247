import { beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS, SearchRequestSchema, actionJsonSchema, parseActionOf, systemPrompt, type StateName, type StructuredState } from '../../src/agent/actions.js';
import { CodeIndex } from '../../src/agent/code-index.js';
import { fileContextBlock, issueBlock, parseEditAnswer, searchResultsBlock, type RenderedFile } from '../../src/agent/prompts.js';
import { editCode } from '../../src/agent/states/edit.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import { SimModelSchema, type SimModel } from '../../src/doubles/model.js';
import {
  SimPolicy,
  SimRequestError,
  applyChange,
  mutateCore,
  parseGoldPatch,
  targetSuccess,
  type SimChatRequest,
  type SimCompletion,
  type SimMessage,
} from '../../src/doubles/policy.js';
import type { ChatMessage } from '../../src/policy/types.js';
import type { Instance } from '../../src/tasks/instance.js';
import { minigymInstance, minigymInstances, minigymRepoFiles } from '../helpers/minigym.js';

const model = (name: string, skill: number): SimModel => SimModelSchema.parse({ name, simulated: true, parent: null, skill: { default: skill } });
const PERFECT = model('sim-perfect', 1);
const HOPELESS = model('sim-hopeless', 0);
const POOR = model('sim-poor', 0.1);

let policy: SimPolicy;
let parser: PythonSpanParser;
const repos = new Map<string, { files: Map<string, string>; index: CodeIndex }>();

beforeAll(async () => {
  policy = new SimPolicy(minigymInstances());
  parser = await PythonSpanParser.create();
  for (const repo of ['unitkit', 'iniform', 'ledgerlite']) {
    const files = minigymRepoFiles(repo);
    repos.set(repo, { files, index: await CodeIndex.build(files, parser) });
  }
});

function indexOf(task: Instance): CodeIndex {
  return repos.get(task.repo.split('/')[1]!)!.index;
}

/** What the workflow renders for a set of span ids per file (optionally over edited text). */
function render(task: Instance, spans: Record<string, string[]>, edited: Record<string, string> = {}): RenderedFile[] {
  return Object.entries(spans)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([file, ids]) => indexOf(task).renderFile(file, ids, edited[file]));
}

type Protocol = 'json' | 'tools';

function toolFor(state: StructuredState) {
  const { title: _t, description: _d, ...parameters } = actionJsonSchema(state);
  return { type: 'function' as const, function: { name: ACTIONS[state].name, description: ACTIONS[state].description, parameters } };
}

function request(state: StateName, user: string, options: { protocol?: Protocol; seed?: number; temperature?: number; history?: SimMessage[]; max_tokens?: number } = {}): SimChatRequest {
  const protocol = options.protocol ?? 'json';
  const structured = state !== 'EditCode';
  return {
    messages: [{ role: 'system', content: systemPrompt(state, protocol) }, { role: 'user', content: user }, ...(options.history ?? [])],
    seed: options.seed ?? 1,
    temperature: options.temperature ?? 0,
    max_tokens: options.max_tokens ?? 2000,
    ...(state === 'EditCode' ? { stop: ['</replace>'] } : {}),
    ...(structured && protocol === 'json' ? { response_format: { type: 'json_object' } } : {}),
    ...(structured && protocol === 'tools' ? { tools: [toolFor(state as StructuredState)] } : {}),
  };
}

function asAssistant(answer: SimCompletion): Extract<ChatMessage, { role: 'assistant' }> {
  return { role: 'assistant', content: answer.message.content, ...(answer.message.tool_calls ? { tool_calls: answer.message.tool_calls } : {}) };
}

/** The action as the workflow would read it; fails the test when it is not a valid action. */
function actionOf<S extends StructuredState>(state: S, answer: SimCompletion, protocol: Protocol = 'json') {
  const parsed = parseActionOf(state, asAssistant(answer), protocol);
  if (!parsed.ok) throw new Error(`invalid ${state} action: ${parsed.problem}`);
  return parsed.action;
}

/** EditCode's user message, made by the state's own (pure) prompt function; the issue is unknown here, as a test of finding the task by the code. */
function editRequest(instructions: string, context: RenderedFile[], path: string, code: string, issue = 'unknown'): string {
  const view = { system: '', issue, instructions, context: { files: context, dropped: 0, budget: 8000, tokens: 0 }, path, code };
  return editCode.prompt(view, 'json').at(-1)!.content as string;
}

const UNITKIT_101 = () => minigymInstance('minigym__unitkit-101');
const INIFORM_203 = () => minigymInstance('minigym__iniform-203');

function searchPrompt(task: Instance, context: RenderedFile[]): string {
  return `${issueBlock(task.problem_statement)}\n\n${fileContextBlock(context)}`;
}

describe('the gold patch as changes', () => {
  it('cuts hunks into changes, one per place, and knows pure insertions', () => {
    const changes = parseGoldPatch(INIFORM_203().patch);
    expect(changes).toHaveLength(3);
    expect(changes.map((c) => c.file)).toEqual(['iniform/escape.py', 'iniform/writer.py', 'iniform/writer.py']);
    expect(changes.map((c) => c.oldCore)).toEqual([[], [], []]);
    expect(changes[1]!.newCore).toEqual(['from .escape import needs_quoting, quote', '']);
    expect(changes[2]!.newCore).toEqual(['    if needs_quoting(value):', '        value = quote(value)']);
    // Changes separated by one line of a block stay one change (iniform-202 Section.set).
    const set = parseGoldPatch(minigymInstance('minigym__iniform-202').patch);
    expect(set).toHaveLength(2);
    expect(set[0]!.oldCore).toContain('        if existing is not None:');
    expect(set[0]!.enclosing).toBeNull();
    expect(parseGoldPatch(UNITKIT_101().patch)[0]!.enclosing).toBe('from_base');
  });

  it('has a plausible wrong version (a flipped operator, a dropped call …) of most bundled changes', () => {
    const mutants = Object.fromEntries(
      minigymInstances().map((task) => [task.instance_id, parseGoldPatch(task.patch).map((c) => c.mutantCore?.find((line, i) => line !== c.newCore[i])?.trim() ?? null)]),
    );
    expect(mutants).toEqual({
      'minigym__iniform-201': ['items.extend(part.strip() for part in line.split(sep) if not part.strip())'],
      'minigym__iniform-202': [null, null],
      'minigym__iniform-203': ['if value == value.strip() or value[0] in QUOTES + COMMENT_PREFIXES:', null, 'if not needs_quoting(value):'],
      'minigym__ledgerlite-301': ['step = 1 if remainder < 0 else -1'],
      'minigym__ledgerlite-302': ['number = f"{money.amount:{spec}.{currency.exponent}f}"'],
      'minigym__ledgerlite-303': ['item = StockItem(sku, name, reorder_level, tags)'],
      'minigym__unitkit-101': ['return (value + self.offset) / self.factor'],
      'minigym__unitkit-102': ['if unit is None:'],
      'minigym__unitkit-103': ['return self._key()'],
    });
  });

  it('never offers the old code as the wrong version', () => {
    // Flipping the comparison back would be the old code: the next rule (negation) is used instead.
    expect(mutateCore([{ kind: '-', text: 'if a > b:' }, { kind: '+', text: 'if a < b:' }])).toEqual(['if not a < b:']);
    expect(mutateCore([{ kind: '-', text: 'return a' }, { kind: '+', text: 'return b' }])).toBeNull();
    expect(mutateCore([{ kind: '-', text: 'x = a - b' }, { kind: '+', text: 'x = b - a' }])).toEqual(['x = b + a']);
  });

  it('applies a pure insertion after its anchor even when the blank lines around it lie outside the code', () => {
    const [hash] = parseGoldPatch(minigymInstance('minigym__unitkit-103').patch);
    const eq = ['    def __eq__(self, other):', '        if not isinstance(other, Quantity):', '            return NotImplemented', '        return self._key() == other._key()'];
    expect(applyChange(eq, hash!, hash!.newCore)).toEqual([
      ...eq,
      '',
      '    def __hash__(self):',
      '        # Must agree with __eq__: equal quantities share the same key.',
      '        return hash(self._key())',
    ]);
    expect(applyChange(['    def other(self):', '        pass'], hash!, hash!.newCore)).toBeNull();
  });

  it('maps skill and temperature to a success target: s at T=1, a step at T=0', () => {
    expect(targetSuccess(0.3, 1)).toBeCloseTo(0.3, 10);
    expect(targetSuccess(0.3, 0)).toBe(0);
    expect(targetSuccess(0.5, 0)).toBe(1);
    expect(targetSuccess(0.3, 0.5)).toBeLessThan(0.3);
    expect(targetSuccess(0.7, 0.5)).toBeGreaterThan(0.7);
    expect(targetSuccess(1, 1)).toBe(1);
    expect(targetSuccess(0, 1)).toBe(0);
  });
});

describe('the SIMULATED policy, state by state (T = 0)', () => {
  it('SearchCode: searches for a removed line of the gold patch in its file, then says complete', () => {
    const task = UNITKIT_101();
    const answer = policy.complete(request('SearchCode', searchPrompt(task, [])), PERFECT);
    expect(answer.state).toBe('SearchCode');
    expect(answer.instance_id).toBe('minigym__unitkit-101');
    const action = actionOf('SearchCode', answer);
    expect(action.complete).toBe(false);
    expect(action.search_requests).toEqual([{ file_pattern: 'unitkit/units.py', code_snippet: 'return value / self.factor - self.offset', class_names: [], function_names: [] }]);
    // The real index finds the span the fix changes with it.
    expect(indexOf(task).search(SearchRequestSchema.parse(action.search_requests[0]))).toEqual([
      { filePath: 'unitkit/units.py', spanIds: ['Unit.from_base'], score: expect.any(Number) },
    ]);
    const done = actionOf('SearchCode', policy.complete(request('SearchCode', searchPrompt(task, render(task, { 'unitkit/units.py': ['Unit.from_base'] }))), PERFECT));
    expect(done).toMatchObject({ complete: true, search_requests: [] });
  });

  it('SearchCode: for a multi-file fix, asks for every place not yet in the context (anchor lines for insertions)', () => {
    const task = INIFORM_203();
    const partial = render(task, { 'iniform/escape.py': ['quote'] });
    const action = actionOf('SearchCode', policy.complete(request('SearchCode', searchPrompt(task, partial)), PERFECT));
    expect(action.search_requests.map((r) => [r.file_pattern, r.code_snippet])).toEqual([
      ['iniform/writer.py', '"""Serialise a :class:`~iniform.document.Document` back to INI text."""'],
      ['iniform/writer.py', 'return [key]'],
    ]);
  });

  it('IdentifyCode: picks the spans of the search results that hold gold hunk lines', () => {
    const task = INIFORM_203();
    const results = render(task, { 'iniform/escape.py': ['escape', 'quote', 'unquote'], 'iniform/writer.py': ['impl', '_format_option', '_format_section'] });
    const prompt = `${searchPrompt(task, [])}\n\n${searchResultsBlock(results)}`;
    const action = actionOf('IdentifyCode', policy.complete(request('IdentifyCode', prompt), PERFECT));
    expect(action.identified_spans).toEqual([
      { file_path: 'iniform/escape.py', span_ids: ['quote'] },
      { file_path: 'iniform/writer.py', span_ids: ['impl', '_format_option'] },
    ]);
    const unrelated = `${searchPrompt(task, [])}\n\n${searchResultsBlock(render(task, { 'iniform/lexer.py': indexOf(task).file('iniform/lexer.py')!.spans.map((s) => s.id) }))}`;
    // None identified: an empty list, or (moatless's looser shape) no identified_spans at all.
    expect(actionOf('IdentifyCode', policy.complete(request('IdentifyCode', unrelated), PERFECT)).identified_spans ?? []).toEqual([]);
  });

  it('DecideRelevance: relevant once a touched span is in context, complete once all are', () => {
    const task = INIFORM_203();
    const decide = (spans: Record<string, string[]>) => actionOf('DecideRelevance', policy.complete(request('DecideRelevance', searchPrompt(task, render(task, spans))), PERFECT));
    expect(decide({ 'iniform/escape.py': ['quote'] })).toMatchObject({ relevant: true, complete: false, search_suggestions: expect.stringContaining('iniform/writer.py') });
    expect(decide({ 'iniform/escape.py': ['quote'], 'iniform/writer.py': ['impl', '_format_option'] })).toMatchObject({ relevant: true, complete: true });
    expect(decide({ 'iniform/escape.py': ['unquote'] })).toMatchObject({ relevant: false, complete: false });
  });

  it('PlanToCode: modifies the span holding the first unapplied change, reviews when its file is missing, finishes when all are in', () => {
    const task = UNITKIT_101();
    const plan = (context: RenderedFile[], history: SimMessage[] = []) =>
      actionOf('PlanToCode', policy.complete(request('PlanToCode', searchPrompt(task, context), { history }), PERFECT));
    const modify = plan(render(task, { 'unitkit/units.py': ['Unit.from_base'] }));
    expect(modify).toMatchObject({ action: 'modify', file_path: 'unitkit/units.py', span_id: 'Unit.from_base' });
    expect(modify.instructions).toContain('Change 1 of 1 for the issue "Converting *to* Fahrenheit returns wrong values"');
    expect(plan(render(task, { 'unitkit/temperature.py': ['convert_temperature'] }))).toMatchObject({ action: 'review' });
    const fixed = repos.get('unitkit')!.files.get('unitkit/units.py')!.replace('return value / self.factor - self.offset', 'return (value - self.offset) / self.factor');
    // Finished: as `finish`, or (the roll of moatless's looser shapes) as the review that finish_on_review takes for it.
    const done = plan(render(task, { 'unitkit/units.py': ['Unit.from_base'] }, { 'unitkit/units.py': fixed }));
    expect(done.action === 'finish' || (done.action === 'review' && done.instructions === 'Review the change made for the issue.')).toBe(true);
  });

  it('PlanToCode: takes the changes its own history says were applied as done', () => {
    const task = INIFORM_203();
    const context = render(task, { 'iniform/escape.py': ['quote'], 'iniform/writer.py': ['impl', '_format_option'] });
    const first = policy.complete(request('PlanToCode', searchPrompt(task, context)), PERFECT);
    expect(actionOf('PlanToCode', first)).toMatchObject({ action: 'modify', file_path: 'iniform/escape.py', span_id: 'quote' });
    // The workflow keeps the accepted action (canonical JSON) and, after the edit, the diff note.
    const history: SimMessage[] = [
      { role: 'assistant', content: JSON.stringify(JSON.parse(first.message.content!)) },
      { role: 'user', content: 'Applied the change to iniform/escape.py:quote. The diff so far:\n```diff\n...\n```' },
    ];
    expect(actionOf('PlanToCode', policy.complete(request('PlanToCode', searchPrompt(task, context), { history }), PERFECT))).toMatchObject({
      action: 'modify',
      file_path: 'iniform/writer.py',
      span_id: 'impl',
    });
    const rejected: SimMessage[] = [history[0]!, { role: 'user', content: 'The edit of iniform/escape.py:quote was rejected: no' }];
    expect(actionOf('PlanToCode', policy.complete(request('PlanToCode', searchPrompt(task, context), { history: rejected }), PERFECT))).toMatchObject({
      span_id: 'quote',
    });
  });

  it('PlanToCode at T=0 with low skill and no change to get wrong: finishes after part of the fix', () => {
    const task = minigymInstance('minigym__iniform-202');
    const context = render(task, { 'iniform/document.py': ['Section.set', 'Section.remove'] });
    const first = policy.complete(request('PlanToCode', searchPrompt(task, context)), HOPELESS);
    expect(actionOf('PlanToCode', first)).toMatchObject({ action: 'modify', span_id: 'Section.set' });
    const history: SimMessage[] = [
      { role: 'assistant', content: first.message.content },
      { role: 'user', content: 'Applied the change to iniform/document.py:Section.set. The diff so far: …' },
    ];
    expect(actionOf('PlanToCode', policy.complete(request('PlanToCode', searchPrompt(task, context), { history }), HOPELESS))).toMatchObject({ action: 'finish' });
    expect(actionOf('PlanToCode', policy.complete(request('PlanToCode', searchPrompt(task, context), { history }), PERFECT))).toMatchObject({
      action: 'modify',
      span_id: 'Section.remove',
    });
  });

  it('ClarifyCodeChange: gives the line range of the change inside the span', () => {
    const task = UNITKIT_101();
    const unit = indexOf(task).span('unitkit/units.py', 'Unit')!;
    const lines = repos.get('unitkit')!.files.get('unitkit/units.py')!.split('\n');
    const whole: RenderedFile = { path: 'unitkit/units.py', spans: [{ id: 'Unit', startLine: unit.startLine, lines: lines.slice(unit.startLine - 1, 80) }] };
    const prompt = `<instructions>\nChange 1 of 1 for the issue "Converting *to* Fahrenheit returns wrong values": fix it\n</instructions>\n\n${fileContextBlock([whole])}`;
    const action = actionOf('ClarifyCodeChange', policy.complete(request('ClarifyCodeChange', prompt), PERFECT));
    const line = lines.indexOf('        return value / self.factor - self.offset') + 1;
    expect(action).toMatchObject({ start_line: line, end_line: line });
  });

  it('EditCode: applies the hunk to the code in <search> by content; a low-skill model makes the plausible wrong edit', () => {
    const task = UNITKIT_101();
    const context = render(task, { 'unitkit/units.py': ['Unit.from_base'] });
    const code = context[0]!.spans.find((s) => s.id === 'Unit.from_base')!.lines.join('\n');
    const instructions = 'Change 1 of 1 for the issue "Converting *to* Fahrenheit returns wrong values": fix the order';
    const edit = (m: SimModel) => policy.complete(request('EditCode', editRequest(instructions, context, 'unitkit/units.py', code)), m);
    const good = edit(PERFECT);
    expect(good.message.tool_calls).toBeUndefined();
    expect(good.message.content!.startsWith('<replace>\n')).toBe(true);
    expect(good.message.content).not.toContain('</replace>'); // cut at the stop sequence, as a real server does
    expect(good.finish_reason).toBe('stop');
    expect(parseEditAnswer(good.message.content!)).toEqual({ kind: 'replace', code: code.replace('value / self.factor - self.offset', '(value - self.offset) / self.factor') });
    expect(parseEditAnswer(edit(HOPELESS).message.content!)).toEqual({ kind: 'replace', code: code.replace('value / self.factor - self.offset', '(value + self.offset) / self.factor') });
  });

  it('EditCode: finds the task without the title in the instructions, by the code', () => {
    const task = minigymInstance('minigym__ledgerlite-302');
    const context = render(task, { 'ledgerlite/formatting.py': ['format_money'] });
    const code = context[0]!.spans.find((s) => s.id === 'format_money')!.lines.join('\n');
    const answer = policy.complete(request('EditCode', editRequest('Use the currency exponent.', context, 'ledgerlite/formatting.py', code)), PERFECT);
    expect(answer.instance_id).toBe('minigym__ledgerlite-302');
    expect(parseEditAnswer(answer.message.content!)).toMatchObject({ kind: 'replace', code: expect.stringContaining('{spec}.{currency.exponent}f') });
    const elsewhere = policy.complete(request('EditCode', editRequest('Do it.', context, 'ledgerlite/formatting.py', 'def nothing():\n    pass')), PERFECT);
    expect(parseEditAnswer(elsewhere.message.content!)).toMatchObject({ kind: 'reject' });
  });
});

describe('the SIMULATED policy, protocols and the request envelope', () => {
  it('answers the tools protocol with one call to the named function, content null', () => {
    const task = UNITKIT_101();
    const answer = policy.complete(request('SearchCode', searchPrompt(task, []), { protocol: 'tools' }), PERFECT);
    expect(answer.message.content).toBeNull();
    expect(answer.message.tool_calls).toHaveLength(1);
    expect(answer.message.tool_calls![0]).toMatchObject({ type: 'function', id: expect.stringMatching(/^call_/), function: { name: 'Search' } });
    expect(answer.finish_reason).toBe('tool_calls');
    expect(actionOf('SearchCode', answer, 'tools')).toMatchObject({ complete: false });
  });

  it('answers the json protocol with the JSON object as content', () => {
    const answer = policy.complete(request('SearchCode', searchPrompt(UNITKIT_101(), [])), PERFECT);
    expect(answer.message.tool_calls).toBeUndefined();
    const raw = JSON.parse(answer.message.content!);
    expect(raw).toMatchObject({ scratch_pad: expect.any(String) });
    // Either the listed form or moatless's flat form of one search; both read as the same action.
    expect(raw.search_requests ?? [{ file_pattern: raw.file_pattern, code_snippet: raw.code_snippet }]).toEqual([{ file_pattern: 'unitkit/units.py', code_snippet: expect.any(String) }]);
    expect(actionOf('SearchCode', answer)).toMatchObject({ complete: false, search_requests: [{ file_pattern: 'unitkit/units.py' }] });
  });

  it('is deterministic: the same request gets a byte-identical answer; other seeds vary at T=1', () => {
    const task = UNITKIT_101();
    const req = request('SearchCode', searchPrompt(task, []), { temperature: 1, seed: 12345 });
    const first = JSON.stringify(policy.complete(req, POOR));
    for (let i = 0; i < 5; i++) expect(JSON.stringify(policy.complete(structuredClone(req), POOR))).toBe(first);
    const answers = new Set([...Array(30).keys()].map((seed) => JSON.stringify(policy.complete({ ...req, seed }, POOR).message)));
    expect(answers.size).toBeGreaterThan(3);
    // The model name is part of the seed too.
    const other = [...Array(30).keys()].map((seed) => JSON.stringify(policy.complete({ ...req, seed }, model('sim-poor-2', 0.1)).message));
    expect(other).not.toEqual([...Array(30).keys()].map((seed) => JSON.stringify(policy.complete({ ...req, seed }, POOR).message)));
  });

  it('at T=0 never gives an invalid action or wanders, whatever the seed', () => {
    const task = UNITKIT_101();
    for (let seed = 0; seed < 40; seed++) {
      const answer = policy.complete(request('SearchCode', searchPrompt(task, []), { seed }), POOR);
      expect(answer.invalid).toBeNull();
      expect(actionOf('SearchCode', answer).search_requests[0]!.code_snippet).toBe('return value / self.factor - self.offset');
    }
  });

  it('at T=1 a weak model sometimes answers with invalid actions of every kind, and wanders', () => {
    const task = UNITKIT_101();
    const kinds = new Set<string>();
    const queries = new Set<string>();
    const context = render(task, { 'unitkit/units.py': ['Unit.from_base'] });
    for (let seed = 0; seed < 300; seed++) {
      for (const protocol of ['json', 'tools'] as const) {
        const search = policy.complete(request('SearchCode', searchPrompt(task, []), { seed, temperature: 1, protocol }), HOPELESS);
        const plan = policy.complete(request('PlanToCode', searchPrompt(task, context), { seed, temperature: 1, protocol }), HOPELESS);
        for (const [state, answer] of [['SearchCode', search], ['PlanToCode', plan]] as const) {
          if (answer.invalid) kinds.add(answer.invalid);
          const parsed = parseActionOf(state, asAssistant(answer), protocol);
          // The kinds the action parser catches really are unparsable.
          if (['malformed_json', 'missing_field', 'no_tool_call'].includes(answer.invalid ?? '')) expect(parsed.ok).toBe(false);
          if (answer.invalid === null) expect(parsed.ok, JSON.stringify(answer.message)).toBe(true);
          if (state === 'SearchCode' && parsed.ok) {
            for (const r of (parsed.action as { search_requests: { query?: string | null; class_names: string[] }[] }).search_requests) {
              if (r.query) queries.add(r.query);
              for (const c of r.class_names) queries.add(c);
            }
          }
        }
      }
      const edit = policy.complete(
        request('EditCode', editRequest('fix', context, 'unitkit/units.py', context[0]!.spans.at(-1)!.lines.join('\n')), { seed, temperature: 1 }),
        HOPELESS,
      );
      if (edit.invalid) {
        kinds.add(edit.invalid);
        expect(parseEditAnswer(edit.message.content!)).toBeNull();
      }
    }
    expect([...kinds].sort()).toEqual(['empty_search', 'file_not_in_context', 'malformed_json', 'missing_field', 'no_edit_tags', 'no_tool_call', 'unknown_span']);
    expect(queries.size).toBeGreaterThan(5); // wandering: queries for words of the issue, made-up class names
  });

  it('estimates usage from text length, honours max_tokens and stop', () => {
    const task = UNITKIT_101();
    const req = request('SearchCode', searchPrompt(task, []));
    const answer = policy.complete(req, PERFECT);
    const chars = req.messages.reduce((n, m) => n + String(m.content).length, 0);
    expect(answer.usage.prompt_tokens).toBeGreaterThanOrEqual(Math.ceil(chars / 4));
    expect(answer.usage.prompt_tokens).toBeLessThan(chars / 4 + 20);
    expect(answer.usage.completion_tokens).toBe(Math.ceil(answer.message.content!.length / 4));
    expect(answer.usage.total_tokens).toBe(answer.usage.prompt_tokens + answer.usage.completion_tokens);
    const short = policy.complete({ ...req, max_tokens: 5 }, PERFECT);
    expect(short.finish_reason).toBe('length');
    expect(short.message.content).toHaveLength(20);
    const stopped = policy.complete({ ...req, stop: '"file_pattern"' }, PERFECT);
    expect(answer.message.content).toContain('"file_pattern"');
    expect(stopped.message.content).toBe(answer.message.content!.slice(0, answer.message.content!.indexOf('"file_pattern"')));
  });

  it('rejects a prompt that is not a workflow step, and rejects an issue it does not know in PlanToCode', () => {
    expect(() => policy.complete({ messages: [{ role: 'user', content: 'hello' }] }, PERFECT)).toThrow(SimRequestError);
    expect(() => policy.complete({ messages: [{ role: 'system', content: 'Workflow step: Dance' }] }, PERFECT)).toThrow(/Workflow step: <State>/);
    const unknown = { ...UNITKIT_101(), problem_statement: 'Something else entirely is broken.' };
    const answer = policy.complete(request('PlanToCode', searchPrompt(unknown, [])), PERFECT);
    expect(answer.instance_id).toBeNull();
    expect(actionOf('PlanToCode', answer)).toMatchObject({ action: 'reject' });
    // A task without a gold patch is as good as unknown: the search is a plain query from the issue.
    const noGold = new SimPolicy([{ ...UNITKIT_101(), patch: '' }]);
    const search = noGold.complete(request('SearchCode', searchPrompt(UNITKIT_101(), [])), PERFECT);
    expect(search.instance_id).toBeNull();
    expect(actionOf('SearchCode', search).search_requests).toEqual([{ query: expect.stringContaining('Converting'), class_names: [], function_names: [] }]);
  });
});
