import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateName } from '../../src/agent/actions.js';
import { CodeIndex, globMatcher, globToRegExp, isTestPath } from '../../src/agent/code-index.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import { takeSnapshot } from '../../src/agent/snapshot.js';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { runTrajectory, STORED_REPLY_CHARS, type AgentSettings } from '../../src/agent/run.js';
import type { ChatMessage } from '../../src/policy/types.js';
import { AgentSchema } from '../../src/recipe/schema.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { buildImage } from '../../src/sandbox/images.js';
import type { Instance } from '../../src/tasks/instance.js';
import { patchFileChanges } from '../../src/verify/patch.js';
import { ScriptedPolicy, type ScriptedAnswer } from '../helpers/scripted-policy.js';

/**
 * Hostile model output, fed to the real workflow through a scripted policy (only the far end is
 * swapped) at the state where it matters. Every case must end in a retry message, or — given
 * max_retries + 1 times in a row — in an `error` outcome blamed on the model; never an exception
 * out of runTrajectory, never a change to the shared snapshot or to any file on disk, never a
 * patch that touches .git or a test file; and its record must parse and serialise. Each case is
 * also given once and followed by the right answers: the run must recover to the right patch.
 */

type Assistant = Extract<ChatMessage, { role: 'assistant' }>;
/** JSON text (json protocol) or any content; a tool call (args serialised); or a whole message. */
type Answer = ScriptedAnswer;

const PASSWD_HEAD = existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8').split('\n')[0]! : 'root:x:0:0:';
const LONG_NAME = `calc/${'a'.repeat(60)}.py`;

const FILES = new Map<string, string>([
  ['calc/__init__.py', ''],
  ['calc/ops.py', 'import math\n\n\ndef add(a, b):\n    """Sum of a and b."""\n    return a - b\n\n\nclass Scale:\n    def __init__(self, k):\n        self.k = k\n\n    def apply(self, x):\n        return x * self.k\n'],
  [LONG_NAME, 'def aaaa():\n    return "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\n'],
  ['tests/test_ops.py', 'from calc.ops import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n'],
  ['conftest.py', 'import pytest\n'],
  // What git keeps for a symlink is a blob holding its target: a snapshot that kept one would hold this text, never the target's content.
  ['evil', '/etc/passwd'],
]);
const FILES_DIGEST = digestMap(FILES);

const INSTANCE: Instance = {
  instance_id: 'demo__calc-1',
  repo: 'demo/calc',
  base_commit: 'abcdef0',
  problem_statement: 'add(1, 2) returns -1 instead of 3.',
  hints_text: '',
  patch: '',
  test_patch: '',
  FAIL_TO_PASS: ['tests/test_ops.py::test_add'],
  PASS_TO_PASS: [],
  version: null,
  created_at: null,
  environment_setup_commit: null,
  test_cmd: null,
};

const EXPECTED_PATCH = [
  'diff --git a/calc/ops.py b/calc/ops.py',
  '--- a/calc/ops.py',
  '+++ b/calc/ops.py',
  '@@ -3,7 +3,7 @@',
  ' ',
  ' def add(a, b):',
  '     """Sum of a and b."""',
  '-    return a - b',
  '+    return a + b',
  ' ',
  ' ',
  ' class Scale:',
  '',
].join('\n');

const RETRY_PREFIX = 'Your last reply was not a valid action:';

