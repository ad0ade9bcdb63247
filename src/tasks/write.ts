import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';

/**
 * Writes instances as one JSONL instance file, one per line (its folder made when missing),
 * atomically: a reader sees the old file or the whole new one.
 */
export function writeInstanceFile(out: string, instances: readonly unknown[]): void {
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileAtomic(out, `${instances.map((x) => JSON.stringify(x)).join('\n')}\n`);
}
