import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';

export const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Plain-JavaScript copies of src/ (type-stripped with the TypeScript compiler, no type check),
 * so that a test can run the rft side in a separate node process and kill it, as a user's
 * Ctrl-C or an OOM kill would. Returns the folder holding src/ (node_modules is linked beside it).
 */
export function transpileSources(): string {
  const out = mkdtempSync(path.join(tmpdir(), 'rft-js-'));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const target = path.join(out, path.relative(ROOT, full)).replace(/\.ts$/, '.js');
        mkdirSync(path.dirname(target), { recursive: true });
        const { outputText } = ts.transpileModule(readFileSync(full, 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
          fileName: full,
        });
        writeFileSync(target, outputText);
      }
    }
  };
  walk(path.join(ROOT, 'src'));
  writeFileSync(path.join(out, 'package.json'), '{"type":"module"}\n');
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  return out;
}