function digestMap(files: ReadonlyMap<string, string>): string {
  const hash = createHash('sha256');
  for (const [name, text] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(`${name.length}:${name}${text.length}:${text}`);
  return `${files.size}:${hash.digest('hex')}`;
}

// The right answers, as objects (json: serialised as content; tools: as the state's tool call).
const GOOD = {
  search: { scratch_pad: 'find add', search_requests: [{ function_names: ['add'] }], complete: false },
  identify: { scratch_pad: 'this one', identified_spans: [{ file_path: 'calc/ops.py', span_ids: ['add'] }] },
  decide: { scratch_pad: 'enough', relevant: true, complete: true },
  modify: { scratch_pad: 'fix', action: 'modify', file_path: 'calc/ops.py', span_id: 'add', instructions: 'Return the sum.' },
  clarify: { scratch_pad: 'only the return', start_line: 6, end_line: 6 },
  finish: { scratch_pad: 'done', action: 'finish', finish: 'add returns the sum' },
};
const EDIT = '<replace>\ndef add(a, b):\n    """Sum of a and b."""\n    return a + b\n';
const TOOL_NAMES = { search: 'Search', identify: 'Identify', decide: 'Decide', modify: 'ApplyChange', clarify: 'LineNumberClarification', finish: 'ApplyChange' } as const;

function good(step: keyof typeof GOOD, protocol: 'json' | 'tools'): Answer {
  return protocol === 'json' ? JSON.stringify(GOOD[step]) : { tool: TOOL_NAMES[step], args: GOOD[step] };
}

/** Answers that lead to `state`, and the answers that finish the run from there. */
function route(state: StateName, protocol: 'json' | 'tools', clarify: boolean): { before: Answer[]; after: Answer[] } {
  const g = (step: keyof typeof GOOD) => good(step, protocol);
  const all: [StateName, Answer][] = [
    ['SearchCode', g('search')],
    ['IdentifyCode', g('identify')],
    ['DecideRelevance', g('decide')],
    ['PlanToCode', g('modify')],
    ...(clarify ? ([['ClarifyCodeChange', g('clarify')]] as [StateName, Answer][]) : []),
    // The one-line range 6-6 is widened to at least 4 lines inside the 3-line span (moatless did so): EditCode rewrites lines 4-6.
    ['EditCode', EDIT],
  ];
  const at = all.findIndex(([s]) => s === state);
  return { before: all.slice(0, at).map(([, a]) => a), after: [...all.slice(at).map(([, a]) => a), g('finish')] };
}

interface Case {
  name: string;
  state: StateName;
  bad: Answer;
  protocol?: 'json' | 'tools';
  /** What the retry message must name. */
  problem?: RegExp;
}

const j = (value: unknown) => JSON.stringify(value);
const search = (extra: Record<string, unknown>) => j({ scratch_pad: 'x', search_requests: [{ function_names: ['add'] }], ...extra });
const searchRequest = (request: Record<string, unknown>) => j({ scratch_pad: 'x', search_requests: [request] });
const identify = (spans: unknown) => j({ scratch_pad: 'x', identified_spans: spans });
const modify = (fields: Record<string, unknown>) => j({ scratch_pad: 'x', action: 'modify', file_path: 'calc/ops.py', span_id: 'add', instructions: 'Return the sum.', ...fields });
const modifyPath = (file_path: string) => modify({ file_path });
const clarify = (start_line: unknown, end_line: unknown) => j({ scratch_pad: 'x', start_line, end_line });
const raw = (message: Partial<Assistant>): Answer => ({ message: { role: 'assistant', content: null, ...message } });
const call = (name: string, args: string, id = 'call_x') => ({ id, type: 'function' as const, function: { name, arguments: args } });

/** Temporary HOME, working directory and a canary path no case may create. */
const work = mkdtempSync(path.join(tmpdir(), 'rft-hostile-actions-'));
const CWD = path.join(work, 'cwd');
const HOME = path.join(work, 'home');
const canary = path.join(work, 'canary', 'owned.py');

/** The corpus, built once. */
function corpus(): Case[] {
  const deep = (n: number) => `{"scratch_pad": ${'['.repeat(n)}${']'.repeat(n)}}`;
  const relativeCanary = path.relative(CWD, canary);
  return [
    // --- not JSON (json protocol) -------------------------------------------------------------
    { name: 'truncated JSON', state: 'SearchCode', bad: '{"scratch_pad": "x", "search_requests": [{"function_names": ["add"', problem: /not valid JSON/ },
    { name: 'trailing garbage', state: 'SearchCode', bad: `${search({})} and that is my search`, problem: /not valid JSON/ },
    { name: 'NaN', state: 'SearchCode', bad: '{"scratch_pad": "x", "search_requests": [], "complete": NaN}', problem: /not valid JSON/ },
    { name: 'comments', state: 'SearchCode', bad: '{"scratch_pad": "x", // look for add\n "search_requests": [{"function_names": ["add"]}]}', problem: /not valid JSON/ },
    { name: 'single quotes', state: 'SearchCode', bad: "{'scratch_pad': 'x', 'search_requests': []}", problem: /not valid JSON/ },
    { name: 'two objects', state: 'SearchCode', bad: `${search({})}\n${search({})}`, problem: /not valid JSON/ },
    { name: 'empty reply', state: 'SearchCode', bad: '', problem: /not valid JSON/ },
    { name: 'a JSON array', state: 'SearchCode', bad: `[${search({})}]`, problem: /one JSON object/ },
    { name: 'a JSON string', state: 'DecideRelevance', bad: '"relevant"', problem: /one JSON object/ },
    { name: 'JSON null', state: 'PlanToCode', bad: 'null', problem: /one JSON object/ },
    { name: 'a broken fence', state: 'SearchCode', bad: '```json\n{"scratch_pad": \n```', problem: /not valid JSON/ },
    { name: '10,000-deep nesting', state: 'SearchCode', bad: deep(10_000), problem: /scratch_pad: expected string/ },
    { name: '100,000-deep nesting', state: 'SearchCode', bad: deep(100_000), problem: /characters long/ },
    { name: '__proto__ key', state: 'SearchCode', bad: '{"scratch_pad": "x", "search_requests": [{"function_names": ["add"]}], "__proto__": {"complete": true}}', problem: /unknown field|__proto__/ },
    // --- wrong types, every field of every action ----------------------------------------------
    { name: 'Search.scratch_pad: number', state: 'SearchCode', bad: j({ scratch_pad: 1, search_requests: [{ function_names: ['add'] }] }), problem: /scratch_pad/ },
    { name: 'Search.search_requests: string', state: 'SearchCode', bad: j({ scratch_pad: 'x', search_requests: 'add' }), problem: /search_requests/ },
    { name: 'Search.search_requests[0]: string', state: 'SearchCode', bad: j({ scratch_pad: 'x', search_requests: ['add'] }), problem: /search_requests\.0/ },
    { name: 'Search.file_pattern: number', state: 'SearchCode', bad: searchRequest({ file_pattern: 7, function_names: ['add'] }), problem: /file_pattern/ },
    { name: 'Search.query: object', state: 'SearchCode', bad: searchRequest({ query: { text: 'add' } }), problem: /query/ },
    { name: 'Search.code_snippet: array', state: 'SearchCode', bad: searchRequest({ code_snippet: ['return a - b'] }), problem: /code_snippet/ },
    { name: 'Search.class_names: string', state: 'SearchCode', bad: searchRequest({ class_names: 'Scale' }), problem: /class_names/ },
    { name: 'Search.function_names: numbers', state: 'SearchCode', bad: searchRequest({ function_names: [1, 2] }), problem: /function_names/ },
    { name: 'Search.complete: string', state: 'SearchCode', bad: search({ complete: 'yes' }), problem: /complete/ },
    { name: 'Identify.scratch_pad: null', state: 'IdentifyCode', bad: j({ scratch_pad: null, identified_spans: [] }), problem: /scratch_pad/ },
    { name: 'Identify.identified_spans: string', state: 'IdentifyCode', bad: identify('calc/ops.py:add'), problem: /identified_spans/ },
    { name: 'Identify.identified_spans[0]: string', state: 'IdentifyCode', bad: identify(['calc/ops.py']), problem: /identified_spans\.0/ },
    { name: 'Identify.file_path: number', state: 'IdentifyCode', bad: identify([{ file_path: 3, span_ids: ['add'] }]), problem: /file_path/ },
    { name: 'Identify.span_ids: string', state: 'IdentifyCode', bad: identify([{ file_path: 'calc/ops.py', span_ids: 'add' }]), problem: /span_ids/ },
    { name: 'Decide.relevant: string', state: 'DecideRelevance', bad: j({ scratch_pad: 'x', relevant: 'true', complete: true }), problem: /relevant/ },
    { name: 'Decide.complete: number', state: 'DecideRelevance', bad: j({ scratch_pad: 'x', relevant: true, complete: 1 }), problem: /complete/ },
    { name: 'Decide.search_suggestions: array', state: 'DecideRelevance', bad: j({ scratch_pad: 'x', relevant: true, complete: true, search_suggestions: ['x'] }), problem: /search_suggestions/ },
    { name: 'Decide.relevant missing', state: 'DecideRelevance', bad: j({ scratch_pad: 'x', complete: true }), problem: /missing field relevant/ },
    { name: 'Plan.action: unknown verb', state: 'PlanToCode', bad: modify({ action: 'delete' }), problem: /action/ },
    { name: 'Plan.action: number', state: 'PlanToCode', bad: modify({ action: 5 }), problem: /action/ },
    { name: 'Plan.instructions: number', state: 'PlanToCode', bad: modify({ instructions: 42 }), problem: /instructions/ },
    { name: 'Plan.file_path: array', state: 'PlanToCode', bad: modify({ file_path: ['calc/ops.py'] }), problem: /file_path/ },
    { name: 'Plan.span_id: number', state: 'PlanToCode', bad: modify({ span_id: 1 }), problem: /span_id/ },
    { name: 'Plan.finish: object', state: 'PlanToCode', bad: j({ scratch_pad: 'x', action: 'finish', finish: { done: true } }), problem: /finish/ },
    { name: 'Plan.reject: boolean', state: 'PlanToCode', bad: j({ scratch_pad: 'x', action: 'reject', reject: true }), problem: /reject/ },
    { name: 'Clarify.start_line: string', state: 'ClarifyCodeChange', bad: clarify('6', 6), problem: /start_line/ },
    { name: 'Clarify.end_line: fraction', state: 'ClarifyCodeChange', bad: clarify(6, 6.5), problem: /end_line/ },
    { name: 'Clarify.reject: number', state: 'ClarifyCodeChange', bad: j({ scratch_pad: 'x', start_line: 6, end_line: 6, reject: 1 }), problem: /reject/ },
    { name: 'Clarify.start_line: 1e400 (Infinity)', state: 'ClarifyCodeChange', bad: '{"scratch_pad": "x", "start_line": 1e400, "end_line": 6}', problem: /start_line/ },
    // --- huge ------------------------------------------------------------------------------------
    { name: '1 MB scratch_pad', state: 'SearchCode', bad: search({ scratch_pad: 'I think. '.repeat(116_509) }), problem: /characters long/ },
    { name: '10,000 search requests', state: 'SearchCode', bad: j({ scratch_pad: 'x', search_requests: Array.from({ length: 10_000 }, (_, i) => ({ function_names: [`f${i}`] })) }), problem: /characters long/ },
    { name: '100,000 span ids', state: 'IdentifyCode', bad: identify([{ file_path: 'calc/ops.py', span_ids: Array.from({ length: 100_000 }, () => 'add') }]), problem: /characters long/ },
    { name: '50 MB reply', state: 'SearchCode', bad: search({ scratch_pad: 'a'.repeat(50 * 1024 * 1024) }), problem: /characters long/ },
    { name: 'a glob with a bad class', state: 'SearchCode', bad: searchRequest({ file_pattern: '[z-a]*.py', function_names: ['add'] }), problem: /not a valid glob/ },
    { name: 'a 10,000-character glob', state: 'SearchCode', bad: searchRequest({ file_pattern: '*a'.repeat(5000), function_names: ['add'] }), problem: /longer than/ },
    // --- control characters and NUL --------------------------------------------------------------
    { name: 'NUL in Plan.file_path', state: 'PlanToCode', bad: modifyPath('calc/ops.py\u0000'), problem: /control character/ },
    { name: 'newline in Plan.file_path', state: 'PlanToCode', bad: modifyPath('calc/ops.py\n+++ b/.git/config'), problem: /control character/ },
    { name: 'NUL in Plan.span_id', state: 'PlanToCode', bad: modify({ span_id: 'add\u0000' }), problem: /unknown span/ },
    { name: 'BEL in Identify.file_path', state: 'IdentifyCode', bad: identify([{ file_path: 'calc/\u0007ops.py', span_ids: ['add'] }]), problem: /not in the search results/ },
    { name: 'NUL in Identify.span_ids', state: 'IdentifyCode', bad: identify([{ file_path: 'calc/ops.py', span_ids: ['add\u0000'] }]), problem: /unknown span/ },
    { name: 'NUL in the new code', state: 'EditCode', bad: '<replace>\ndef add(a, b):\n    return a + b\u0000\n', problem: /control character/ },
    { name: 'ESC in the new code', state: 'EditCode', bad: '<replace>\ndef add(a, b):\n    return a + b  # \u001b[31mred\n', problem: /control character/ },
    // --- unicode tricks --------------------------------------------------------------------------
    { name: 'RTL override in Plan.file_path', state: 'PlanToCode', bad: modifyPath('calc/\u202eyp.spo'), problem: /not in the repository/ },
    { name: 'homoglyph Plan.file_path (Cyrillic o)', state: 'PlanToCode', bad: modifyPath('calc/\u043eps.py'), problem: /not in the repository/ },
    { name: 'fullwidth solidus in Plan.file_path', state: 'PlanToCode', bad: modifyPath('calc\uff0fops.py'), problem: /not in the repository/ },
    { name: 'homoglyph Identify.file_path', state: 'IdentifyCode', bad: identify([{ file_path: 'c\u0430lc/ops.py', span_ids: ['add'] }]), problem: /not in the search results/ },
    { name: 'bidi override in the new code (Trojan Source)', state: 'EditCode', bad: '<replace>\ndef add(a, b):\n    """Sum\u202e of a and b."""\n    return a + b\n', problem: /bidirectional/ },
    // --- paths out of the repository ------------------------------------------------------------
    { name: '../../etc/passwd', state: 'PlanToCode', bad: modifyPath('../../etc/passwd'), problem: /leaves the repository/ },
    { name: 'calc/../../outside.py', state: 'PlanToCode', bad: modifyPath('calc/../../outside.py'), problem: /leaves the repository/ },
    { name: 'absolute /etc/passwd', state: 'PlanToCode', bad: modifyPath('/etc/passwd'), problem: /is absolute/ },
    { name: 'absolute canary path', state: 'PlanToCode', bad: modifyPath(canary), problem: /is absolute/ },
    { name: 'relative path to the canary', state: 'PlanToCode', bad: modifyPath(relativeCanary), problem: /leaves the repository|not in the repository/ },
    { name: '~/.bashrc', state: 'PlanToCode', bad: modifyPath('~/.bashrc'), problem: /not in the repository/ },
    { name: 'C:\\Windows\\win.ini', state: 'PlanToCode', bad: modifyPath('C:\\Windows\\win.ini'), problem: /is absolute/ },
    { name: 'backslash-rooted \\calc\\ops.py', state: 'PlanToCode', bad: modifyPath('\\calc\\ops.py'), problem: /is absolute/ },
    { name: '.git/config', state: 'PlanToCode', bad: modifyPath('.git/config'), problem: /inside \.git/ },
    { name: '.GIT/config', state: 'PlanToCode', bad: modifyPath('.GIT/config'), problem: /inside \.git/ },
    { name: 'calc/./../.git/HEAD', state: 'PlanToCode', bad: modifyPath('calc/./../.git/HEAD'), problem: /leaves the repository|inside \.git/ },
    { name: 'Identify ../calc/ops.py', state: 'IdentifyCode', bad: identify([{ file_path: '../calc/ops.py', span_ids: ['add'] }]), problem: /not in the search results/ },
    { name: 'the symlink-like entry evil (Plan)', state: 'PlanToCode', bad: modifyPath('evil'), problem: /not in the file context/ },
    { name: 'the symlink-like entry evil (Identify)', state: 'IdentifyCode', bad: identify([{ file_path: 'evil', span_ids: ['x'] }]), problem: /not in the search results/ },
    // --- test files, other files' spans ----------------------------------------------------------
    { name: 'edit a test file', state: 'PlanToCode', bad: modify({ file_path: 'tests/test_ops.py', span_id: 'test_add' }), problem: /is a test file/ },
    { name: 'edit conftest.py', state: 'PlanToCode', bad: modify({ file_path: 'conftest.py', span_id: ':imports' }), problem: /is a test file/ },
    { name: 'identify a test file (not in the search results)', state: 'IdentifyCode', bad: identify([{ file_path: 'tests/test_ops.py', span_ids: ['test_add'] }]), problem: /not in the search results/ },
    { name: 'identify a file the search did not show', state: 'IdentifyCode', bad: identify([{ file_path: LONG_NAME, span_ids: ['aaaa'] }]), problem: /not in the search results/ },
    { name: "a span id of another file (Identify)", state: 'IdentifyCode', bad: identify([{ file_path: 'calc/ops.py', span_ids: ['test_add'] }]), problem: /unknown span test_add/ },
    { name: "a span id of another file (Plan)", state: 'PlanToCode', bad: modify({ span_id: 'test_add' }), problem: /unknown span test_add/ },
    { name: 'a file outside the context (Plan)', state: 'PlanToCode', bad: modify({ file_path: LONG_NAME, span_id: 'aaaa' }), problem: /not in the file context/ },
    // --- ClarifyCodeChange line ranges ----------------------------------------------------------
    { name: 'lines out of bounds', state: 'ClarifyCodeChange', bad: clarify(1, 400), problem: /must lie within 4-6/ },
    { name: 'lines reversed', state: 'ClarifyCodeChange', bad: clarify(6, 4), problem: /must lie within/ },
    { name: 'negative lines', state: 'ClarifyCodeChange', bad: clarify(-3, 5), problem: /must lie within/ },
    { name: 'line zero', state: 'ClarifyCodeChange', bad: clarify(0, 0), problem: /must lie within/ },
    { name: 'lines past the end of the file', state: 'ClarifyCodeChange', bad: clarify(1e9, 1e9 + 1), problem: /must lie within/ },
    // --- EditCode replies -----------------------------------------------------------------------
    { name: 'no tags', state: 'EditCode', bad: 'I would change the minus to a plus.', problem: /neither <replace>/ },
    { name: 'nested tags', state: 'EditCode', bad: '<replace><replace>\ndef add(a, b):\n    return a + b\n</replace></replace>', problem: /exactly one <replace>/ },
    { name: '</replace> inside the code', state: 'EditCode', bad: '<replace>\ndef add(a, b):\n    marker = "</replace>"\n    return a + b\n</replace>', problem: /exactly one <replace>/ },
    { name: 'two replace blocks', state: 'EditCode', bad: '<replace>\nx = 1\n</replace>\n<replace>\ny = 2\n</replace>', problem: /exactly one <replace>/ },
    { name: 'enormous replacement', state: 'EditCode', bad: `<replace>\n${'    x = 1\n'.repeat(200_000)}`, problem: /characters long/ },
    { name: 'identical replacement', state: 'EditCode', bad: '<replace>\ndef add(a, b):\n    """Sum of a and b."""\n    return a - b\n', problem: /identical/ },
    // --- tools protocol -------------------------------------------------------------------------
    { name: 'tools: the wrong function', state: 'SearchCode', protocol: 'tools', bad: { tool: 'Identify', args: GOOD.identify }, problem: /not Identify/ },
    { name: 'tools: no function call', state: 'SearchCode', protocol: 'tools', bad: j(GOOD.search), problem: /called no function/ },
    { name: 'tools: several calls', state: 'SearchCode', protocol: 'tools', bad: raw({ tool_calls: [call('Search', j(GOOD.search), 'a'), call('Search', j(GOOD.search), 'b')] }), problem: /2 calls/ },
    { name: 'tools: arguments not JSON', state: 'PlanToCode', protocol: 'tools', bad: raw({ tool_calls: [call('ApplyChange', '{"scratch_pad": "x", "action": ')] }), problem: /not valid JSON/ },
    { name: 'tools: arguments a JSON array', state: 'PlanToCode', protocol: 'tools', bad: raw({ tool_calls: [call('ApplyChange', j([GOOD.modify]))] }), problem: /one JSON object/ },
    { name: 'tools: arguments a JSON string', state: 'DecideRelevance', protocol: 'tools', bad: raw({ tool_calls: [call('Decide', j(j(GOOD.decide)))] }), problem: /one JSON object/ },
    { name: 'tools: empty call id and bad arguments', state: 'IdentifyCode', protocol: 'tools', bad: raw({ tool_calls: [call('Identify', 'NaN', '')] }), problem: /not valid JSON/ },
    { name: 'tools: a 100,000-character function name', state: 'SearchCode', protocol: 'tools', bad: raw({ tool_calls: [call('S'.repeat(100_000), j(GOOD.search))] }), problem: /characters long/ },
    { name: 'tools: 10,000 calls', state: 'SearchCode', protocol: 'tools', bad: raw({ tool_calls: Array.from({ length: 10_000 }, (_, i) => call('Search', j(GOOD.search), `c${i}`)) }), problem: /characters long/ },
    { name: 'tools: path out of the repository', state: 'PlanToCode', protocol: 'tools', bad: { tool: 'ApplyChange', args: { ...GOOD.modify, file_path: '../../../../etc/passwd' } }, problem: /leaves the repository/ },
    { name: 'tools: a test file', state: 'PlanToCode', protocol: 'tools', bad: { tool: 'ApplyChange', args: { ...GOOD.modify, file_path: 'tests/test_ops.py', span_id: 'test_add' } }, problem: /is a test file/ },
  ];
}

let index: CodeIndex;
let parser: PythonSpanParser;
const savedCwd = process.cwd();
const savedHome = process.env.HOME;
const seen: { name: string; state: StateName; problem: string }[] = [];

function runWith(answers: readonly Answer[], protocol: 'json' | 'tools', agent: Partial<AgentSettings> = {}, files: ReadonlyMap<string, string> = FILES, idx?: CodeIndex) {
  const policy = new ScriptedPolicy(answers, 'scripted-hostile');
  const trajectory = runTrajectory({
    ids: { run: 'hostile', iteration: 0, instance_id: INSTANCE.instance_id, sample_index: 0 },
    seed: 3,
    instance: INSTANCE,
    files,
    index: idx ?? index,
    parser,
    policy,
    agent: { ...AgentSchema.parse({}), protocol, ...agent },
    sampling: { temperature: 1, top_p: 1 },
  });
  return { policy, trajectory };
}

/** Checks every record must pass, hostile content included. */
function checkRecord(t: Trajectory, policy: ScriptedPolicy): void {
  // parses and survives JSON
  const text = JSON.stringify(t);
  expect(TrajectorySchema.parse(JSON.parse(text))).toEqual(t);
  expect(text.length).toBeLessThan(8 * STORED_REPLY_CHARS);
  // the final patch never touches .git or a test file
  for (const change of patchFileChanges(t.patch)) {
    for (const p of [change.oldPath, change.newPath]) {
      if (p === null) continue;
      expect(p.split('/').map((s) => s.toLowerCase())).not.toContain('.git');
      expect(isTestPath(p)).toBe(false);
    }
  }
  // nothing read from outside the snapshot ever reaches the model
  for (const request of policy.requests) {
    const all = request.messages.map((m) => m.content ?? '').join('\n');
    expect(all).not.toContain(PASSWD_HEAD);
    // no prompt carries a huge reply back
    expect(all.length).toBeLessThan(100_000);
    checkToolProtocol(request.messages);
  }
}

/** An OpenAI-style server accepts the history: every tool call answered, arguments JSON objects. */
function checkToolProtocol(messages: readonly ChatMessage[]): void {
  messages.forEach((message, i) => {
    if (message.role === 'assistant' && message.tool_calls) {
      const ids = message.tool_calls.map((c) => c.id);
      for (const c of message.tool_calls) {
        const args: unknown = JSON.parse(c.function.arguments);
        expect(typeof args === 'object' && args !== null && !Array.isArray(args)).toBe(true);
        expect(c.id).not.toBe('');
      }
      const answered = messages.slice(i + 1, i + 1 + ids.length).map((m) => (m.role === 'tool' ? m.tool_call_id : null));
      expect(answered).toEqual(ids);
    }
    if (message.role === 'tool') {
      const before = messages.slice(0, i).reverse().find((m) => m.role === 'assistant');
      expect(before?.role === 'assistant' && before.tool_calls?.some((c) => c.id === message.tool_call_id)).toBe(true);
    }
  });
}

beforeAll(async () => {
  parser = await PythonSpanParser.create();
  index = await CodeIndex.build(FILES, parser);
  mkdirSync(CWD);
  mkdirSync(HOME);
  // Run with a temporary HOME and working directory: nothing may appear in them.
  process.chdir(CWD);
  process.env.HOME = HOME;
});

afterAll(() => {
  process.chdir(savedCwd);
  if (savedHome === undefined) delete process.env.HOME;
  else process.env.HOME = savedHome;
  rmSync(work, { recursive: true, force: true });
});

describe('hostile model output, each case at the state where it matters', () => {
  const cases = corpus();

  it('the corpus has at least 50 distinct cases', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    console.log(`hostile actions: ${cases.length} cases`);
    expect(cases.length).toBeGreaterThanOrEqual(50);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const protocol = c.protocol ?? 'json';
    const clarifyNeeded = c.state === 'ClarifyCodeChange';
    const agent: Partial<AgentSettings> = clarifyNeeded ? { clarify_above_tokens: 5 } : {};
    const { before, after } = route(c.state, protocol, clarifyNeeded);
    const tries = AgentSchema.parse({}).max_retries + 1;

    // 1. The bad answer, again and again: retry messages, then an error blamed on the model.
    const again = runWith([...before, ...Array<Answer>(tries).fill(c.bad)], protocol, agent);
    const t = await again.trajectory;
    expect(t.outcome).toMatchObject({ status: 'error', fault: 'model', reason: expect.stringContaining(`${c.state}: ${tries} invalid actions in a row`) });
    expect(t.transitions.at(-1)).toMatchObject({ from: c.state, to: 'Aborted', trigger: 'retries_exhausted' });
    const bad = t.calls.slice(-tries);
    expect(bad.every((call) => call.state === c.state && call.invalid !== null)).toBe(true);
    if (c.problem) expect(bad[0]!.invalid).toMatch(c.problem);
    for (const request of again.policy.requests.slice(-tries + 1)) {
      const last = request.messages.at(-1)!;
      expect(last.role === 'user' || last.role === 'tool').toBe(true);
      expect(last.content).toMatch(new RegExp(`^${RETRY_PREFIX}`));
    }
    expect(t.patch).toBe('');
    checkRecord(t, again.policy);
    seen.push({ name: c.name, state: c.state, problem: bad[0]!.invalid! });

    // 2. The bad answer once, then the right ones: the run recovers to the right patch.
    const once = runWith([...before, c.bad, ...after], protocol, agent);
    const r = await once.trajectory;
    expect(r.outcome).toEqual({ status: 'finished', reason: 'add returns the sum' });
    expect(r.patch).toBe(EXPECTED_PATCH);
    expect(r.calls.filter((call) => call.invalid !== null)).toHaveLength(1);
    checkRecord(r, once.policy);

    // Nothing outside the trajectory's own copy changed.
    expect(digestMap(FILES)).toBe(FILES_DIGEST);
    expect(readdirSync(CWD, { recursive: true })).toEqual([]);
    expect(readdirSync(HOME, { recursive: true })).toEqual([]);
    expect(existsSync(canary)).toBe(false);
    expect(existsSync(path.dirname(canary))).toBe(false);
  });

  it('every case was tried and named its problem', () => {
    expect(seen).toHaveLength(cases.length);
    console.log(seen.map((s) => `  ${s.state.padEnd(17)} ${s.name}: ${s.problem.slice(0, 110)}`).join('\n'));
  });
});

