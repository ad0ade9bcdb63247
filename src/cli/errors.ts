import { RecipeError } from '../recipe/load.js';
import { SimModelError } from '../policy/sim/model.js';
import { FinetuneFailedError, FinetuneInterruptedError, FinetuneMismatchError } from '../finetune/job.js';
import { TemplateError } from '../finetune/template.js';
import { MissingApiKeyError } from '../loop/policy-endpoint.js';
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

/** Errors that are the user's input or situation: printed plainly, no stack, exit code 2. */
const USER_ERRORS = [
  RecipeError,
  RecipeMismatchError,
  RunLockedError,
  LedgerCorruptError,
  TaskFileError,
  DatasetFetchError,
  ImageNameError,
  EngineUnavailableError,
  ImageMissingError,
  SimModelError,
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
  console.error(error instanceof Error ? `rft: ${error.stack ?? error.message}` : `rft: ${String(error)}`);
  process.exit(1);
}
