import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { gatherReport, type GatherOptions, type ReportData } from './data.js';
import { renderHtml, type TrajectoryLink } from './html.js';
import { renderMarkdown } from './markdown.js';
import type { PagesSpec } from './page-selection.js';
import { TRAJECTORIES_DIR, writeTrajectoryPages } from './trajectory-page.js';

export const REPORT_MARKDOWN = 'report.md';
export const REPORT_HTML = 'report.html';

export interface ReportFiles {
  markdown: string;
  html: string;
  /** Each run's trajectory index page (empty when pages were not asked for). */
  trajectories: string[];
  /** Each run's trajectory pages written now and reused (their inputs unchanged), in the order of `trajectories`. */
  pages: Array<{ written: number; reused: number }>;
}

/**
 * Writes report.md and report.html into `outDir` (created if missing), each atomically, and with
 * `trajectories` each run's trajectory pages under trajectories/ (one folder per run when there
 * are several), linked from report.html.
 */
export function writeReportFiles(data: ReportData, outDir: string, options: { trajectories?: boolean; pages?: PagesSpec } = {}): ReportFiles {
  mkdirSync(outDir, { recursive: true });
  const links: TrajectoryLink[] = [];
  const indexes: string[] = [];
  const pageCounts: Array<{ written: number; reused: number }> = [];
  if (options.trajectories ?? true) {
    data.runs.forEach((run, i) => {
      const sub = data.runs.length === 1 ? TRAJECTORIES_DIR : path.join(TRAJECTORIES_DIR, `${i + 1}-${run.name.replace(/[^A-Za-z0-9._-]/g, '_')}`);
      const dir = path.join(outDir, sub);
      const pages = writeTrajectoryPages(run.dir, run.label, dir, path.relative(dir, path.join(outDir, REPORT_HTML)), options.pages);
      pageCounts.push({ written: pages.written, reused: pages.reused });
      links.push({ label: run.label, href: path.relative(outDir, pages.index).split(path.sep).join('/'), counts: pages.counts });
      indexes.push(pages.index);
    });
  }
  const files = { markdown: path.join(outDir, REPORT_MARKDOWN), html: path.join(outDir, REPORT_HTML), trajectories: indexes, pages: pageCounts };
  writeFileAtomic(files.markdown, renderMarkdown(data));
  writeFileAtomic(files.html, renderHtml(data, links));
  return files;
}

export interface CreateReportOptions extends GatherOptions {
  runDirs: readonly string[];
  /** Default: the first run's folder. */
  outDir?: string;
  /** Write the trajectory pages too (default true). */
  trajectories?: boolean;
  /** Which trajectories get a page (default: page-selection.ts's bounded default). */
  pages?: PagesSpec;
}

/** Reads the runs' ledgers and writes the report files: what `rft report` does. */
export function createReport(options: CreateReportOptions): { data: ReportData; files: ReportFiles } {
  const data = gatherReport(options.runDirs, options);
  const files = writeReportFiles(data, options.outDir ?? data.runs[0]!.dir, { trajectories: options.trajectories ?? true, ...(options.pages ? { pages: options.pages } : {}) });
  return { data, files };
}
