import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A stand-in for a command-line tool (a trainer's CLI): `<dir>/bin/<tool>` writes its arguments,
 * one a line, to `argsFile`. Run a wrapper with `env` and the stub is found first on PATH.
 */
export function toolStub(dir: string, tool: string): { env: NodeJS.ProcessEnv; argsFile: string } {
  const bin = path.join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const argsFile = path.join(dir, 'tool-args');
  writeFileSync(path.join(bin, tool), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > ${JSON.stringify(argsFile)}\n`);
  chmodSync(path.join(bin, tool), 0o755);
  return { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, argsFile };
}
