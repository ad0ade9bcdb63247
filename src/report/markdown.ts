import type { ReportData } from './data.js';
import {
  callsFrequencyTable,
  callsSummaryTable,
  capComparisonTable,
  finetuneTable,
  ratesTable,
  resolveRateTable,
  runsTable,
  successCountTables,
  tokensBinsTable,
  tokensSummaryTable,
  warningsOf,
  type Table,
} from './tables.js';
import { scalingTable } from './scaling.js';
import { evalHeadline } from './eval-figure.js';

/**
 * A cell's text, safe inside a Markdown table: no line breaks, pipes escaped, and the characters
 * that Markdown renderers would take as HTML, emphasis, links or code escaped, so names from the
 * ledgers show as they are.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\r?\n|\r/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|#~])/g, '\\$1');
}

export function markdownTable(t: Table): string {
  const head = `| ${t.headers.map(escapeMarkdown).join(' | ')} |`;
  const rule = `|${t.align.map((a) => (a === 'right' ? ' ---: ' : ' --- ')).join('|')}|`;
  const body = t.rows.length === 0 ? [`| ${t.headers.map((_, i) => (i === 0 ? '(none)' : '')).join(' | ')} |`] : t.rows.map((r) => `| ${r.map(escapeMarkdown).join(' | ')} |`);
  const caption = t.caption ? `${escapeMarkdown(t.caption)}\n\n` : '';
  return `${caption}${[head, rule, ...body].join('\n')}\n`;
}

/** report.md: the HTML report's tables, with every chart given as the table of its data. Pure. */
export function renderMarkdown(data: ReportData): string {
  const out: string[] = [];
  const simulated = data.runs.filter((r) => r.simulated_policy || r.simulated_trainer);
  out.push(`# RFT report: ${escapeMarkdown(data.runs.map((r) => r.label).join(', '))}\n`);
  out.push(`Generated ${escapeMarkdown(data.generated_at)} from the ledgers of ${data.runs.length} run${data.runs.length === 1 ? '' : 's'}; every number is counted from them.\n`);
  if (simulated.length > 0) {
    out.push(
      `> **SIMULATION.** ${escapeMarkdown(simulated.map((r) => r.label).join(', '))} use${simulated.length === 1 ? 's' : ''} the project's SIMULATED policy and/or SIMULATED trainer (test doubles, no real model): the numbers show the loop works, not how well a model learns.\n`,
    );
  }
  for (const run of data.runs) {
    const h = evalHeadline(run);
    if (h !== null) out.push(`**${data.runs.length > 1 ? `${escapeMarkdown(run.label)}: ` : ''}eval resolved ${escapeMarkdown(h)}**\n`);
  }
  out.push('## Runs\n', markdownTable(runsTable(data)));

  out.push('## 1. Resolve rate per iteration\n', markdownTable(resolveRateTable(data)));

  out.push('## 2. Successes per instance\n');
  const successTables = successCountTables(data);
  out.push(successTables.length === 0 ? 'No train samples yet.\n' : successTables.map(markdownTable).join('\n'));

  out.push('## 3. LLM calls per trajectory\n', markdownTable(callsSummaryTable(data)));
  data.runs.forEach((run, i) =>
    run.llm_calls.forEach((c) => out.push(markdownTable(callsFrequencyTable(run, c, `llm-calls-${i}-${c.iteration}`)))),
  );

  out.push('## 4. Tokens per SFT example\n', markdownTable(tokensSummaryTable(data)));
  data.runs.forEach((run, i) =>
    run.datasets.forEach((d, j) => {
      if (d.example_tokens && d.example_tokens.bins.length > 0) out.push(markdownTable(tokensBinsTable(run, d, `tokens-${i}-${j}`)));
    }),
  );

  out.push('## 5. Empty patches and errors\n', markdownTable(ratesTable(data)));
  out.push('## 6. Cap comparison\n', markdownTable(capComparisonTable(data)));
  out.push('## 7. Fine-tune jobs\n', markdownTable(finetuneTable(data)));
  if (data.runs.some((r) => r.scaling.length > 0)) out.push('## 8. Inference-time scaling (best-of-n)\n', markdownTable(scalingTable(data)));

  const warnings = warningsOf(data);
  if (warnings.length > 0) out.push('## Notes\n', `${warnings.map((w) => `- ${escapeMarkdown(w)}`).join('\n')}\n`);
  return out.join('\n');
}
