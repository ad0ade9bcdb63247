import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { gatherReport, type GatherOptions, type ReportData } from './data.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

export const REPORT_MARKDOWN = 'report.md';
export const REPORT_HTML = 'report.html';

export interface ReportFiles {
  markdown: string;
  html: string;
}

/** Writes report.md and report.html into `outDir` (created if missing), each atomically. */
export function writeReportFiles(data: ReportData, outDir: string): ReportFiles {
  mkdirSync(outDir, { recursive: true });
  const files = { markdown: path.join(outDir, REPORT_MARKDOWN), html: path.join(outDir, REPORT_HTML) };
  writeFileAtomic(files.markdown, renderMarkdown(data));
  writeFileAtomic(files.html, renderHtml(data));
  return files;
}

export interface CreateReportOptions extends GatherOptions {
  runDirs: readonly string[];
  /** Default: the first run's folder. */
  outDir?: string;
}

/** Reads the runs' ledgers and writes the two report files: what `rft report` does. */
export function createReport(options: CreateReportOptions): { data: ReportData; files: ReportFiles } {
  const data = gatherReport(options.runDirs, options);
  const files = writeReportFiles(data, options.outDir ?? data.runs[0]!.dir);
  return { data, files };
}
