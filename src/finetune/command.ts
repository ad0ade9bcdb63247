import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { FinetuneOutputError, nowIso, type CommandJob, type FinetuneJob } from './job.js';
import { checkModelOutput } from './model-output.js';
import { isProcessAlive, killGroup, sleep, spawnDetached, tailFile, type DetachedProcess } from './process.js';
import { runResumable, type BackendRunner, type JobContext } from './resume.js';
import { hyperparameterValues, renderTemplate, shellQuote, type TemplateValues } from './template.js';
import type { CommandFinetuneConfig, JobUpdate, Trainer, TrainerInput, TrainerOptions } from './trainer.js';

/**
 * The `command` trainer backend (design §7): the recipe's command template, rendered and run by
 * /bin/sh as a detached process group, so that it outlives an rft process that is killed:
 *
 *   /bin/sh -c '<pid file>; /bin/sh -c <command>; echo $? > exit_code.tmp && mv exit_code.tmp exit_code'
 *
 * stdout and stderr are appended to <outputDir>/trainer.log. Waiting = polling for the
 * exit_code file (and the pid being the same live process). On resume: an exit_code → use it;
 * else the recorded pid alive (same start time) → keep waiting; else the trainer died with rft
 * → start it again, with a warning.
 */

export const TRAINER_FILES = {
  log: 'trainer.log',
  exitCode: 'exit_code',
  pid: 'trainer.pid',
} as const;

const TAIL_LINES = 20;

/** Values of {dataset}, {output_dir}, {base_model}, {iteration}, {run_dir} and {hp.NAME}. */
export function commandTemplateValues(config: CommandFinetuneConfig, input: TrainerInput): TemplateValues {
  return {
    dataset: input.dataset,
    output_dir: input.outputDir,
    base_model: input.baseModel,
    iteration: input.iteration,
    run_dir: input.runDir,
    ...hyperparameterValues(config.hyperparameters),
  };
}

/** The trainer command with every value shell-quoted. */
export function renderTrainerCommand(config: CommandFinetuneConfig, input: TrainerInput): string {
  return renderTemplate(config.command, commandTemplateValues(config, input), { quote: shellQuote, what: 'finetune.command' });
}

/** The shell script that runs `cmdline` and leaves its exit status in `exitCodeFile` (atomically). */
export function wrapperScript(cmdline: string, exitCodeFile: string, pidFile: string): string {
  const q = shellQuote;
  return [
    `echo $$ > ${q(`${pidFile}.tmp`)} && mv ${q(`${pidFile}.tmp`)} ${q(pidFile)}`,
    `/bin/sh -c ${q(cmdline)}`,
    `echo $? > ${q(`${exitCodeFile}.tmp`)} && mv ${q(`${exitCodeFile}.tmp`)} ${q(exitCodeFile)}`,
  ].join('\n');
}

/** The exit status the wrapper wrote, or null while there is none. */
export function readExitCode(file: string): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
  return /^-?\d+$/.test(text) ? Number(text) : null;
}

export class CommandTrainer implements Trainer {
  readonly backend = 'command' as const;

  constructor(
    private readonly config: CommandFinetuneConfig,
    private readonly options: TrainerOptions,
  ) {}

  run(input: TrainerInput, onUpdate?: JobUpdate): Promise<FinetuneJob> {
    const warn = this.options.warn ?? ((message: string) => this.options.log(`warning: ${message}`));
    return runResumable(new CommandRunner(this.config, this.options), input, onUpdate, this.options.log, warn);
  }
}

type WaitResult = { kind: 'exited'; code: number } | { kind: 'lost'; reason: string } | { kind: 'timeout' };

class CommandRunner implements BackendRunner {
  readonly backend = 'command' as const;
  private readonly cwd: string;
  private readonly pollMs: number;

  constructor(
    private readonly config: CommandFinetuneConfig,
    private readonly options: TrainerOptions,
  ) {
    this.cwd = path.resolve(options.cwd ?? process.cwd());
    this.pollMs = options.pollIntervalMs ?? 1000;
  }

  prepare(input: TrainerInput): void {
    renderTrainerCommand(this.config, input);
    this.modelSource(input);
  }

