import type { z } from 'zod';
import type { ChatMessage } from '../policy/types.js';
import type { ActionSpec } from './states/state.js';

export type ParsedAction<A = Record<string, unknown>> = { ok: true; action: A } | { ok: false; problem: string };

/** Keys that are never fields of an action: a reply naming them is refused, whatever the schema lets through. */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];

/**
 * Reads a structured action out of an assistant message: the JSON object in its content (json
 * protocol; a fenced ```json block is tolerated) or the arguments of its tool call (tools
 * protocol). Every way it can be wrong becomes a one-line problem the retry message repeats.
 */
export function parseAction<S extends z.ZodType>(spec: ActionSpec<S>, message: Extract<ChatMessage, { role: 'assistant' }>, protocol: 'json' | 'tools'): ParsedAction<z.infer<S>> {
  const expected = spec.name;
  let raw: string;
  if (protocol === 'tools') {
    const call = message.tool_calls?.[0];
    if (!call) return { ok: false, problem: `call the function ${expected}; the reply called no function` };
    const count = message.tool_calls!.length;
    if (count > 1) return { ok: false, problem: `call the function ${expected} once; the reply made ${count} calls` };
    if (call.function.name !== expected) return { ok: false, problem: `call the function ${expected}, not ${truncate(call.function.name, 60)}` };
    raw = call.function.arguments;
  } else {
    raw = extractJson(message.content ?? '');
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { ok: false, problem: `the reply is not valid JSON (${truncate((err as Error).message, 120)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: `the reply must be one JSON object for ${expected}` };
  }
  const forbidden = Object.keys(value).filter((k) => FORBIDDEN_KEYS.includes(k));
  if (forbidden.length > 0) return { ok: false, problem: `unknown field(s) ${forbidden.join(', ')}` };
  const input = spec.normalize ? spec.normalize(value as Record<string, unknown>) : value;
  const result = spec.schema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.slice(0, 3).map((issue) => {
      const field = issue.path.map(String).join('.') || expected;
      if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.map((k) => truncate(k, 40)).join(', ')}`;
      if (valueAt(input, issue.path) === undefined) return `missing field ${field}`;
      return `${field}: ${issue.message.replace(/^Invalid input: /, '')}`;
    });
    return { ok: false, problem: problems.join('; ') };
  }
  return { ok: true, action: result.data as z.infer<S> };
}

/** The value at a path of the parsed reply; undefined when a key on the way is absent. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

export function extractJson(content: string): string {
  const text = content.trim();
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n```$/.exec(text);
  return fenced ? fenced[1]! : text;
}

export function truncate(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
