import { z } from 'zod';

/**
 * The recipe: one schema for the whole mission, so a recipe written today stays valid as the
 * later phases arrive. Defaults are the SWE-Gym paper's MoatlessTools settings (design §1, §5, §6).
 * Every object is strict: an unknown key is a typo, and a typo in a paid run is an error.
 */

const positiveInt = () => z.number().int().min(1);
const nonNegativeInt = () => z.number().int().min(0);

/** Placeholders a template may use are listed where the template is described. */
const template = (what: string) => z.string().min(1).describe(what);

/**
 * Named image conventions; anything else is a template with {id}, {id_lower}, {id_swebench} or
 * {id_swegym}. `swebench` is the name SWE-bench's harness gives the images it builds locally;
 * `swebench-hub` the published ones it pulls (namespace swebench, "__" → "_1776_").
 */
export const IMAGE_PRESETS = {
  swebench: 'sweb.eval.x86_64.{id_lower}:latest',
  'swebench-hub': 'swebench/sweb.eval.x86_64.{id_swebench}:latest',
  swegym: 'xingyaoww/sweb.eval.x86_64.{id_swegym}:latest',
  /** Tasks made by `rft tasks synth` (a thin layer over their source environment's image). */
  synth: 'rft-synth/sweb.eval.x86_64.{id_lower}:latest',
} as const;

const ImageTemplate = z
  .string()
  .min(1)
  .describe(
    'Image name for an instance: "swebench" (sweb.eval.x86_64.<id lower-cased>), "swebench-hub" ' +
      '(swebench/sweb.eval.x86_64.<id, "__"→"_1776_", lower-cased>), "swegym" ' +
      '(xingyaoww/sweb.eval.x86_64.<id, "__"→"_s_", lower-cased>), "synth" (rft-synth/sweb.eval.x86_64.<id lower-cased>, made by rft tasks synth), or a template using {id}, {id_lower}, {id_swebench}, {id_swegym}',
  );

const PythonEnvSetting = z
  .enum(['auto', 'conda', 'system'])
  .describe(
    "Where the tests run: conda activates the image's conda env testbed (/opt/miniconda3) as SWE-bench's eval scripts do; " +
      'system runs them as the image PATH finds them; auto picks conda when the image has /opt/miniconda3/bin/activate',
  );

export const TaskSetSchema = z
  .strictObject({
    path: z.string().min(1).describe("Instance file (JSON or JSONL, SWE-bench format); a relative path resolves against the recipe file's folder"),
    ids_file: z.string().min(1).nullable().default(null).describe("File with one instance id per line to keep; a relative path resolves against the recipe file's folder"),
    repos: z.array(z.string().min(1)).default([]).describe('Keep only instances of these repositories (owner/name)'),
    limit: positiveInt().nullable().default(null).describe('Keep at most this many instances (after the filters)'),
    image: ImageTemplate.nullable().default(null).describe('Overrides sandbox.image for this task set'),
    python_env: PythonEnvSetting.nullable().default(null).describe('Overrides sandbox.python_env for this task set'),
  })
  .describe('A task set: where instances come from and which ones to use');