  async execute(job: FinetuneJob, ctx: JobContext): Promise<FinetuneJob> {
    const { input } = ctx;
    const cmdline = renderTrainerCommand(this.config, input);
    let started: DetachedProcess | null = null;
    const recorded = job.status === 'running' ? job.command : undefined;
    if (recorded) {
      const code = readExitCode(recorded.exit_code_file);
      const pid = recorded.pid ?? this.pidFromFile(recorded);
      if (code !== null) {
        ctx.log(`the trainer of iteration ${input.iteration} ended while rft was away (exit code ${code})`);
        return this.finish(job, code, ctx);
      } else if (pid !== null && isProcessAlive(pid, recorded.pid === null ? null : recorded.start_ticks)) {
        if (recorded.pid === null) {
          recorded.pid = pid;
          ctx.save(job);
        }
        ctx.log(`re-attaching to the running trainer of iteration ${input.iteration} (pid ${pid}, log ${recorded.log})`);
      } else {
        ctx.warn(
          `the trainer of iteration ${input.iteration} (pid ${pid ?? 'unknown'}) is gone without an exit code: ` +
            `it died with the rft process that started it; starting it again (start ${recorded.starts + 1})`,
        );
        started = await this.start(job, cmdline, ctx);
      }
    } else {
      started = await this.start(job, cmdline, ctx);
    }
    const result = await this.wait(job, started, ctx);
    const command = job.command!;
    switch (result.kind) {
      case 'exited':
        return this.finish(job, result.code, ctx);
      case 'timeout':
        throw ctx.fail(job, `the trainer exceeded finetune.timeout_s (${this.config.timeout_s} s) and was killed${this.tail(command)}`);
      case 'lost':
        throw ctx.fail(job, `${result.reason}${this.tail(command)}`);
    }
  }

  private async start(job: FinetuneJob, cmdline: string, ctx: JobContext): Promise<DetachedProcess> {
    const { outputDir } = ctx.input;
    const exitCodeFile = path.join(outputDir, TRAINER_FILES.exitCode);
    const pidFile = path.join(outputDir, TRAINER_FILES.pid);
    const log = path.join(outputDir, TRAINER_FILES.log);
    for (const stale of [exitCodeFile, `${exitCodeFile}.tmp`, pidFile, `${pidFile}.tmp`]) rmSync(stale, { force: true });
    const command: CommandJob = {
      pid: null,
      start_ticks: null,
      cmdline,
      cwd: this.cwd,
      log,
      exit_code_file: exitCodeFile,
      exit_code: null,
      starts: (job.command?.starts ?? 0) + 1,
      started_at: nowIso(),
    };
    job.status = 'running';
    job.command = command;
    // Recorded before the process exists: a resumed run that finds no pid and no exit code knows it never ran or died.
    ctx.save(job);
    appendFileSync(log, `\n=== rft: iteration ${job.iteration}, attempt ${job.attempt}, start ${command.starts}, ${command.started_at} ===\n$ ${cmdline}\n`);
    const proc = await spawnDetached(wrapperScript(cmdline, exitCodeFile, pidFile), { logFile: log, cwd: this.cwd });
    command.pid = proc.pid;
    command.start_ticks = proc.startTicks;
    try {
      ctx.save(job);
    } catch (err) {
      await killGroup(proc.pid, { graceMs: 0 });
      throw err;
    }
    ctx.log(`started the trainer of iteration ${job.iteration} (pid ${proc.pid}); log: ${log}`);
    return proc;
  }

  private async wait(job: FinetuneJob, started: DetachedProcess | null, ctx: JobContext): Promise<WaitResult> {
    const command = job.command!;
    const pid = command.pid!;
    let exitedAs: string | null = null;
    started?.child.once('exit', (code, signal) => {
      exitedAs = signal ? `signal ${signal}` : `code ${code}`;
    });
    const deadline = this.config.timeout_s === null ? null : Date.parse(command.started_at ?? job.started_at) + this.config.timeout_s * 1000;
    for (;;) {
      const code = readExitCode(command.exit_code_file);
      if (code !== null) return { kind: 'exited', code };
      if (exitedAs !== null || !isProcessAlive(pid, command.start_ticks)) {
        // It may have written its exit code between the two looks.
        const late = readExitCode(command.exit_code_file);
        if (late !== null) return { kind: 'exited', code: late };
        return {
          kind: 'lost',
          reason: `the trainer process (pid ${pid}) ended without writing an exit code${exitedAs ? ` (${exitedAs})` : ''}: it was killed from outside`,
        };
      }
      if (deadline !== null && Date.now() >= deadline) {
        ctx.warn(`the trainer of iteration ${job.iteration} exceeded finetune.timeout_s (${this.config.timeout_s} s): killing its process group ${pid}`);
        await killGroup(pid, { graceMs: this.options.killGraceMs ?? 10_000 });
        return { kind: 'timeout' };
      }
      await sleep(this.pollMs, ctx.input.signal);
    }
  }