describe('record sizes', () => {
  it('a 1 MB reply is stored whole; a 50 MB one is cut to 2 MiB with a note; both records serialise', async () => {
    const mb = j({ scratch_pad: 'lorem ipsum dolor sit amet, '.repeat(37_450) });
    expect(mb.length).toBeGreaterThan(1_000_000);
    const fifty = j({ scratch_pad: 'z'.repeat(50 * 1024 * 1024) });
    const { policy, trajectory } = runWith([mb, fifty, good('search', 'json'), good('identify', 'json'), good('decide', 'json'), good('modify', 'json'), EDIT, good('finish', 'json')], 'json');
    const t = await trajectory;
    expect(t.outcome.status).toBe('finished');
    expect(t.calls[0]!.completion.content).toBe(mb);
    const cut = t.calls[1]!.completion.content!;
    expect(cut.length).toBeLessThan(STORED_REPLY_CHARS + 100);
    expect(cut.startsWith(fifty.slice(0, 1000))).toBe(true);
    expect(cut).toMatch(/\[rft: \d+ more characters cut\]$/);
    // the retry messages quote the replies cut short
    expect(policy.requests[1]!.messages.at(-2)!.content!.length).toBeLessThan(5_000);
    expect(t.tokens.per_call.every((n) => Number.isInteger(n) && n > 0)).toBe(true);
    checkRecord(t, policy);
  });

  it('token counts of degenerate text never stall (a 1 MB run of one letter is estimated, ordinary text counted exactly)', async () => {
    const { messagesTokens } = await import('../../src/agent/run.js');
    const { countTokens } = await import('../../src/util/tokens.js');
    const ordinary = 'def add(a, b):\n    return a + b\n'.repeat(100);
    expect(messagesTokens([{ role: 'user', content: ordinary }], 'cl100k_base')).toBe(4 + countTokens(ordinary));
    const run = messagesTokens([{ role: 'user', content: 'a'.repeat(1024 * 1024) }, { role: 'user', content: ' '.repeat(100_000) }], 'cl100k_base');
    expect(run).toBe(8 + (1024 * 1024) / 4 + 100_000 / 4);
  });
});

