import { RecipeError } from '../recipe/load.js';
import { FinetuneFailedError, FinetuneInterruptedError, FinetuneMismatchError } from '../finetune/job.js';
import { TemplateError } from '../finetune/template.js';
import { MissingApiKeyError, SimulatedPolicyUnavailableError } from '../loop/policy-endpoint.js';
import { SIM_USER_ERRORS } from './sim.js';
import { ArgumentError } from './arguments.js';
import { TokenizerError } from '../sft/tokenizer.js';
import { ServeError } from '../serve/errors.js';
import { ForkError } from '../loop/fork.js';
import { SweepError } from '../loop/sweep.js';
import { NotARunDirError } from '../loop/drive.js';
import { RunDirOccupiedError } from '../store/run-dir.js';
import { EngineUnavailableError } from '../sandbox/engine.js';
import { ImageMissingError } from '../sandbox/container.js';
import { ImagePullError } from '../sandbox/images.js';
import { DatasetFetchError } from '../tasks/fetch.js';
import { ImageNameError } from '../tasks/image-name.js';
import { TaskFileError } from '../tasks/load.js';
import { LedgerCorruptError } from '../store/ledger.js';
import { RunLockedError } from '../store/lock.js';
import { RecipeMismatchError } from '../store/run-dir.js';
import { ShowError } from '../report/show.js';
import { PagesSpecError } from '../report/page-selection.js';
import { NotReadyError } from '../doctor/preflight.js';
import { describeSystemError, WriteFailedError } from '../store/atomic.js';
import { AppendError } from '../store/ledger.js';
import { SynthResumeError } from '../synth/records.js';

/** Errors that are the user's input or situation: printed plainly, no stack, exit code 2. */
const USER_ERRORS = [
  ArgumentError,
  TokenizerError,
  RecipeError,
  RecipeMismatchError,
  RunLockedError,
  LedgerCorruptError,
  TaskFileError,
  DatasetFetchError,
  ImageNameError,
  EngineUnavailableError,
  ImageMissingError,
  ...SIM_USER_ERRORS,
  SimulatedPolicyUnavailableError,
  ImagePullError,
  FinetuneFailedError,
  FinetuneMismatchError,
  TemplateError,
  MissingApiKeyError,
  ServeError,
  ForkError,
  SweepError,
  NotARunDirError,
  RunDirOccupiedError,
  FinetuneInterruptedError,
  ShowError,
  PagesSpecError,
  NotReadyError,
  WriteFailedError,
  AppendError,
  SynthResumeError,
];

/** System errors that are the machine's situation, not a bug: a full disk or quota. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

export function reportFailure(error: unknown): never {
  if (USER_ERRORS.some((kind) => error instanceof kind)) {
    console.error(`rft: ${(error as Error).message}`);
    process.exit(2);
  }
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && DISK_FULL.has(code)) {
    // Writes of run state are atomic or cut back when they fail: nothing recorded is lost.
    const where = (error as NodeJS.ErrnoException).path;
    console.error(`rft: ${where ? `${where}: ` : ''}${describeSystemError(error)}: free space, then resume the run (nothing recorded is lost)`);
    process.exit(2);
  }
  // Not the user's input nor the machine's situation: a fault of rft. Still a message, not a stack
  // trace, unless asked for (RFT_DEBUG=1), with what to do about it.
  const message = error instanceof Error ? error.message : String(error);
  const stack = process.env.RFT_DEBUG && error instanceof Error ? `\n${error.stack ?? ''}` : '';
  console.error(`rft: ${message}\nrft: this is unexpected (a fault of rft, not of your input): run again with RFT_DEBUG=1 for the stack trace, and report it with the command you ran${stack}`);
  process.exit(1);
}
