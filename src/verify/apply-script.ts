import { ApplyMethodSchema, type ApplyMethod } from './verdict.js';
import { shQuote } from './eval-script.js';

export const MODEL_PATCH_PATH = '/tmp/rft/model.patch';
const RESULT_PREFIX = 'RFT_APPLY=';

/**
 * Bash that applies the model patch in /testbed, trying in SWE-bench's order — `git apply`,
 * `git apply --reject`, `patch --fuzz=5` — and putting the tree back between attempts (tracked
 * files to HEAD, files the attempt created removed), then prints `RFT_APPLY=<method|failed>`.
 */
export function renderApplyScript(patchPath: string = MODEL_PATCH_PATH, workdir = '/testbed'): string {
  const patch = shQuote(patchPath);
  const attempts: [ApplyMethod, string][] = [
    ['git_apply', `git apply --verbose -- ${patch}`],
    ['git_apply_reject', `git apply --verbose --reject -- ${patch}`],
    ['patch_fuzz', `patch --batch --fuzz=5 -p1 -i ${patch}`],
  ];
  return [
    '#!/bin/bash',
    'set -uo pipefail',
    `cd ${shQuote(workdir)} || { echo "rft: no repository at ${workdir}"; exit 95; }`,
    'rft_before=$(mktemp)',
    'git ls-files --others -z | sort -z > "$rft_before"',
    'rft_reset() {',
    '  git checkout -q HEAD -- . 2>/dev/null',
    '  git ls-files --others -z | sort -z | comm -z -13 "$rft_before" - | xargs -0 -r rm -f --',
    '}',
    ...attempts.flatMap(([method, command]) => [
      `echo ${shQuote(`rft: trying ${method}`)}`,
      `if ${command}; then echo "${RESULT_PREFIX}${method}"; exit 0; fi`,
      'rft_reset',
    ]),
    `echo "${RESULT_PREFIX}failed"`,
    'exit 0',
    '',
  ].join('\n');
}

/** The method that applied the patch, 'failed', or null when the script did not finish. */
export function parseApplyOutput(output: string): ApplyMethod | 'failed' | null {
  const line = output
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(RESULT_PREFIX));
  if (!line) return null;
  const value = line.slice(RESULT_PREFIX.length).trim();
  if (value === 'failed') return 'failed';
  const parsed = ApplyMethodSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
