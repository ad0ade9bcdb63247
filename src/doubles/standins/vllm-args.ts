/**
 * `vllm serve` argument parsing for the SIMULATED vLLM stand-in (a test double), as strict as the
 * real parser of vLLM v0.10.0:
 * - vllm/entrypoints/cli/main.py: a top-level FlexibleArgumentParser `vllm` with -v/--version and
 *   subcommands chat, complete, serve, bench, collect-env, run-batch. It calls parse_args(), so an
 *   argument nobody knows fails at the top level: `vllm: error: unrecognized arguments: …`, exit 2.
 * - vllm/entrypoints/cli/serve.py: `serve` (usage "vllm serve [model_tag] [options]") takes the
 *   model as the optional positional model_tag; --model with `serve` raises ValueError.
 * - vllm/utils/__init__.py FlexibleArgumentParser: `--flag_name` is read as `--flag-name`.
 * - vllm/entrypoints/openai/cli_args.py (frontend flags, LoRAParserAction for --lora-modules:
 *   name=path or a JSON object with name, path and optionally base_model_name) and
 *   vllm/engine/arg_utils.py (engine flags: booleans as --flag/--no-flag, --served-model-name
 *   nargs +, --max-lora-rank choices, --max-model-len human-readable ints like 32k).
 * Only flags a recipe plausibly passes are known here: any other flag fails as an unknown one.
 * Argument errors print the (sub)parser's usage and `<prog>: error: …` and exit 2, as argparse does.
 */

export const VLLM_VERSION = '0.10.0';
export const TOP_USAGE = 'usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...';
export const SERVE_USAGE = 'usage: vllm serve [model_tag] [options]';
const SUBCOMMANDS = ['chat', 'complete', 'serve', 'bench', 'collect-env', 'run-batch'];

export interface LoraModule {
  name: string;
  path: string;
  base_model_name?: string;
}

export interface ServeArgs {
  model: string;
  host: string | null;
  port: number;
  servedModelName: string[] | null;
  maxModelLen: number | null;
  enableLora: boolean;
  loraModules: LoraModule[];
  maxLoraRank: number;
  maxLoras: number;
  revision: string | null;
  apiKey: string | null;
  /** Every flag as parsed, by dest (for flags the stand-in accepts but does not act on). */
  raw: Record<string, unknown>;
}

/** What the command line asks for: serve, or print something and exit with a code. */
export type Parsed = { kind: 'serve'; args: ServeArgs } | { kind: 'exit'; code: number; stdout?: string; stderr?: string };

type Kind =
  | { type: 'str' }
  | { type: 'int' }
  | { type: 'float' }
  | { type: 'hint' } // human-readable int: 32k, 1M
  | { type: 'choice'; choices: readonly string[] }
  | { type: 'intchoice'; choices: readonly number[] }
  | { type: 'bool' } // BooleanOptionalAction: --x / --no-x
  | { type: 'true' } // store_true
  | { type: 'many' } // nargs='+'
  | { type: 'lora' }; // nargs='+', LoRAParserAction

const str = { type: 'str' } as const;
const int = { type: 'int' } as const;
const float = { type: 'float' } as const;
const bool = { type: 'bool' } as const;
const flag = { type: 'true' } as const;

/** The flags the stand-in knows, by option string (after FlexibleArgumentParser's _ → -). */
const FLAGS: Record<string, Kind> = {
  // frontend: vllm/entrypoints/openai/cli_args.py
  '--host': str,
  '--port': int,
  '--uvicorn-log-level': { type: 'choice', choices: ['debug', 'info', 'warning', 'error', 'critical', 'trace'] },
  '--disable-uvicorn-access-log': flag,
  '--allow-credentials': flag,
  '--api-key': str,
  '--lora-modules': { type: 'lora' },
  '--chat-template': str,
  '--chat-template-content-format': { type: 'choice', choices: ['auto', 'string', 'openai'] },
  '--response-role': str,
  '--root-path': str,
  '--return-tokens-as-token-ids': flag,
  '--disable-frontend-multiprocessing': flag,
  '--enable-request-id-headers': flag,
  '--enable-auto-tool-choice': flag,
  '--tool-call-parser': str,
  '--disable-fastapi-docs': flag,
  '--enable-prompt-tokens-details': flag,
  '--enable-server-load-tracking': flag,
  '--max-log-len': int,
  '--disable-log-stats': flag,
  '--disable-log-requests': flag,
  // engine: vllm/engine/arg_utils.py
  '--tokenizer': str,
  '--tokenizer-mode': { type: 'choice', choices: ['auto', 'slow', 'mistral', 'custom'] },
  '--revision': str,
  '--trust-remote-code': bool,
  '--dtype': { type: 'choice', choices: ['auto', 'bfloat16', 'float', 'float16', 'float32', 'half'] },
  '--seed': int,
  '--max-model-len': { type: 'hint' },
  '--gpu-memory-utilization': float,
  '--tensor-parallel-size': int,
  '--pipeline-parallel-size': int,
  '--data-parallel-size': int,
  '--enforce-eager': bool,
  '--max-num-seqs': int,
  '--max-num-batched-tokens': int,
  '--enable-prefix-caching': bool,
  '--enable-chunked-prefill': bool,
  '--served-model-name': { type: 'many' },
  '--enable-lora': bool,
  '--max-loras': int,
  '--max-lora-rank': { type: 'intchoice', choices: [1, 8, 16, 32, 64, 128, 256, 320, 512] },
  '--max-cpu-loras': int,
  '--lora-dtype': { type: 'choice', choices: ['auto', 'bfloat16', 'float16'] },
  '--kv-cache-dtype': { type: 'choice', choices: ['auto', 'fp8', 'fp8_e4m3', 'fp8_e5m2', 'fp8_inc'] },
  '--quantization': str,
  '--swap-space': float,
  '--download-dir': str,
  '--load-format': str,
  '--generation-config': str,
  '--reasoning-parser': str,
  '--model': str,
};
const SHORT: Record<string, string> = { '-tp': '--tensor-parallel-size', '-pp': '--pipeline-parallel-size', '-dp': '--data-parallel-size', '-q': '--quantization' };