  private finish(job: FinetuneJob, code: number, ctx: JobContext): FinetuneJob {
    const command = job.command!;
    command.exit_code = code;
    if (code !== 0) throw ctx.fail(job, `the trainer exited with code ${code}${this.tail(command)}`);
    const read = this.readModel(ctx.input);
    if ('problem' in read) throw ctx.fail(job, `the trainer exited with code 0 but ${read.problem}${this.tail(command)}`);
    const model = read.model;
    // Before the record says succeeded: a wrong wiring stops here, and the fixed recipe's re-run
    // finds the exit code and reads the model again (the trainer never runs twice).
    this.assertModel(job.iteration, model);
    job.status = 'succeeded';
    job.output_model = model;
    job.finished_at = nowIso();
    job.error = null;
    ctx.save(job);
    ctx.log(`fine-tune of iteration ${job.iteration} succeeded: ${model}`);
    return job;
  }

  /**
   * A succeeded record read again with the recipe as it is now: a run resumed after its trainer
   * wiring was fixed (output_model → output_model_file) serves the model the trainer wrote, not
   * the path recorded under the old wiring.
   */
  reread(job: FinetuneJob, ctx: JobContext): FinetuneJob {
    const read = this.readModel(ctx.input);
    if ('problem' in read) {
      // Whatever the wiring says now cannot be read (the run folder moved, the file was cleaned up): keep the record's.
      ctx.warn(`fine-tune of iteration ${job.iteration}: ${read.problem}; keeping the recorded model ${job.output_model}`);
      this.assertModel(job.iteration, job.output_model!);
      return job;
    }
    this.assertModel(job.iteration, read.model);
    if (read.model !== job.output_model) {
      ctx.warn(`fine-tune of iteration ${job.iteration}: the recipe now names the trained model ${read.model} (recorded: ${job.output_model}); using it`);
      job.output_model = read.model;
      ctx.save(job);
    }
    return job;
  }

  /** The model the trainer produced, by the recipe's wiring, or why it cannot be read. */
  private readModel(input: TrainerInput): { model: string } | { problem: string } {
    const source = this.modelSource(input);
    if (source.kind === 'template') return { model: source.model };
    if (!existsSync(source.file)) return { problem: `the model file ${source.file} (finetune.output_model_file) does not exist` };
    const line = readFileSync(source.file, 'utf8')
      .split('\n')
      .map((text) => text.trim())
      .find((text) => text !== '');
    if (line === undefined) return { problem: `the model file ${source.file} (finetune.output_model_file) is empty` };
    return { model: line };
  }

  /** Throws FinetuneOutputError (not recorded) unless `model` is a name, a model folder or an adapter folder. */
  private assertModel(iteration: number, model: string): void {
    const check = checkModelOutput(model, this.cwd);
    if (check.kind === 'not_a_model') throw new FinetuneOutputError(iteration, check.problem);
  }

  /** Where the produced model's name comes from: output_model_file if set, else the output_model template. */
  private modelSource(input: TrainerInput): { kind: 'file'; file: string } | { kind: 'template'; model: string } {
    const values = commandTemplateValues(this.config, input);
    if (this.config.output_model_file !== null) {
      const file = renderTemplate(this.config.output_model_file, values, { what: 'finetune.output_model_file' });
      return { kind: 'file', file: path.resolve(this.cwd, file) };
    }
    return { kind: 'template', model: renderTemplate(this.config.output_model, values, { what: 'finetune.output_model' }) };
  }

  /** The pid the wrapper wrote itself, for a record whose pid was never saved (rft killed right after the start). */
  private pidFromFile(command: CommandJob): number | null {
    const file = path.join(path.dirname(command.exit_code_file), TRAINER_FILES.pid);
    try {
      const text = readFileSync(file, 'utf8').trim();
      return /^\d+$/.test(text) ? Number(text) : null;
    } catch {
      return null;
    }
  }

  private tail(command: CommandJob): string {
    const text = tailFile(command.log, TAIL_LINES);
    return text ? `\n--- last lines of ${command.log} ---\n${text}` : ` (${command.log} is empty)`;
  }
}
