/**
 * What a recipe command (finetune.command, serve.command) starts: its program and, for an
 * interpreter (`bash scripts/train-trl.sh …`, `node ../scripts/sim-train.mjs …`), the script it
 * is given. Read from the first simple command only, the way /bin/sh would find it; a word built
 * from a placeholder or a shell expansion cannot be known before the run and is left unread.
 */

export interface CommandProgram {
  /** The first program word, e.g. `bash`, `vllm`, `./train.sh`, `/opt/bin/train`. */
  program: string;
  /** The script an interpreter is given, when it is given one (not for `-c`/`-m`). */
  script: string | null;
}

/** Interpreters whose first non-option argument is a script file. */
const INTERPRETERS = new Set(['bash', 'sh', 'dash', 'zsh', 'node', 'python', 'python3', 'perl', 'ruby']);
/** Prefixes that run the next word as the program. */
const PREFIXES = new Set(['exec', 'nohup', 'time', 'env', 'command']);
/** Interpreter options that mean there is no script file (inline code, a module, stdin). */
const NO_SCRIPT_OPTIONS = new Set(['-c', '-m', '-e', '--eval', '-p', '--print', '-s', '-']);
/** Interpreter options that take a value (so the next word is not the script). */
const OPTIONS_WITH_VALUE = new Set(['-r', '--require', '--import', '--loader', '-W', '-X', '-O', '--rcfile', '--init-file', '-o']);

/** Commands /bin/sh runs without looking anything up on PATH. */
export const SHELL_BUILTINS = new Set([
  ':', '.', 'source', 'true', 'false', 'exit', 'echo', 'printf', 'cd', 'export', 'set', 'unset', 'test', '[', 'eval', 'exec', 'wait', 'read', 'trap', 'umask', 'ulimit', 'shift', 'return',
]);

/** Shell words of the first simple command: quotes removed, stopped at ; & | newline or a redirection. */
export function firstSimpleCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < command.length) word += command[++i];
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (/\s/.test(c) && c !== '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === '\n' || c === ';' || c === '&' || c === '|' || c === '<' || c === '>' || c === '(' || c === ')') {
      break;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A word rft cannot know before the run: a {placeholder} or a shell expansion. */
function unknowable(word: string): boolean {
  return /[{}$`*?]/.test(word);
}

/** The program (and script) a command starts, or null when the command does not say it plainly. */
export function commandProgram(command: string): CommandProgram | null {
  const words = firstSimpleCommand(command);
  let i = 0;
  // VAR=value prefixes and launchers such as `exec`, `nohup`, `env VAR=1`.
  while (i < words.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!) || PREFIXES.has(words[i]!))) i++;
  const program = words[i];
  if (program === undefined || unknowable(program)) return null;
  const name = program.slice(program.lastIndexOf('/') + 1);
  if (!INTERPRETERS.has(name)) return { program, script: null };
  for (let j = i + 1; j < words.length; j++) {
    const arg = words[j]!;
    if (NO_SCRIPT_OPTIONS.has(arg)) return { program, script: null };
    if (OPTIONS_WITH_VALUE.has(arg)) {
      j++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    return { program, script: unknowable(arg) ? null : arg };
  }
  return { program, script: null };
}

/** A program word that names a file rather than a command looked up on PATH. */
export function isPathWord(word: string): boolean {
  return word.includes('/');
}
