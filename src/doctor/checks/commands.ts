import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { commandProgram, isPathWord, SHELL_BUILTINS } from '../../recipe/command-words.js';
import { pathProblem } from '../../recipe/paths.js';
import type { DoctorContext } from '../context.js';
import { fail, ok, warn, type CheckResult } from '../record.js';

/** How long a wrapper's --help may take (it only prints its header). */
const HELP_TIMEOUT_MS = 5_000;

/** The trainer command can start: its program is on PATH or a file under the base, its script exists, a bundled wrapper answers --help and finds its tool. */
export async function checkTrainer(ctx: DoctorContext): Promise<CheckResult[]> {
  const { finetune } = ctx.recipe;
  if (finetune.backend === 'openai') {
    const what = `trainer OpenAI fine-tuning (${finetune.base_model})`;
    return ctx.options.env[finetune.api_key_env]
      ? [ok('trainer', what, `API key in $${finetune.api_key_env}`)]
      : [fail('trainer', what, `$${finetune.api_key_env} is not set`, `export ${finetune.api_key_env}=… (finetune.api_key_env names the variable)`)];
  }
  return [await checkCommand(ctx, 'trainer', 'finetune.command', finetune.command)];
}

/** The server command (serve.kind command) can start, as the trainer's. */
export async function checkServer(ctx: DoctorContext): Promise<CheckResult[]> {
  const { serve } = ctx.recipe;
  if (serve.kind !== 'command') return [];
  return [await checkCommand(ctx, 'server', 'serve.command', serve.command)];
}

async function checkCommand(ctx: DoctorContext, check: string, field: string, command: string): Promise<CheckResult> {
  const started = commandProgram(command);
  const what = `${check} command ${field}`;
  if (started === null) {
    return warn(check, what, 'its program is a placeholder or a shell expansion: not checked', 'start the command with the program itself (e.g. bash ../scripts/train-trl.sh …)');
  }
  const base = ctx.baseDir;
  const found: string[] = [];
  if (isPathWord(started.program)) {
    const resolved = path.resolve(base, started.program);
    const problem = pathProblem({ field, fieldPath: [], what: 'program', written: started.program, resolved });
    if (problem) return fail(check, what, problem, `fix the path in ${field}: it runs from the recipe's folder ${base}`);
    found.push(resolved);
  } else if (SHELL_BUILTINS.has(started.program)) {
    found.push(`${started.program} (shell built-in)`);
  } else {
    const onPath = which(started.program, ctx.options.env.PATH ?? '');
    if (onPath === null) {
      return fail(check, what, `\`${started.program}\` is not on PATH`, `install ${started.program} on this machine (the command runs where rft runs), or name it by its path`);
    }
    found.push(onPath);
  }
  if (started.script !== null) {
    const resolved = path.resolve(base, started.script);
    const problem = pathProblem({ field, fieldPath: [], what: 'script', written: started.script, resolved });
    if (problem) return fail(check, what, problem, `fix the path in ${field}: it runs from the recipe's folder ${base} (the bundled wrappers are ${path.relative(base, path.resolve(import.meta.dirname, '../../../scripts')) || '.'}/train-*.sh from there)`);
    found.push(resolved);
    const wrapper = await checkWrapper(ctx, resolved);
    if (wrapper !== null) return wrapper.ok ? ok(check, what, `${found.join(', ')}; ${wrapper.detail}`) : fail(check, what, wrapper.detail, wrapper.fix);
  }
  return ok(check, what, found.join(', '));
}

/**
 * A bundled trainer wrapper (scripts/train-*.sh): it must answer --help, and the tool it runs
 * (read from its own `trainer_require_tool` line) must be on PATH, or it stops with exit 127 after
 * a whole iteration of sampling.
 */
async function checkWrapper(ctx: DoctorContext, script: string): Promise<{ ok: boolean; detail: string; fix: string } | null> {
  if (!/^train-[a-z]+\.sh$/.test(path.basename(script))) return null;
  let text: string;
  try {
    text = readFileSync(script, 'utf8');
  } catch {
    return null;
  }
  const required = /^trainer_require_tool\s+(\S+)\s+"([^"]*)"/m.exec(text);
  if (!required) return null;
  const help = await runHelp(script, ctx.baseDir, ctx.options.env);
  if (help.code !== 0) {
    return { ok: false, detail: `\`bash ${script} --help\` ${help.code === null ? 'did not finish' : `exited with ${help.code}`}: ${help.output.trim().split('\n').slice(-2).join(' / ')}`, fix: 'run it by hand to see why' };
  }
  const tool = required[1]!;
  const onPath = which(tool, ctx.options.env.PATH ?? '');
  if (onPath === null) {
    return {
      ok: false,
      detail: `the wrapper answers --help but runs \`${tool}\`, which is not on PATH`,
      fix: `${required[2]!.replace(/\s+/g, ' ')} on this machine (the trainer runs where rft runs), or wrap the command to run on the GPU box`,
    };
  }
  return { ok: true, detail: `--help answers; ${tool} → ${onPath}`, fix: '' };
}

function runHelp(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [script, '--help'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: HELP_TIMEOUT_MS });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (err) => resolve({ code: null, output: err.message }));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** The file PATH finds for a program name, or null. */
export function which(program: string, searchPath: string): string | null {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
