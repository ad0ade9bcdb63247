/**
 * Listed ids that no test run can produce. SWE-bench's pytest parser takes the first
 * whitespace-separated word after any line that starts with a status word, so a progress column
 * or a separator that follows one becomes an "id": `PASSED [100%]` gives `[100%]` (listed in
 * pytest-dev__pytest-5262's and -7521's PASS_TO_PASS), `PASSED [ 50%]` gives `[`, a progress
 * column run into a separator gives `[100%]------…`, and a folded skip line `SKIPPED [1] f.py:3: …`
 * gives `[1]` (SWE-bench's newer parser drops that last one). No test is named by them: a node id
 * starts with its file's path, a unittest id with the method name, a sympy id with `test_`.
 *
 * Grading leaves them out of both lists (gradeTests): such an id says nothing about any test, and
 * counting it missing would make the instance unresolvable whatever the patch. SWE-bench instead
 * grades it by whatever its parser reads from similar text in the new log (missing, and so failed,
 * when there is none); `rft tasks validate` names them and says so.
 */
const PROGRESS_FRAGMENT = /^\[\s*\d*\s*%?\]?[-=_]*$/;
const SEPARATOR = /^[-=_]*$/;

export function isJunkId(id: string): boolean {
  const text = id.trim();
  return PROGRESS_FRAGMENT.test(text) || SEPARATOR.test(text);
}

/** The listed ids that are junk, in list order. */
export function junkIds(ids: readonly string[]): string[] {
  return ids.filter(isJunkId);
}