describe('file patterns from the model', () => {
  it('a catastrophic glob is answered at once (it used to backtrack for minutes) and means what the RegExp form means', async () => {
    const stars = `${'*a'.repeat(40)}*b`;
    const { trajectory } = runWith(
      [searchRequest({ file_pattern: stars, function_names: ['aaaa'] }), good('search', 'json'), good('identify', 'json'), good('decide', 'json'), good('modify', 'json'), EDIT, good('finish', 'json')],
      'json',
    );
    const t = await trajectory;
    // No hits is a retry in the same visit (moatless's), not a new visit.
    expect(t.calls[0]!.invalid).toMatch(/found nothing/);
    expect(t.transitions[0]).toMatchObject({ from: 'SearchCode', to: 'IdentifyCode' });
    expect(t.outcome.status).toBe('finished');
    expect(globMatcher(stars)(`x/${'a'.repeat(5000)}.py`)).toBe(false);
    expect(globMatcher(`${'*a'.repeat(40)}*`)(`x/${'a'.repeat(200)}`)).toBe(true);
    // the same answers as the RegExp form, on random globs and paths (the RegExp is safe on these short ones)
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const atoms = ['a', 'b', '/', '*', '**', '**/', '?', '[ab]', '[!a]', '{a,b/}', '{,*}', '.', '\\*', '[', '{', 'x.py'];
    const chars = ['a', 'b', '/', '.', 'x', 'p', 'y', '*', '\n'];
    let compared = 0;
    for (let k = 0; k < 3000; k++) {
      const glob = Array.from({ length: 1 + rnd(6) }, () => atoms[rnd(atoms.length)]).join('');
      const regexp = globToRegExp(glob);
      const matcher = globMatcher(glob);
      for (let n = 0; n < 10; n++) {
        const file = Array.from({ length: rnd(10) }, () => chars[rnd(chars.length)]).join('');
        expect({ glob, file, match: matcher(file) }).toEqual({ glob, file, match: regexp.test(file) });
        compared++;
      }
    }
    expect(compared).toBe(30_000);
  });

  it('identifying a file as ./path or with backslashes puts one file in the context, under its own name', async () => {
    const variants = ['./calc/ops.py', 'calc\\ops.py'];
    for (const filePath of variants) {
      const { trajectory } = runWith(
        [good('search', 'json'), identify([{ file_path: filePath, span_ids: ['add'] }]), good('decide', 'json'), good('modify', 'json'), EDIT, good('finish', 'json')],
        'json',
      );
      const t = await trajectory;
      expect({ filePath, outcome: t.outcome.status, patch: t.patch }).toEqual({ filePath, outcome: 'finished', patch: EXPECTED_PATCH });
    }
  });
});