const EngineSchema = z.strictObject({
  url: z
    .string()
    .regex(/^(unix|tcp|ssh|http|https|npipe):\/\//, 'must start with unix://, tcp://, ssh://, http:// or https://')
    .default('unix:///var/run/docker.sock')
    .describe('Docker engine address'),
  max_containers: positiveInt().nullable().default(null).describe('Containers at once on this engine (null: sandbox.concurrency)'),
});

/**
 * A size with a unit. A bare number is refused, whether YAML made it a number (`memory: 8`) or a
 * string ("8"): Docker would read it as 8 bytes, and the container dies at its first allocation.
 */
const ByteSize = z
  .string({ error: (issue) => (typeof issue.input === 'number' ? `give a unit: ${issue.input}g (a bare number is bytes)` : undefined) })
  .superRefine((size, ctx) => {
    const bare = /^\d+(\.\d+)?$/.test(size.trim());
    if (bare) ctx.addIssue({ code: 'custom', message: `give a unit: ${size.trim()}g (a bare number is bytes)` });
    else if (!/^\d+(\.\d+)?\s*([kmgt]i?b?|b)$/i.test(size.trim())) ctx.addIssue({ code: 'custom', message: 'must be a size with a unit, such as 512m or 4g' });
  })
  .describe('Memory size with a unit, such as 512m or 4g');

export const SandboxSchema = z.strictObject({
  docker: z.array(EngineSchema).min(1).default([{ url: 'unix:///var/run/docker.sock', max_containers: null }])
    .describe('Docker engines to run containers on; work is spread by free capacity'),
  image: ImageTemplate.default('swebench'),
  image_policy: z
    .enum(['keep', 'remove_after_use'])
    .default('keep')
    .describe('remove_after_use deletes an instance image once its samples are verified (SWE-Gym images are 2-3 GB each)'),
  memory: ByteSize.default('4g'),
  cpus: z.number().positive().default(1).describe('CPUs per container'),
  pids: positiveInt().default(512).describe('Process limit per container (contains fork bombs)'),
  test_timeout_s: positiveInt().default(1800).describe('Wall-clock limit of one test run (SWE-bench uses 1800 s)'),
  python_env: PythonEnvSetting.default('auto'),
  concurrency: positiveInt().default(4).describe('Containers at once across all engines'),
  max_error_attempts: positiveInt()
    .default(3)
    .describe("Harness failures (`error` verdicts, across resumes) on one patch before the last is recorded as final (`repeated_error`), so the iteration completes"),
});

/**
 * Where the iteration's sampling and verification run: here (`local`), or as a Slurm job array of
 * instance shards, each an `rft worker` on a node with its own Docker engine and the run folder
 * on a shared filesystem (README, Scale-out).
 */
const SlurmClusterSchema = z.strictObject({
  kind: z.literal('slurm'),
  partition: z.string().min(1).nullable().default(null).describe('sbatch --partition (null: the cluster default)'),
  account: z.string().min(1).nullable().default(null).describe('sbatch --account'),
  time_limit: z
    .string()
    .regex(/^(\d+-)?\d+(:\d{1,2}){0,2}$/, 'a Slurm time, e.g. 90, 1:30:00 or 2-00:00:00')
    .nullable()
    .default(null)
    .describe('sbatch --time per shard job; a shard that times out is resubmitted for what it had not recorded'),
  cpus_per_task: positiveInt().nullable().default(null).describe('sbatch --cpus-per-task'),
  mem: z.string().regex(/^\d+[KMGT]?$/, 'a Slurm memory size, e.g. 8G').nullable().default(null).describe('sbatch --mem'),
  shards: positiveInt().default(4).describe("Array tasks an iteration's instances are split into (instance i goes to shard i mod shards)"),
  array_width: positiveInt().nullable().default(null).describe('Shards running at once (sbatch --array=…%width; null: no limit)'),
  max_attempts: positiveInt().default(3).describe('Submissions of one shard (first + resubmissions after a kill, preemption, time-out or node loss) before the run stops as incomplete'),
  poll_s: z.number().positive().default(5).describe('Seconds between squeue/sacct looks'),
  sbatch_args: z.array(z.string().min(1)).default([]).describe('Extra sbatch arguments, e.g. [--qos=low, --gres=gpu:0]'),
});
const ClusterSchema = z.discriminatedUnion('kind', [z.strictObject({ kind: z.literal('local') }), SlurmClusterSchema]);
export type SlurmCluster = z.infer<typeof SlurmClusterSchema>;

const STATE_NAMES = ['SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'ClarifyCodeChange', 'EditCode'] as const;
export const AgentStateNameSchema = z.enum(STATE_NAMES);

export const AgentSchema = z.strictObject({
  kind: z.literal('moatless').default('moatless').describe('The MoatlessTools v0.0.2-style workflow agent'),
  protocol: z
    .enum(['json', 'tools'])
    .default('json')
    .describe('json: JSON-object responses with the schema in the system prompt (the paper); tools: function calling'),
  max_transitions: positiveInt().default(25),
  visit_limits: z
    .partialRecord(AgentStateNameSchema, positiveInt())
    .default({ PlanToCode: 8, EditCode: 8 })
    .describe('Most visits per state in one trajectory'),
  max_retries: nonNegativeInt().default(2).describe('Consecutive invalid actions tolerated per state; one more aborts'),
  max_tokens_per_call: positiveInt().default(2000),
  token_budget: positiveInt().nullable().default(null).describe('Prompt + completion tokens per trajectory (null: no budget)'),
  clarify_above_tokens: positiveInt().default(750).describe('Spans larger than this go through ClarifyCodeChange'),
  finish_on_review: z.boolean().default(true).describe('A review after a change finishes the run (SWE-Gym ran so); false: review searches again'),
  lint: z
    .boolean()
    .default(true)
    .describe("After an edit of a Python file, PlanToCode is told the errors it introduced (undefined names, redefinitions), as SWE-Gym's pylint step did"),
  file_context_tokens: positiveInt().default(16_000).describe('Most tokens of file context in a prompt; the oldest spans are left out first'),
  search_results_tokens: positiveInt().default(12_000).describe('Most tokens of search results shown to IdentifyCode; the lowest-ranked are left out first'),
  edit_context_tokens: positiveInt().default(8_000).describe('Most tokens of code around the span EditCode rewrites'),
});

/**
 * An OpenAI-compatible API root. Clients append /chat/completions and /models to it, so a URL
 * without /v1 (http://host:8000) reaches vLLM's /chat/completions, a 404 that reads like a model
 * missing. Two URLs joined by a comma are one invalid URL to a parser but easily written: say so.
 */
export const ApiBaseUrl = z
  .url()
  .refine((url) => !/,\s*https?:\/\//.test(url), { error: 'looks like two URLs joined by a comma: write a list, [http://a:8000/v1, http://b:8000/v1]', abort: true })
  .refine((url) => /\/v1\/?$/.test(url), { error: (issue) => `must end in /v1 (the OpenAI-compatible API root), e.g. ${String(issue.input).replace(/\/+$/, '')}/v1` });

const EnvVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never a key');

export const PolicySchema = z
  .strictObject({
    kind: z
      .enum(['openai', 'simulated'])
      .default('openai')
      .describe('openai: any OpenAI-compatible endpoint (vLLM, SGLang, OpenAI); simulated: the bundled test double, started by rft'),
    base_url: z
      .union([ApiBaseUrl, z.array(ApiBaseUrl).min(1)])
      .transform((urls) => (Array.isArray(urls) ? urls : [urls]))
      .nullable()
      .default(null)
      .describe('Endpoint ending in /v1, or a list of replicas of one model'),
    model: z.string().min(1).describe('Model name of the policy M_0'),
    api_key_env: EnvVarName.nullable().default(null).describe('Name of the env variable holding the API key'),
    request_timeout_s: positiveInt().default(600),
    retries: nonNegativeInt().default(5).describe('Retries of a failed request (429, 5xx, timeouts) before it is an infrastructure error'),
    concurrency: positiveInt().default(16).describe('LLM requests in flight'),
  })
  .superRefine((policy, ctx) => {
    if (policy.kind === 'openai' && policy.base_url === null) {
      ctx.addIssue({ code: 'custom', path: ['base_url'], message: 'is required when kind is openai' });
    }
  });

export const SamplingSchema = z.strictObject({
  samples_per_task: positiveInt().default(30),
  temperature: z.number().min(0).max(2).default(1.0),
  top_p: z.number().gt(0).max(1).default(1.0),
  instances_in_flight: positiveInt().default(2).describe('Task instances whose image, snapshot and samples are worked on at once'),
});

export const SelectSchema = z.strictObject({
  cap: z
    .number({ error: 'must be a whole number of trajectories (1, 2, …) or null for no cap' })
    .int({ error: 'must be a whole number of trajectories (1, 2, …) or null for no cap' })
    .min(1, { error: 'must be at least 1, or null for no cap' })
    .nullable()
    .default(2).describe('Most successful trajectories kept per instance; null keeps all'),
  order: z.enum(['fewest_calls', 'random']).default('fewest_calls').describe('Which successes the cap keeps first'),
  dedup: z.boolean().default(false).describe('Keep one success per distinct normalised patch'),
  require_finished: z
    .boolean()
    .default(false)
    .describe('false: a success is any resolved trajectory, whatever its final state (SWE-Gym); true: it must also have finished'),
  allow_tampering: z
    .boolean()
    .default(false)
    .describe('false: a resolved trajectory whose verdict carries tampering (its patch touched test-reporting machinery, or the runner\'s counts disagree; RELIABILITY.md) is dropped; true: kept, still counted'),
});

/** Trainers rft writes SFT data for; each reads the same loss policy from a different switch (README, Fine-tuning). */
export const SFT_BACKENDS = ['openai', 'trl', 'llamafactory', 'axolotl'] as const;

export const SftSchema = z.strictObject({
  unit: z.enum(['call', 'trajectory']).default('call').describe('One example per LLM call (SWE-Gym) or per trajectory'),
  max_tokens: positiveInt().default(10240).describe('Examples longer than this are dropped and reported'),
  tokenizer: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe(
      'What counts tokens: a js-tiktoken encoding (cl100k_base, o200k_base) for OpenAI models, or a local Hugging Face ' +
        'tokenizer folder (tokenizer.json + tokenizer_config.json; a relative path resolves against the recipe file\'s folder), counted with its chat template. null: the base ' +
        "model's folder when finetune.base_model is a local Qwen folder, else cl100k_base",
    ),
  train_on: z
    .enum(['target', 'assistant'])
    .default('assistant')
    .describe('Which tokens carry loss: assistant = every assistant turn, prompts masked (SWE-Gym); target = the last turn only'),
  backend: z
    .enum(SFT_BACKENDS)
    .nullable()
    .default(null)
    .describe('The trainer that reads the data (null: openai for the openai finetune backend, else the scripts/train-*.sh the command names, else trl)'),
  tool_arguments: z
    .enum(['string', 'object'])
    .nullable()
    .default(null)
    .describe('tool_calls[].function.arguments as a JSON string (OpenAI) or an object (Hugging Face chat templates); null: by backend'),
  accumulate: z.boolean().default(false).describe('Train iteration k on the data of iterations 0..k, not k alone'),
});

const Hyperparameters = z.record(z.string(), z.union([z.number(), z.string(), z.boolean()]));

const OnEmpty = z
  .enum(['stop', 'carry_forward'])
  .default('stop')
  .describe(
    'An iteration whose selection keeps no trajectory: stop (say why, train nothing) or carry_forward (M_k+1 is M_k, no trainer run, not evaluated again; the next iteration samples from it)',
  );

const CommandTrainerSchema = z.strictObject({
  backend: z.literal('command'),
  command: template("Trainer command, run with the recipe file's folder as working directory (so relative paths in it resolve as the recipe's do); placeholders {dataset}, {output_dir}, {base_model}, {iteration}, {run_dir}, {hp.NAME}"),
  base_model: z.string().min(1).describe('Weights the first fine-tune starts from'),
  start_from: z.enum(['base', 'previous']).default('previous').describe('Fine-tune iteration k+1 from the base weights or from M_k'),
  output_model: template('Model produced, read back after the command succeeds; placeholders as in command').default('{output_dir}'),
  output_model_file: z.string().min(1).nullable().default(null).describe("If set, a file (placeholders allowed; a relative path resolves against the recipe file's folder) whose first line names the produced model"),
  hyperparameters: Hyperparameters.default({ epochs: 5, learning_rate: 2e-5, batch_size: 8 }),
  timeout_s: positiveInt().nullable().default(null),
  on_empty: OnEmpty,
});

const OpenAiTrainerSchema = z.strictObject({
  backend: z.literal('openai'),
  base_model: z.string().min(1).describe('OpenAI model to fine-tune, e.g. gpt-4o-mini-2024-07-18'),
  start_from: z.enum(['base', 'previous']).default('previous'),
  base_url: z.url().nullable().default(null).describe('API base (null: the OpenAI default)'),
  api_key_env: EnvVarName.default('OPENAI_API_KEY'),
  suffix: z.string().max(64).default('rft'),
  hyperparameters: Hyperparameters.default({ n_epochs: 5, batch_size: 8 }),
  poll_interval_s: positiveInt().default(30),
  on_empty: OnEmpty,
});

export const FinetuneSchema = z.discriminatedUnion('backend', [CommandTrainerSchema, OpenAiTrainerSchema]);

export const ServeSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('none').describe('The fine-tuned model name is used as is at policy.base_url (e.g. OpenAI)'),
  }),
  z.strictObject({
    kind: z.literal('command').describe('Each fine-tuned model M_k+1 is served by a command rft starts (here or, e.g. through ssh, on a GPU box); M_0 is the endpoint at policy.base_url, never served by rft'),
    command: template("Server command, run with the recipe file's folder as working directory; placeholders {model}, {served_name}, {port}, {iteration}, {run_dir}"),
    served_name: template('Name the server answers to').default('rft-it{iteration}'),
    port: z.number().int().min(1).max(65535).default(8001).describe('Port of the server the command starts ({port}); not the port of the M_0 endpoint'),
    base_url: z
      .string()
      .regex(/^https?:\/\/[^/\s]+(\/.*)?\/v1$/, 'must be an http(s) URL ending in /v1, e.g. http://gpu1:{port}/v1')
      .default('http://127.0.0.1:{port}/v1')
      .describe('Where the started server answers, polled until GET <base_url>/models lists served_name and then sent the policy requests; placeholders {port}, {iteration}. Another host for a command that starts the server elsewhere (ssh gpu1 vllm serve …)'),
    ready_timeout_s: positiveInt().default(900).describe('How long to wait for GET /v1/models to list the model'),
  }),
  z.strictObject({
    kind: z.literal('lora'),
    base_url: ApiBaseUrl.describe('vLLM server with --enable-lora, ending in /v1'),
    adapter_name: template('Adapter name; placeholders {iteration}').default('rft-it{iteration}'),
  }),
]);

