import type { IdRewrite } from './repos.js';
import { recordStatus, type TestStatusMap } from './pytest-log.js';

/** `test_x[/tmp/pytest-of-root/pytest-0/a/file.txt]` → `test_x[/file.txt]`, as parse_log_pytest_options writes it. */
function pathBasename(id: string): string {
  const match = /^(.*?)\[(.*)\]$/.exec(id);
  if (!match) return id;
  const [, main, option] = match as unknown as [string, string, string];
  if (!option.startsWith('/') || option.startsWith('//') || option.includes('*')) return id;
  return `${main}[/${option.split('/').pop() ?? ''}]`;
}

const REWRITES: Readonly<Record<IdRewrite, (id: string) => string>> = {
  path_basename: pathBasename,
  mousebutton: (id) => id.replace(/MouseButton\.LEFT/g, '1').replace(/MouseButton\.RIGHT/g, '3'),
};

/**
 * The observed ids as the repository's reference parser would have written them (the datasets'
 * lists come from those parsers). The observed id stays; the rewritten one is added beside it.
 */
export function rewriteIds(statuses: TestStatusMap, rewrite: IdRewrite | null): TestStatusMap {
  if (rewrite === null) return statuses;
  const out: TestStatusMap = { ...statuses };
  for (const [id, status] of Object.entries(statuses)) {
    const rewritten = REWRITES[rewrite](id);
    if (rewritten !== id) recordStatus(out, rewritten, status);
  }
  return out;
}
