import path from 'node:path';
import type { DoctorContext } from '../context.js';
import { fail, ok, type CheckResult } from '../record.js';

/** Each task set's file is readable, parses, and its filters (ids_file, repos) leave instances. */
export async function checkTasks(ctx: DoctorContext): Promise<CheckResult[]> {
  return (await ctx.taskSets()).map((probe) => {
    const resolved = path.resolve(ctx.baseDir, probe.file);
    const what = `task file ${probe.field}.path`;
    if (probe.error === null) return ok('tasks', what, `${probe.instances!.length} instance(s) in ${resolved}`);
    const missing = /not found/.test(probe.error);
    const fix = missing
      ? `fetch it to that path (\`rft tasks fetch <dataset> --out ${resolved}\`), or fix ${probe.field}.path: relative paths resolve against the recipe's folder ${ctx.baseDir}`
      : `fix the file (\`rft tasks convert ${resolved} --out tasks.jsonl\` lists every problem) or the ${probe.field} filters`;
    // The loader's own message carries its fix; the line keeps what was found and the path.
    const detail = missing ? `not found: ${resolved}` : probe.error.split('\n').slice(0, 3).join(' / ');
    return fail('tasks', what, detail, fix);
  });
}
