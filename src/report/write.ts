import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { gatherReport, type GatherOptions, type ReportData } from './data.js';
import { renderHtml, type TrajectoryLink } from './html.js';
import { renderMarkdown } from './markdown.js';
import { TRAJECTORIES_DIR, writeTrajectoryPages } from './trajectory-page.js';

export const REPORT_MARKDOWN = 'report.md';
export const REPORT_HTML = 'report.html';

export interface ReportFiles {
  markdown: string;
  html: string;
  /** Each run's trajectory index page (empty when pages were not asked for). */
  trajectories: string[];
}

/**
 * Writes report.md and report.html into `outDir` (created if missing), each atomically, and with
 * `trajectories` each run's trajectory pages under trajectories/ (one folder per run when there
 * are several), linked from report.html.
 */
export function writeReportFiles(data: ReportData, outDir: string, options: { trajectories?: boolean } = {}): ReportFiles {
  mkdirSync(outDir, { recursive: true });
  const links: TrajectoryLink[] = [];
  const indexes: string[] = [];
  if (options.trajectories ?? true) {
    data.runs.forEach((run, i) => {
      const sub = data.runs.length === 1 ? TRAJECTORIES_DIR : path.join(TRAJECTORIES_DIR, `${i + 1}-${run.name.replace(/[^A-Za-z0-9._-]/g, '_')}`);
      const dir = path.join(outDir, sub);
      const pages = writeTrajectoryPages(run.dir, run.label, dir, path.relative(dir, path.join(outDir, REPORT_HTML)));
      links.push({ label: run.label, href: path.relative(outDir, pages.index).split(path.sep).join('/'), counts: pages.counts });
      indexes.push(pages.index);
    });
  }
  const files = { markdown: path.join(outDir, REPORT_MARKDOWN), html: path.join(outDir, REPORT_HTML), trajectories: indexes };
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
}

/** Reads the runs' ledgers and writes the report files: what `rft report` does. */
export function createReport(options: CreateReportOptions): { data: ReportData; files: ReportFiles } {
  const data = gatherReport(options.runDirs, options);
  const files = writeReportFiles(data, options.outDir ?? data.runs[0]!.dir, { trajectories: options.trajectories ?? true });
  return { data, files };
}
