import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renderTrainerCommand, TRAINER_FILES, wrapperScript } from '../../src/finetune/command.js';
import { FinetuneFailedError, FinetuneJobSchema, FinetuneMismatchError, FinetuneOutputError, readJob, writeJob, type FinetuneJob } from '../../src/finetune/job.js';
import { isProcessAlive, spawnDetached } from '../../src/finetune/process.js';
import { renderTemplate, shellQuote, TemplateError, templatePlaceholders } from '../../src/finetune/template.js';
import { createTrainer } from '../../src/finetune/create-trainer.js';
import type { CommandFinetuneConfig, TrainerInput } from '../../src/finetune/trainer.js';
import { runLayout } from '../../src/loop/layout.js';
import { FinetuneSchema } from '../../src/recipe/schema.js';
import { transpileSources } from './build-js.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function commandConfig(overrides: Partial<CommandFinetuneConfig> & { command: string }): CommandFinetuneConfig {
  // A model name unless a test wires a path: the process tests are not about model folders.
  const parsed = FinetuneSchema.parse({ backend: 'command', base_model: 'base-7b', output_model: 'trained-model', ...overrides });
  if (parsed.backend !== 'command') throw new Error('unreachable');
  return parsed;
}

function setup(iteration = 0): { runDir: string; input: TrainerInput } {
  const runDir = mkdtempSync(path.join(tmpdir(), 'rft-ft-cmd-'));
  const dataset = path.join(runDir, `iter-${iteration}`, 'datasets', 'cap-2', 'train.jsonl');
  mkdirSync(path.dirname(dataset), { recursive: true });
  writeFileSync(dataset, '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}\n');
  const input: TrainerInput = {
    iteration,
    dataset,
    datasetSha256: 'a'.repeat(64),
    baseModel: 'base-7b',
    outputDir: runLayout.finetuneDir(runDir, iteration),
    runDir,
    recipeHash: 'r'.repeat(16),
    runName: 'demo',
  };
  return { runDir, input };
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

async function waitFor(what: string, condition: () => boolean, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function killGroupOnCleanup(outputDir: string): void {
  cleanups.push(() => {
    const pid = readJobSafe(outputDir)?.command?.pid;
    if (pid) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function readJobSafe(outputDir: string): FinetuneJob | null {
  try {
    return readJob(outputDir);
  } catch {
    return null;
  }
}

describe('command templates', () => {
  it('fills the placeholders, shell-quoting values, and leaves ${VAR} and other braces alone', () => {
    const rendered = renderTemplate(
      'train --data {dataset} --lr {hp.lr} --home ${HOME} --awk \'{print $1}\' --it {iteration}',
      { dataset: '/tmp/my data/train.jsonl', 'hp.lr': 2e-5, iteration: 1 },
      { quote: shellQuote, what: 'finetune.command' },
    );
    expect(rendered).toBe("train --data '/tmp/my data/train.jsonl' --lr 0.00002 --home ${HOME} --awk '{print $1}' --it 1");
    expect(templatePlaceholders('{a} {b} {a} ${c} {hp.x}')).toEqual(['a', 'b', 'hp.x']);
  });

  it('names an unknown placeholder', () => {
    expect(() => renderTemplate('run {datset} {output_dir}', { dataset: 'd', output_dir: 'o' }, { what: 'finetune.command' })).toThrow(
      /finetune\.command: unknown placeholder \{datset\}/,
    );
  });

  it('quoted values reach the command intact, whatever they contain', () => {
    const nasty = `a b'c"d $HOME \`id\` ; rm -rf x`;
    const rendered = renderTemplate("printf '%s' {value}", { value: nasty }, { quote: shellQuote, what: 't' });
    const out = spawnSync('/bin/sh', ['-c', rendered], { encoding: 'utf8' });
    expect(out.stdout).toBe(nasty);
  });

  it('renders {hp.NAME} from the recipe hyperparameters and rejects a missing one', () => {
    const { input } = setup();
    const config = commandConfig({ command: 'train {hp.epochs} {hp.batch_size} {base_model} {output_dir} {run_dir}' });
    expect(renderTrainerCommand(config, input)).toBe(`train 5 8 base-7b ${input.outputDir} ${input.runDir}`);
    expect(() => renderTrainerCommand(commandConfig({ command: 'train {hp.warmup}' }), input)).toThrow(/\{hp\.warmup\}/);
  });
});

describe('command trainer', () => {
  it('runs the command, records each state before acting, and reads the model from output_model_file', async () => {
    const { runDir, input } = setup();
    const config = commandConfig({
      command: "printf '%s\\n' {hp.epochs} {hp.learning_rate} {hp.note} {base_model} > {output_dir}/args; printf '\\n  my-model  \\nother\\n' > {output_dir}/MODEL",
      output_model_file: '{output_dir}/MODEL',
      hyperparameters: { epochs: 5, learning_rate: 2e-5, note: "it's \"quoted\"" },
      base_model: "base model's",
    });
    const updates: FinetuneJob[] = [];
    const trainer = createTrainer(config, { log: () => {}, cwd: runDir, pollIntervalMs: 20 });
    const job = await trainer.run({ ...input, baseModel: "base model's" }, (update) => updates.push(update));
    expect(job.status).toBe('succeeded');
    expect(job.output_model).toBe('my-model');
    expect(job.command?.exit_code).toBe(0);
    expect(lines(path.join(input.outputDir, 'args'))).toEqual(['5', '0.00002', "it's \"quoted\"", "base model's"]);
    // pending (nothing started) → running with no pid (recorded before the start) → running with the pid → succeeded
    expect(updates.map((u) => [u.status, u.command?.pid ?? null])).toEqual([
      ['pending', null],
      ['running', null],
      ['running', job.command!.pid],
      ['succeeded', job.command!.pid],
    ]);
    const onDisk = FinetuneJobSchema.parse(JSON.parse(readFileSync(path.join(input.outputDir, 'finetune.json'), 'utf8')));
    expect(onDisk).toEqual(job);
    expect(readFileSync(path.join(input.outputDir, TRAINER_FILES.log), 'utf8')).toContain('=== rft: iteration 0, attempt 1, start 1');
  });

  it('uses the output_model template when no model file is set', async () => {
    const { runDir, input } = setup(1);
    const config = commandConfig({ command: 'true', output_model: '{output_dir}/final-{iteration}' });
    const job = await createTrainer(config, { log: () => {}, cwd: runDir, pollIntervalMs: 20 }).run(input);
    expect(job.output_model).toBe(path.join(input.outputDir, 'final-1'));
  });

  it('a non-zero exit fails with the log tail; a re-run stops again; retryFailed tries again', async () => {
    const { runDir, input } = setup();
    const starts = path.join(runDir, 'starts');
    const config = commandConfig({
      command: `echo start >> ${starts}; if [ -f ${runDir}/fixed ]; then echo fixed-model > {output_dir}/MODEL; else echo "CUDA out of memory" >&2; exit 3; fi`,
      output_model_file: '{output_dir}/MODEL',
    });
    const trainer = createTrainer(config, { log: () => {}, cwd: runDir, pollIntervalMs: 20 });
    const failure = await trainer.run(input).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(FinetuneFailedError);
    expect((failure as Error).message).toMatch(/exited with code 3/);
    expect((failure as Error).message).toContain('CUDA out of memory');
    expect(readJob(input.outputDir)).toMatchObject({ status: 'failed', attempt: 1, command: { exit_code: 3 } });

    await expect(trainer.run(input)).rejects.toBeInstanceOf(FinetuneFailedError);
    expect(lines(starts)).toHaveLength(1);

    writeFileSync(path.join(runDir, 'fixed'), '');
    const job = await trainer.run({ ...input, retryFailed: true });
    expect(job).toMatchObject({ status: 'succeeded', attempt: 2, output_model: 'fixed-model' });
    expect(lines(starts)).toHaveLength(2);
    const setAside = JSON.parse(readFileSync(path.join(input.outputDir, 'finetune.failed-1.json'), 'utf8')) as FinetuneJob;
    expect(setAside).toMatchObject({ status: 'failed', attempt: 1 });
  });

  it('a missing or empty model file is a failure naming the file', async () => {
    const { runDir, input } = setup();
    const missing = await createTrainer(commandConfig({ command: 'true', output_model_file: '{output_dir}/MODEL' }), { log: () => {}, cwd: runDir, pollIntervalMs: 20 })
      .run(input)
      .catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(FinetuneFailedError);
    expect((missing as Error).message).toContain(`${path.join(input.outputDir, 'MODEL')} (finetune.output_model_file)`);

    const other = setup(1);
    const empty = await createTrainer(commandConfig({ command: "printf '\\n  \\n' > {output_dir}/MODEL", output_model_file: 'MODEL-{iteration}' }), {
      log: () => {},
      cwd: other.runDir,
      pollIntervalMs: 20,
    })
      .run({ ...other.input, iteration: 1 })
      .catch((err: unknown) => err);
    // A relative model file is resolved against the trainer's working directory; it does not exist there.
    expect((empty as Error).message).toContain(path.join(other.runDir, 'MODEL-1'));
    const third = setup(2);
    const blank = await createTrainer(commandConfig({ command: "printf '\\n  \\n' > {output_dir}/MODEL", output_model_file: '{output_dir}/MODEL' }), {
      log: () => {},
      cwd: third.runDir,
      pollIntervalMs: 20,
    })
      .run(third.input)
      .catch((err: unknown) => err);
    expect((blank as Error).message).toMatch(/MODEL \(finetune\.output_model_file\) is empty/);
  });

  it('an unknown placeholder is an error before anything is recorded or started', async () => {
    const { runDir, input } = setup();
    const trainer = createTrainer(commandConfig({ command: 'train {datset}' }), { log: () => {}, cwd: runDir });
    await expect(trainer.run(input)).rejects.toBeInstanceOf(TemplateError);
    expect(existsSync(path.join(input.outputDir, 'finetune.json'))).toBe(false);
  });

  it('timeout_s kills the whole process group and fails', async () => {
    const { runDir, input } = setup();
    const config = commandConfig({ command: 'sleep 60 & echo $! > {output_dir}/bg.pid; wait', timeout_s: 2 });
    killGroupOnCleanup(input.outputDir);
    const failure = await createTrainer(config, { log: () => {}, cwd: runDir, pollIntervalMs: 20, killGraceMs: 500 })
      .run(input)
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(FinetuneFailedError);
    expect((failure as Error).message).toMatch(/exceeded finetune\.timeout_s \(2 s\)/);
    const background = Number(readFileSync(path.join(input.outputDir, 'bg.pid'), 'utf8'));
    expect(isProcessAlive(background, null)).toBe(false);
    expect(isProcessAlive(readJob(input.outputDir)!.command!.pid!, null)).toBe(false);
  });

  it('returns a succeeded record without running anything, and refuses a record of another dataset', async () => {
    const { runDir, input } = setup();
    const starts = path.join(runDir, 'starts');
    const config = commandConfig({ command: `echo x >> ${starts}` });
    const trainer = createTrainer(config, { log: () => {}, cwd: runDir, pollIntervalMs: 20 });
    const first = await trainer.run(input);
    const again = await trainer.run(input);
    expect(again).toEqual(first);
    expect(lines(starts)).toHaveLength(1);
    await expect(trainer.run({ ...input, datasetSha256: 'b'.repeat(64) })).rejects.toBeInstanceOf(FinetuneMismatchError);
  });

  it('an output model that is not a model folder stops before the record says succeeded; the fixed wiring reads it without training again', async () => {
    const { runDir, input } = setup();
    const starts = path.join(runDir, 'starts');
    // A trainer that writes its model to {output_dir}/model and names it in {output_dir}/MODEL (as scripts/train-*.sh do).
    const command = `echo x >> ${starts}; mkdir -p {output_dir}/model && echo '{}' > {output_dir}/model/config.json && echo {output_dir}/model > {output_dir}/MODEL`;
    const wrong = commandConfig({ command, output_model: '{output_dir}' });
    const failure = await createTrainer(wrong, { log: () => {}, cwd: runDir, pollIntervalMs: 20 }).run(input).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(FinetuneOutputError);
    expect((failure as Error).message).toContain(`${input.outputDir} is not a model folder`);
    expect((failure as Error).message).toContain(`the trainer wrote its model to ${path.join(input.outputDir, 'model')}`);
    expect(readJob(input.outputDir)?.status).toBe('running');
    const fixed = commandConfig({ command, output_model_file: '{output_dir}/MODEL' });
    const job = await createTrainer(fixed, { log: () => {}, cwd: runDir, pollIntervalMs: 20 }).run(input);
    expect(job).toMatchObject({ status: 'succeeded', output_model: path.join(input.outputDir, 'model') });
    expect(lines(starts)).toHaveLength(1);
  });

  it('a succeeded record is read again with the recipe as it is now (a resume after the trainer wiring was fixed)', async () => {
    const { runDir, input } = setup();
    const starts = path.join(runDir, 'starts');
    const command = `echo x >> ${starts}; mkdir -p {output_dir}/model && echo '{}' > {output_dir}/model/adapter_config.json && echo {output_dir}/model > {output_dir}/MODEL`;
    // Recorded under a wiring that names a model folder the trainer never wrote to (an older rft took it as is).
    const stale = await createTrainer(commandConfig({ command, output_model: '{output_dir}/gone' }), { log: () => {}, cwd: runDir, pollIntervalMs: 20 }).run(input);
    expect(stale.output_model).toBe(path.join(input.outputDir, 'gone'));
    const warnings: string[] = [];
    const fixed = createTrainer(commandConfig({ command, output_model_file: '{output_dir}/MODEL' }), { log: () => {}, warn: (m) => warnings.push(m), cwd: runDir, pollIntervalMs: 20 });
    const job = await fixed.run(input);
    expect(job.output_model).toBe(path.join(input.outputDir, 'model'));
    expect(readJob(input.outputDir)?.output_model).toBe(path.join(input.outputDir, 'model'));
    expect(warnings.some((m) => m.includes('the recipe now names the trained model'))).toBe(true);
    expect(lines(starts)).toHaveLength(1);
    // And a wiring that names a folder with no model in it is refused, not served.
    const broken = createTrainer(commandConfig({ command, output_model: '{output_dir}' }), { log: () => {}, cwd: runDir, pollIntervalMs: 20 });
    await expect(broken.run(input)).rejects.toBeInstanceOf(FinetuneOutputError);
  });

  it('a throwing update callback does not break the run', async () => {
    const { runDir, input } = setup();
    const warnings: string[] = [];
    const job = await createTrainer(commandConfig({ command: 'true' }), { log: () => {}, warn: (m) => warnings.push(m), cwd: runDir, pollIntervalMs: 20 }).run(input, () => {
      throw new Error('observer broke');
    });
    expect(job.status).toBe('succeeded');
    expect(warnings.some((m) => m.includes('observer broke'))).toBe(true);
  });

  it('finds the trainer by the pid file it wrote when rft died before recording the pid', async () => {
    const { runDir, input } = setup();
    const starts = path.join(runDir, 'starts');
    const go = path.join(runDir, 'go');
    const config = commandConfig({ command: `echo x >> ${starts}; while [ ! -f ${go} ]; do sleep 0.02; done` });
    const cmdline = renderTrainerCommand(config, input);
    mkdirSync(input.outputDir, { recursive: true });
    killGroupOnCleanup(input.outputDir);
    const exitCodeFile = path.join(input.outputDir, TRAINER_FILES.exitCode);
    const log = path.join(input.outputDir, TRAINER_FILES.log);
    // The state a killed rft leaves between "recorded running, no pid" and "recorded the pid": the trainer runs.
    writeJob(input.outputDir, {
      iteration: 0, attempt: 1, backend: 'command', status: 'running', dataset: input.dataset, dataset_sha256: input.datasetSha256,
      base_model: input.baseModel, output_model: null, started_at: new Date().toISOString(), finished_at: null, error: null,
      command: { pid: null, start_ticks: null, cmdline, cwd: runDir, log, exit_code_file: exitCodeFile, exit_code: null, starts: 1, started_at: new Date().toISOString() },
    });
    const proc = await spawnDetached(wrapperScript(cmdline, exitCodeFile, path.join(input.outputDir, TRAINER_FILES.pid)), { logFile: log, cwd: runDir });
    cleanups.push(() => {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        // gone
      }
    });
    await waitFor('the pid file', () => existsSync(path.join(input.outputDir, TRAINER_FILES.pid)));
    const logs: string[] = [];
    const run = createTrainer(config, { log: (m) => logs.push(m), cwd: runDir, pollIntervalMs: 20 }).run(input);
    await waitFor('the re-attach', () => logs.some((m) => m.includes(`re-attaching to the running trainer of iteration 0 (pid ${proc.pid}`)));
    writeFileSync(go, '');
    const job = await run;
    expect(job).toMatchObject({ status: 'succeeded', command: { pid: proc.pid, starts: 1 } });
    expect(lines(starts)).toHaveLength(1);
  });

  it('abort stops waiting but leaves the trainer running; the next run re-attaches', async () => {
    const { runDir, input } = setup();
    const starts = path.join(runDir, 'starts');
    const go = path.join(runDir, 'go');
    const config = commandConfig({
      command: `echo x >> ${starts}; while [ ! -f ${go} ]; do sleep 0.02; done; echo m > {output_dir}/MODEL`,
      output_model_file: '{output_dir}/MODEL',
    });
    killGroupOnCleanup(input.outputDir);
    const controller = new AbortController();
    const trainer = createTrainer(config, { log: () => {}, cwd: runDir, pollIntervalMs: 20 });
    const first = trainer.run({ ...input, signal: controller.signal }, (job) => {
      if (job.command?.pid) controller.abort(new Error('stop asked'));
    });
    await expect(first).rejects.toThrow('stop asked');
    const pid = readJob(input.outputDir)!.command!.pid!;
    expect(isProcessAlive(pid, readJob(input.outputDir)!.command!.start_ticks)).toBe(true);
    writeFileSync(go, '');
    const job = await trainer.run(input);
    expect(job.output_model).toBe('m');
    expect(lines(starts)).toHaveLength(1);
  });
});

describe('command trainer: the rft process killed while the trainer runs', () => {
  let js = '';
  beforeAll(() => {
    js = transpileSources();
  });
  const rftSides: ChildProcess[] = [];
  afterAll(() => {
    for (const child of rftSides) child.kill('SIGKILL');
  });

  /** Starts run() in a separate node process (the "rft side") and waits until the trainer's pid is recorded. */
  async function startRftSide(config: CommandFinetuneConfig, input: TrainerInput, cwd: string): Promise<ChildProcess> {
    const script = path.join(js, 'rft-side.mjs');
    writeFileSync(
      script,
      `import { createTrainer } from ${JSON.stringify(path.join(js, 'src/finetune/create-trainer.js'))};
       const [config, input, cwd] = JSON.parse(process.argv[2]);
       await createTrainer(config, { log: (m) => console.log(m), cwd, pollIntervalMs: 20 }).run(input);`,
    );
    const child = spawn(process.execPath, [script, JSON.stringify([config, input, cwd])], { stdio: 'ignore' });
    rftSides.push(child);
    await waitFor('the trainer pid in finetune.json', () => (readJobSafe(input.outputDir)?.command?.pid ?? null) !== null);
    return child;
  }

  async function kill(child: ChildProcess): Promise<void> {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  function gatedConfig(runDir: string): CommandFinetuneConfig {
    return commandConfig({
      command: `echo start >> ${runDir}/starts; while [ ! -f ${runDir}/go ]; do sleep 0.02; done; echo "model-$(wc -l < ${runDir}/starts | tr -d ' ')" > {output_dir}/MODEL`,
      output_model_file: '{output_dir}/MODEL',
    });
  }

  it('re-attaches to the trainer that is still running and never starts a second one', async () => {
    const { runDir, input } = setup();
    const config = gatedConfig(runDir);
    killGroupOnCleanup(input.outputDir);
    const rftSide = await startRftSide(config, input, runDir);
    await waitFor('the first start', () => lines(path.join(runDir, 'starts')).length === 1);
    await kill(rftSide);
    const recorded = readJob(input.outputDir)!;
    expect(recorded.status).toBe('running');
    expect(isProcessAlive(recorded.command!.pid!, recorded.command!.start_ticks)).toBe(true);

    const logs: string[] = [];
    const run = createTrainer(config, { log: (m) => logs.push(m), cwd: runDir, pollIntervalMs: 20 }).run(input);
    await waitFor('the re-attach', () => logs.some((m) => m.includes('re-attaching to the running trainer')));
    writeFileSync(path.join(runDir, 'go'), '');
    const job = await run;
    expect(job).toMatchObject({ status: 'succeeded', output_model: 'model-1', command: { starts: 1, pid: recorded.command!.pid } });
    expect(lines(path.join(runDir, 'starts'))).toHaveLength(1);
  });

  it('uses the exit code of a trainer that finished while rft was away', async () => {
    const { runDir, input } = setup();
    const config = gatedConfig(runDir);
    killGroupOnCleanup(input.outputDir);
    const rftSide = await startRftSide(config, input, runDir);
    await kill(rftSide);
    writeFileSync(path.join(runDir, 'go'), '');
    await waitFor('the exit code file', () => existsSync(path.join(input.outputDir, TRAINER_FILES.exitCode)));
    const logs: string[] = [];
    const job = await createTrainer(config, { log: (m) => logs.push(m), cwd: runDir, pollIntervalMs: 20 }).run(input);
    expect(job).toMatchObject({ status: 'succeeded', output_model: 'model-1' });
    expect(logs.some((m) => m.includes('ended while rft was away (exit code 0)'))).toBe(true);
    expect(lines(path.join(runDir, 'starts'))).toHaveLength(1);
  });

  it('starts the trainer again, with a warning, when it died with rft', async () => {
    const { runDir, input } = setup();
    const config = gatedConfig(runDir);
    killGroupOnCleanup(input.outputDir);
    const rftSide = await startRftSide(config, input, runDir);
    await waitFor('the first start', () => lines(path.join(runDir, 'starts')).length === 1);
    const pid = readJob(input.outputDir)!.command!.pid!;
    await kill(rftSide);
    process.kill(-pid, 'SIGKILL');
    await waitFor('the trainer to die', () => !isProcessAlive(pid, null));
    writeFileSync(path.join(runDir, 'go'), '');
    const warnings: string[] = [];
    const job = await createTrainer(config, { log: () => {}, warn: (m) => warnings.push(m), cwd: runDir, pollIntervalMs: 20 }).run(input);
    expect(job).toMatchObject({ status: 'succeeded', output_model: 'model-2', command: { starts: 2 } });
    expect(job.command!.pid).not.toBe(pid);
    expect(warnings.some((m) => m.includes(`(pid ${pid}) is gone without an exit code`) && m.includes('starting it again'))).toBe(true);
    expect(lines(path.join(runDir, 'starts'))).toHaveLength(2);
  });
});