class UsageError extends Error {
  constructor(
    readonly usage: string,
    readonly prog: string,
    message: string,
  ) {
    super(message);
  }
}

/** FlexibleArgumentParser: underscores in a long option's name become dashes (the value is kept). */
function normalize(arg: string): string {
  if (!arg.startsWith('--')) return arg;
  const eq = arg.indexOf('=');
  const key = eq < 0 ? arg : arg.slice(0, eq);
  return key.replace(/_/g, '-') + (eq < 0 ? '' : arg.slice(eq));
}

/** vLLM's human_readable_int: 25600, 32k (×1000), 32K (×1024), 1m/1M, 1g/1G. */
function humanReadableInt(value: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(value.trim());
  if (!m) return null;
  const unit = m[2]!;
  const scale = unit === '' ? 1 : { k: 1e3, m: 1e6, g: 1e9, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[unit]!;
  if (unit === '' && m[1]!.includes('.')) return null;
  return Math.round(Number(m[1]) * scale);
}

function convert(option: string, kind: Kind, value: string): unknown {
  const invalid = (what: string) => new UsageError(SERVE_USAGE, 'vllm serve', `argument ${option}: invalid ${what} value: '${value}'`);
  switch (kind.type) {
    case 'int': {
      if (!/^[-+]?\d+$/.test(value.trim())) throw invalid('int');
      return Number(value);
    }
    case 'float': {
      const n = Number(value);
      if (value.trim() === '' || Number.isNaN(n)) throw invalid('float');
      return n;
    }
    case 'hint': {
      const n = humanReadableInt(value);
      if (n === null) throw invalid('human_readable_int');
      return n;
    }
    case 'choice':
      if (!kind.choices.includes(value)) throw new UsageError(SERVE_USAGE, 'vllm serve', `argument ${option}: invalid choice: '${value}' (choose from ${kind.choices.map((c) => `'${c}'`).join(', ')})`);
      return value;
    case 'intchoice': {
      if (!/^[-+]?\d+$/.test(value.trim())) throw invalid('int');
      const n = Number(value);
      if (!kind.choices.includes(n)) throw new UsageError(SERVE_USAGE, 'vllm serve', `argument ${option}: invalid choice: ${n} (choose from ${kind.choices.join(', ')})`);
      return n;
    }
    default:
      return value;
  }
}

/** LoRAParserAction: `name=path` (no comma), else a JSON object {name, path, base_model_name?}. */
function loraModules(values: string[]): LoraModule[] {
  const modules: LoraModule[] = [];
  for (const item of values) {
    if (item === '') continue;
    if (item.includes('=') && !item.includes(',')) {
      const parts = item.split('=');
      if (parts.length !== 2) throw new UsageError(SERVE_USAGE, 'vllm serve', `Invalid JSON format for --lora-modules: ${item}`);
      modules.push({ name: parts[0]!, path: parts[1]! });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(item);
    } catch {
      throw new UsageError(SERVE_USAGE, 'vllm serve', `Invalid JSON format for --lora-modules: ${item}`);
    }
    const obj = value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
    const unknown = obj ? Object.keys(obj).filter((k) => !['name', 'path', 'base_model_name'].includes(k)) : [];
    if (!obj || typeof obj.name !== 'string' || typeof obj.path !== 'string' || unknown.length > 0) {
      throw new UsageError(SERVE_USAGE, 'vllm serve', `Invalid fields for --lora-modules: ${item} - LoRAModulePath takes name, path and base_model_name`);
    }
    modules.push({ name: obj.name, path: obj.path, ...(typeof obj.base_model_name === 'string' ? { base_model_name: obj.base_model_name } : {}) });
  }
  return modules;
}

function dest(option: string): string {
  return option.replace(/^--/, '').replace(/-/g, '_');
}

/** Parses `vllm …` as vLLM v0.10.0's CLI does. */
export function parseVllmArgs(argv: readonly string[]): Parsed {
  try {
    return parse(argv.map(normalize));
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'exit', code: 2, stderr: `${err.usage}\n${err.prog}: error: ${err.message}\n` };
    throw err;
  }
}

