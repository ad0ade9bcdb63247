/** A network check that does not answer in time is a failure to report, never a hang. */
export class CheckTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms / 1000} s`);
    this.name = 'CheckTimeoutError';
  }
}

/** Runs `work` with an abort signal that fires after `ms`; rejects with CheckTimeoutError then, even if `work` ignores the signal. */
export async function withTimeout<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new CheckTimeoutError(ms));
      reject(new CheckTimeoutError(ms));
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** The message of an error, one line, as a check result shows it. */
export function reasonOf(err: unknown): string {
  if (err instanceof CheckTimeoutError) return err.message;
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code;
  const message = (e.cause?.message ?? e.message ?? String(err)).split('\n')[0]!;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
