import { accessSync, constants, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DoctorContext } from '../context.js';
import { fail, ok, type CheckResult } from '../record.js';

/** The nearest folder on the way to `dir` that exists (the one a mkdir -p would start from). */
export function nearestExisting(dir: string): string {
  let current = path.resolve(dir);
  while (!existsSync(current) && path.dirname(current) !== current) current = path.dirname(current);
  return current;
}

/** The runs folder can be written: a probe file in it, or the folder it would be created in is writable. */
export async function checkOutput(ctx: DoctorContext): Promise<CheckResult[]> {
  const runsDir = path.resolve(ctx.options.runsDir);
  const what = `runs folder ${runsDir}`;
  const fix = `make it writable for this user, or choose another with --runs-dir`;
  if (existsSync(runsDir)) {
    if (!statSync(runsDir).isDirectory()) return [fail('output', what, 'exists and is not a folder', fix)];
    const probe = path.join(runsDir, `.rft-doctor-${process.pid}.tmp`);
    try {
      writeFileSync(probe, '');
      rmSync(probe, { force: true });
      return [ok('output', what, 'writable')];
    } catch (err) {
      return [fail('output', what, `cannot write in it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, fix)];
    }
  }
  const parent = nearestExisting(runsDir);
  try {
    accessSync(parent, constants.W_OK);
    return [ok('output', what, `will be created (in ${parent}, writable)`)];
  } catch {
    return [fail('output', what, `does not exist and ${parent} is not writable`, fix)];
  }
}