/**
 * The learned verifier of best-of-n (design §11): any OpenAI-compatible endpoint that answers a
 * chat request for one token with logprobs (vLLM serving a model trained on `rft verifier data`).
 */
export const EvalVerifierSchema = z.strictObject({
  base_url: ApiBaseUrl
    .nullable()
    .default(null)
    .describe("Endpoint ending in /v1 that serves the verifier (e.g. vLLM); null: the run's SIMULATED policy server, which also plays a SIMULATED verifier (policy.kind simulated only: demo and tests)"),
  model: z.string().min(1).describe('Model name of the verifier at that endpoint'),
  api_key_env: EnvVarName.nullable().default(null).describe('Name of the env variable holding the API key'),
  concurrency: positiveInt().default(8).describe('Scoring requests in flight'),
  request_timeout_s: positiveInt().default(120),
  retries: nonNegativeInt().default(3).describe('Retries of a failed request (429, 5xx, timeouts) before scoring stops with the error'),
});

export const EvalSchema = z
  .strictObject({
    samples: positiveInt().default(1).describe('Attempts per eval instance (n of best-of-n; k = 1, 2, 4, … n are drawn from this one pool)'),
    temperature: z.number().min(0).max(2).default(0),
    zero_shot: z.boolean().default(true).describe('Evaluate M_0 before the first fine-tune'),
    verifier: EvalVerifierSchema.optional().describe('Scores every eval candidate by P(YES); the reported resolve rate is then the top-scored candidate\'s (best-of-n)'),
  })
  .superRefine((ev, ctx) => {
    if (ev.verifier && ev.samples < 2) ctx.addIssue({ code: 'custom', path: ['samples'], message: 'best-of-n with eval.verifier needs at least 2 samples per instance' });
    if (ev.verifier && ev.temperature === 0) ctx.addIssue({ code: 'custom', path: ['temperature'], message: 'best-of-n needs eval.temperature > 0 (at 0 the n candidates are one answer n times)' });
  });