describe('symlinks in the repository never reach the agent', () => {
  let docker: Docker;
  const RUN = `hostile-actions-${process.pid}`;
  const IMAGE = `rft-hostile-symlink:${process.pid}`;

  beforeAll(async () => {
    docker = await connectEngine();
  });

  afterAll(async () => {
    await docker.getImage(IMAGE).remove({ force: true }).catch(() => {});
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) });
    expect(left).toEqual([]);
  });

  /** Tries each path in IdentifyCode and in PlanToCode after a search for `fn` (a function of `file`). */
  async function agentOn(files: ReadonlyMap<string, string>, paths: string[], file: string, fn: string) {
    const idx = await CodeIndex.build(files, parser);
    const before = digestMap(files);
    const found = searchRequest({ function_names: [fn.split('.').pop()] });
    const chosen = identify([{ file_path: file, span_ids: [fn] }]);
    for (const filePath of paths) {
      const attempt = identify([{ file_path: filePath, span_ids: [':imports'] }]);
      const plan = modify({ file_path: filePath, span_id: fn });
      const a = runWith([found, attempt, attempt, attempt], 'json', {}, files, idx);
      const b = runWith([found, chosen, good('decide', 'json'), plan, plan, plan], 'json', {}, files, idx);
      for (const { policy, trajectory } of [a, b]) {
        const t = await trajectory;
        expect({ filePath, status: t.outcome.status, patch: t.patch }).toEqual({ filePath, status: 'error', patch: '' });
        expect(t.calls.at(-1)!.invalid).toMatch(/not in the search results|not in the repository|leaves the repository|is absolute|inside \.git/);
        checkRecord(t, policy);
      }
    }
    expect(digestMap(files)).toBe(before);
  }

  it('a crafted snapshot archive: symlinks, hard links, ../ and absolute names and .git are dropped', async () => {
    const image = 'sweb.eval.x86_64.minigym__unitkit-101:latest';
    const imageId = (await docker.getImage(image).inspect()).Id;
    const cacheDir = path.join(work, 'snapshots');
    mkdirSync(cacheDir, { recursive: true });
    const archive = pack();
    const add = (header: Parameters<typeof archive.entry>[0], body?: string) =>
      new Promise<void>((resolve, reject) => archive.entry(header, body ?? '', (err) => (err ? reject(err) : resolve())));
    await add({ name: 'calc/__init__.py' }, '');
    await add({ name: 'calc/ops.py' }, FILES.get('calc/ops.py')!);
    await add({ name: 'evil', type: 'symlink', linkname: '/etc/passwd' });
    await add({ name: 'etc', type: 'symlink', linkname: '/etc' });
    await add({ name: 'calc/hard.py', type: 'link', linkname: '/etc/passwd' });
    await add({ name: '../escape.py' }, 'print("escaped")\n');
    await add({ name: '/abs.py' }, 'print("absolute")\n');
    await add({ name: '.git/config' }, '[core]\n');
    await add({ name: './sub/../../up.py' }, 'x = 1\n');
    archive.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of archive as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    writeFileSync(path.join(cacheDir, `${imageId.replace(/[^A-Za-z0-9]+/g, '_')}.tar`), Buffer.concat(chunks));

    const snapshot = await takeSnapshot(docker, image, { cacheDir, labels: { [LABEL.run]: RUN } });
    expect([...snapshot.files.keys()].sort()).toEqual(['calc/__init__.py', 'calc/ops.py']);
    for (const text of snapshot.files.values()) expect(text).not.toContain(PASSWD_HEAD);
    await agentOn(snapshot.files, ['evil', 'etc/passwd', 'calc/hard.py', '../escape.py', '/abs.py', '.git/config', 'up.py'], 'calc/ops.py', 'add');
  });

  it('an image whose /testbed holds links to /etc/passwd and /etc: the snapshot has neither, the agent can name neither', async () => {
    await buildImage(docker, {
      tag: IMAGE,
      context: [
        {
          name: 'Dockerfile',
          content: [
            'FROM sweb.eval.x86_64.minigym__unitkit-101:latest',
            'RUN cd /testbed && ln -s /etc/passwd evil && ln -s /etc etc && ln -s ../../../../etc/shadow unitkit/shadow.py \\',
            '    && git add evil etc unitkit/shadow.py && git -c user.name=t -c user.email=t@t commit -qm links',
            '',
          ].join('\n'),
        },
      ],
    });
    const snapshot = await takeSnapshot(docker, IMAGE, { cacheDir: path.join(work, 'image-snapshots'), labels: { [LABEL.run]: RUN } });
    expect(snapshot.files.has('unitkit/units.py')).toBe(true);
    for (const name of ['evil', 'etc', 'etc/passwd', 'unitkit/shadow.py']) expect({ name, has: snapshot.files.has(name) }).toEqual({ name, has: false });
    for (const text of snapshot.files.values()) expect(text).not.toContain(PASSWD_HEAD);
    await agentOn(snapshot.files, ['evil', 'etc/passwd', 'unitkit/shadow.py'], 'unitkit/units.py', 'Unit.from_base');
  });
});