function parse(argv: string[]): Parsed {
  const first = argv[0];
  if (first === undefined) return { kind: 'exit', code: 0, stdout: `${TOP_USAGE}\n` };
  if (first === '-h' || first === '--help') return { kind: 'exit', code: 0, stdout: `${TOP_USAGE}\n` };
  if (first === '-v' || first === '--version') return { kind: 'exit', code: 0, stdout: `${VLLM_VERSION}\n` };
  if (first.startsWith('-')) throw new UsageError(TOP_USAGE, 'vllm', `unrecognized arguments: ${argv.join(' ')}`);
  if (!SUBCOMMANDS.includes(first)) {
    throw new UsageError(TOP_USAGE, 'vllm', `argument subparser: invalid choice: '${first}' (choose from ${SUBCOMMANDS.map((s) => `'${s}'`).join(', ')})`);
  }
  if (first !== 'serve') return { kind: 'exit', code: 2, stderr: `the SIMULATED vllm stand-in simulates only \`vllm serve\`, not \`vllm ${first}\`\n` };
  const rest = argv.slice(1);
  // serve.py / FlexibleArgumentParser: the model is the positional, never --model.
  if (rest.some((a) => a === '--model' || a.startsWith('--model='))) {
    return {
      kind: 'exit',
      code: 1,
      stderr: 'ValueError: With `vllm serve`, you should provide the model as a positional argument or in a config file instead of via the `--model` option.\n',
    };
  }
  const values: Record<string, unknown> = {};
  const unrecognized: string[] = [];
  let modelTag: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '-h' || arg === '--help') return { kind: 'exit', code: 0, stdout: `${SERVE_USAGE}\n` };
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      if (modelTag === null) modelTag = arg;
      else unrecognized.push(arg);
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = SHORT[eq < 0 ? arg : arg.slice(0, eq)] ?? (eq < 0 ? arg : arg.slice(0, eq));
    const inline = eq < 0 ? null : arg.slice(eq + 1);
    const negated = name.startsWith('--no-') ? `--${name.slice(5)}` : null;
    if (negated && FLAGS[negated]?.type === 'bool') {
      if (inline !== null) throw new UsageError(SERVE_USAGE, 'vllm serve', `argument ${name}: ignored explicit argument '${inline}'`);
      values[dest(negated)] = false;
      continue;
    }
    const kind = FLAGS[name];
    if (!kind) {
      unrecognized.push(arg);
      continue;
    }
    if (kind.type === 'bool' || kind.type === 'true') {
      if (inline !== null) throw new UsageError(SERVE_USAGE, 'vllm serve', `argument ${name}: ignored explicit argument '${inline}'`);
      values[dest(name)] = true;
      continue;
    }
    if (kind.type === 'many' || kind.type === 'lora') {
      const items: string[] = inline !== null ? [inline] : [];
      if (inline === null) while (i + 1 < rest.length && !rest[i + 1]!.startsWith('-')) items.push(rest[++i]!);
      if (items.length === 0) throw new UsageError(SERVE_USAGE, 'vllm serve', `argument ${name}: expected at least one argument`);
      values[dest(name)] = kind.type === 'lora' ? loraModules(items) : items;
      continue;
    }
    let value = inline;
    if (value === null) {
      const next = rest[i + 1];
      if (next === undefined || (next.startsWith('-') && !/^-\d/.test(next))) throw new UsageError(SERVE_USAGE, 'vllm serve', `argument ${name}: expected one argument`);
      value = next;
      i++;
    }
    values[dest(name)] = convert(name, kind, value);
  }
  if (unrecognized.length > 0) throw new UsageError(TOP_USAGE, 'vllm', `unrecognized arguments: ${unrecognized.join(' ')}`);
  return {
    kind: 'serve',
    args: {
      // EngineArgs' default model when none is given (vLLM v0.10.0).
      model: modelTag ?? 'Qwen/Qwen3-0.6B',
      host: (values.host as string | undefined) ?? null,
      port: (values.port as number | undefined) ?? 8000,
      servedModelName: (values.served_model_name as string[] | undefined) ?? null,
      maxModelLen: (values.max_model_len as number | undefined) ?? null,
      enableLora: (values.enable_lora as boolean | undefined) ?? false,
      loraModules: (values.lora_modules as LoraModule[] | undefined) ?? [],
      maxLoraRank: (values.max_lora_rank as number | undefined) ?? 16,
      maxLoras: (values.max_loras as number | undefined) ?? 1,
      revision: (values.revision as string | undefined) ?? null,
      apiKey: (values.api_key as string | undefined) ?? null,
      raw: values,
    },
  };
}
