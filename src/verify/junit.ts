import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { recordStatus, type TestStatus, type TestStatusMap } from './pytest-log.js';

/**
 * Parse a pytest junit report (`--junitxml`, xunit2 or xunit1) into node id → status.
 *
 * pytest writes a node id `tests/test_x.py::TestFoo::test_m[p]` as classname `tests.test_x.TestFoo`
 * and name `test_m[p]`: the file path loses `.py` and its `/` become `.`, so the split between
 * module and class names is lost. `knownTestFiles` (the test patch's files, the files of the
 * FAIL_TO_PASS / PASS_TO_PASS ids) puts it back: the module is the longest known file whose
 * dotted form is the classname or a prefix of it (this also handles directories with dots in
 * their names). Without a matching file, the class part is taken to start at the first
 * capitalised component (pytest's default `Test*` class naming) — a guess, used only then.
 *
 * Children: `<error>` → ERROR, `<failure>` → FAILED, `<skipped type="pytest.xfail">` → XFAIL,
 * other `<skipped>` → SKIPPED, none → PASSED. pytest records a non-strict XPASS as a plain pass
 * here; the summary line says XPASS and mergeStatuses keeps the worse of the two.
 *
 * A collection error is a testcase with an `<error>`, empty classname and the dotted module as
 * name (pytest 9; the reverse — module as classname, empty name — is accepted too); it maps to
 * the file path, the id pytest's summary prints for it.
 *
 * Throws on XML that is not well-formed. The parser alone is lenient: a report cut off inside a
 * `<testcase>` would read as a pass for a test whose `<failure>` was lost. A report that does not
 * parse is no report (mergeStatuses(null, …)): pytest did not finish writing it.
 */
export function parseJunitXml(xml: string, knownTestFiles: string[], listedIds: readonly string[] = []): TestStatusMap {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw new Error(`malformed junit XML (line ${valid.err.line}): ${valid.err.msg}`);
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    htmlEntities: true, // decodes numeric character references such as &#10;
    isArray: (name, _path, _leaf, isAttribute) => !isAttribute && ARRAY_TAGS.has(name),
  });
  const doc: unknown = parser.parse(xml);
  const statuses: TestStatusMap = {};
  const files = [...new Set(knownTestFiles)].map((file) => ({ file, dotted: dottedModule(file) }));
  const listed = new Map<string, string>();
  for (const id of listedIds) {
    const mangled = mangleNodeId(id);
    listed.set(`${mangled.classname}\0${mangled.name}`, id);
  }
  for (const testcase of collectTestcases(doc)) {
    const classname = attr(testcase, 'classname');
    const name = attr(testcase, 'name');
    if (classname === '' && name === '') continue;
    const id = listed.get(`${classname}\0${name}`) ?? junitToNodeId(classname, name, files);
    recordStatus(statuses, id, statusOf(testcase));
  }
  return statuses;
}

const ARRAY_TAGS = new Set(['testsuites', 'testsuite', 'testcase', 'failure', 'error', 'skipped']);

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function children(node: Node, tag: string): Node[] {
  const value = node[tag];
  return Array.isArray(value) ? value.filter(isNode) : [];
}

/** Testcases under the root, whether wrapped in <testsuites> or not, suites nested or not. */
function collectTestcases(doc: unknown): Node[] {
  const found: Node[] = [];
  const visitSuite = (suite: Node): void => {
    found.push(...children(suite, 'testcase'));
    for (const inner of children(suite, 'testsuite')) visitSuite(inner);
  };
  if (!isNode(doc)) return found;
  for (const wrapper of children(doc, 'testsuites')) visitSuite(wrapper);
  for (const suite of children(doc, 'testsuite')) visitSuite(suite);
  return found;
}

function attr(node: Node, name: string): string {
  const value = node[`@_${name}`];
  return typeof value === 'string' ? value : '';
}

function statusOf(testcase: Node): TestStatus {
  if (children(testcase, 'error').length > 0) return 'ERROR';
  if (children(testcase, 'failure').length > 0) return 'FAILED';
  const skipped = children(testcase, 'skipped');
  if (skipped.length > 0) return skipped.some((s) => attr(s, 'type') === 'pytest.xfail') ? 'XFAIL' : 'SKIPPED';
  return 'PASSED';
}

interface KnownFile {
  file: string;
  dotted: string;
}

/**
 * The classname and name pytest's junit writer gives a node id (its `mangle_test_address`): the
 * part before the first `[` is split on `::`, the file part loses `.py` and its `/` become `.`,
 * the parameters go back on the last part; classname is every part but the last joined by `.`.
 * Matching a listed id this way is exact even where rebuilding the id from the junit entry is
 * ambiguous: mypy's data-driven ids `mypy/test/testcheck.py::TypeCheckSuite::check-foo.test::testBar`
 * are written as classname `mypy.test.testcheck.TypeCheckSuite.check-foo.test`, name `testBar`.
 */
export function mangleNodeId(id: string): { classname: string; name: string } {
  const bracket = id.indexOf('[');
  const path = bracket < 0 ? id : id.slice(0, bracket);
  const params = bracket < 0 ? '' : id.slice(bracket);
  const names = path.split('::');
  names[0] = names[0]!.split('/').join('.').replace(/\.py$/, '');
  names[names.length - 1] += params;
  return { classname: names.slice(0, -1).join('.'), name: names[names.length - 1]! };
}

/** `tests/v1.2/test_x.py` → `tests.v1.2.test_x`, the way pytest writes it into classname. */
export function dottedModule(file: string): string {
  return file.replace(/\.py$/, '').split('/').join('.');
}

/** The file part of a node id: `tests/x.py::T::t[a::b]` → `tests/x.py`. */
export function fileOfTestId(id: string): string {
  const at = id.indexOf('::');
  return at < 0 ? id : id.slice(0, at);
}

/** Rebuild a pytest node id from a junit classname and name. */
export function junitToNodeId(classname: string, name: string, knownTestFiles: (string | KnownFile)[]): string {
  const files = knownTestFiles.map((f) => (typeof f === 'string' ? { file: f, dotted: dottedModule(f) } : f));
  // Collection error: the dotted module sits in one attribute and the other is empty.
  if (classname === '' || name === '') return moduleToFile(classname || name, files);

  let best: KnownFile | undefined;
  for (const candidate of files) {
    const fits = classname === candidate.dotted || classname.startsWith(`${candidate.dotted}.`);
    if (fits && (!best || candidate.dotted.length > best.dotted.length)) best = candidate;
  }
  if (best) {
    const classes = classname.slice(best.dotted.length + 1);
    return [best.file, ...(classes ? classes.split('.') : []), name].join('::');
  }
  const parts = classname.split('.');
  const firstClass = parts.findIndex((part) => /^[A-Z]/.test(part));
  const moduleParts = firstClass < 0 ? parts : parts.slice(0, firstClass);
  const classParts = firstClass < 0 ? [] : parts.slice(firstClass);
  return [`${moduleParts.join('/')}.py`, ...classParts, name].join('::');
}

function moduleToFile(dotted: string, files: KnownFile[]): string {
  const known = files.find((f) => f.dotted === dotted);
  return known ? known.file : `${dotted.split('.').join('/')}.py`;
}
