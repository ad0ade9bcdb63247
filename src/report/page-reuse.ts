import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { writeJsonAtomic } from '../store/atomic.js';
import type { LedgerLocation } from '../store/ledger.js';

/**
 * Pages whose inputs did not change are not written again. A page's inputs: its trajectory's
 * record line (the bytes in the ledger; the texts it refers to are in the append-only blob file and
 * never change), the verdict it shows (outcome: a final verdict is recorded once), its test log
 * (size and mtime), the links it carries, and the code that renders it (the page modules' own
 * bytes, so a new rft renders every page anew). Their hash per page is kept in a side file beside
 * the pages, written atomically after them.
 */
export const PAGE_INPUTS_FILE = 'page-inputs.json';

const PageInputsSchema = z.object({ format: z.literal(1), pages: z.record(z.string(), z.string()) }).strict();

/** The rendering code's fingerprint: the page modules as they are on disk (built .js, or .ts under test). */
function codeFingerprint(): string {
  const hash = createHash('sha256');
  // Every module whose code shapes a trajectory page's bytes: the page, its view, the shared
  // document, style and diff (trajectory-html), the dataset and score wording (trajectory-context), escaping (svg).
  for (const name of ['trajectory-page', 'trajectory-view', 'trajectory-html', 'trajectory-context', 'page', 'svg']) {
    for (const ext of ['.js', '.ts']) {
      const file = fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
      if (existsSync(file)) {
        hash.update(readFileSync(file));
        break;
      }
    }
  }
  return hash.digest('hex');
}

export class PageInputs {
  private readonly before: Map<string, string>;
  private readonly now = new Map<string, string>();
  private readonly code = codeFingerprint();
  private readonly fds = new Map<string, number>();

  private constructor(
    private readonly dir: string,
    saved: Record<string, string>,
  ) {
    this.before = new Map(Object.entries(saved));
  }

  static open(dir: string): PageInputs {
    const file = path.join(dir, PAGE_INPUTS_FILE);
    let saved: Record<string, string> = {};
    try {
      // Only a cache: unreadable means every page is written again.
      if (existsSync(file)) saved = PageInputsSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).pages;
    } catch {
      saved = {};
    }
    return new PageInputs(dir, saved);
  }

  /** The inputs' hash of one page. */
  hash(ledger: string, at: LedgerLocation, verdict: string, log: string | null, links: readonly string[]): string {
    let fd = this.fds.get(ledger);
    if (fd === undefined) {
      fd = openSync(ledger, 'r');
      this.fds.set(ledger, fd);
    }
    const record = Buffer.allocUnsafe(at.length);
    readSync(fd, record, 0, at.length, at.offset);
    const logStat = log !== null && existsSync(log) ? statSync(log) : null;
    const logStamp = logStat ? `${logStat.size}:${logStat.mtimeMs}` : '-';
    return createHash('sha256').update(this.code).update(record).update(JSON.stringify([verdict, logStamp, links])).digest('hex');
  }

  /** Is `page` written already from these inputs? Records the hash either way. */
  current(page: string, hash: string): boolean {
    this.now.set(page, hash);
    return this.before.get(page) === hash && existsSync(path.join(this.dir, page));
  }

  /** Writes the side file (the pages of this report only) and closes the ledgers. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    writeJsonAtomic(path.join(this.dir, PAGE_INPUTS_FILE), { format: 1, pages: Object.fromEntries(this.now) });
  }
}