/** Verifier training data emitted after each iteration (the same as `rft verifier data`). */
export const VerifierDataSchema = z.strictObject({
  iterations: z
    .enum(['current', 'all'])
    .default('all')
    .describe("Draw on this iteration's pool only, or on every iteration sampled so far (on-policy and earlier policies' samples mixed)"),
  balance: z.boolean().default(true).describe('As many NO examples as YES (the paper: half each)'),
  max_tokens: positiveInt().default(16384).describe('Examples longer than this are dropped and counted'),
});

export const RecipeSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-" (it names the run directory)')
    .describe('Run name; the run directory is runs/<name>'),
  seed: nonNegativeInt().default(0).describe('Every sample seed derives from this'),
  iterations: positiveInt().default(2),
  tasks: z.strictObject({
    train: TaskSetSchema,
    eval: TaskSetSchema.nullable().default(null).describe('Held-out task set (null: no eval)'),
  }),
  sandbox: SandboxSchema.prefault({}),
  cluster: ClusterSchema.optional().describe('Where sampling and verification run (absent: here, as kind: local)'),
  agent: AgentSchema.prefault({}),
  policy: PolicySchema,
  sampling: SamplingSchema.prefault({}),
  select: SelectSchema.prefault({}),
  sft: SftSchema.prefault({}),
  finetune: FinetuneSchema,
  serve: ServeSchema.default({ kind: 'none' }),
  eval: EvalSchema.prefault({}),
  verifier: VerifierDataSchema.optional().describe('Write verifier training data (iter-<k>/verifier/) after each iteration'),
}).superRefine((recipe, ctx) => {
  // LLaMA-Factory keeps a system message only at index 0 and skips any other line (its converter):
  // a trajectory-unit line has one system message per call, so none of them would be trained.
  if (recipe.sft.unit === 'trajectory' && sftBackendOf(recipe) === 'llamafactory') {
    ctx.addIssue({
      code: 'custom',
      path: ['sft', 'unit'],
      message: 'LLaMA-Factory reads one system message per line, at the start; a trajectory-unit line has one per call and every line would be skipped. Use unit: call with this backend',
    });
  }
  if (recipe.sft.unit === 'trajectory' && recipe.sft.train_on === 'target' && sftBackendOf(recipe) === 'trl') {
    ctx.addIssue({
      code: 'custom',
      path: ['sft', 'train_on'],
      message: "TRL's prompt-completion form (how rft tells TRL to train on the target) has one completion; a trajectory-unit line has one target per call. Use train_on: assistant, or unit: call",
    });
  }
  // A bundled wrapper is told the policy with --train-on (default assistant); it must be the recipe's.
  if (recipe.finetune.backend === 'command' && /train-(trl|llamafactory|axolotl)\.sh/.test(recipe.finetune.command)) {
    const told = /--train-on[= ]+(\S+)/.exec(recipe.finetune.command)?.[1] ?? 'assistant';
    if (told !== recipe.sft.train_on) {
      ctx.addIssue({
        code: 'custom',
        path: ['finetune', 'command'],
        message: `the wrapper is told --train-on ${told} but sft.train_on is ${recipe.sft.train_on}; add --train-on ${recipe.sft.train_on} to the command`,
      });
    }
  }
  if (recipe.sft.backend === 'openai' && recipe.sft.tool_arguments === 'object') {
    ctx.addIssue({ code: 'custom', path: ['sft', 'tool_arguments'], message: 'OpenAI fine-tuning reads tool-call arguments as a JSON string; use string (or null) with backend openai' });
  }
});

export type Recipe = z.infer<typeof RecipeSchema>;

type SftBackend = (typeof SFT_BACKENDS)[number];

/**
 * The trainer that reads the SFT data: sft.backend if set; openai for the openai finetune backend;
 * for a command, the bundled wrapper it names (scripts/train-<backend>.sh); else trl, the
 * generic Hugging Face reader.
 */
export function sftBackendOf(recipe: { sft: { backend: SftBackend | null }; finetune: { backend: string; command?: string } }): SftBackend {
  if (recipe.sft.backend !== null) return recipe.sft.backend;
  if (recipe.finetune.backend === 'openai') return 'openai';
  const named = /train-(trl|llamafactory|axolotl)\.sh/.exec(recipe.finetune.command ?? '');
  return (named?.[1] as SftBackend | undefined) ?? 'trl';
}
export type TaskSet = z.infer<typeof TaskSetSchema>;
