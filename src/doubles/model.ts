import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * SIMULATED policy models (a test double, design §9). A simulated model is nothing but a name
 * and a skill per task: the probability that a trajectory sampled at temperature 1.0 ends with
 * a correct fix. The simulated server (src/doubles/server.ts) turns skills into behaviour;
 * the simulated trainer writes new model files whose skills are higher on the tasks it saw.
 */

const skillValue = z.number().min(0, 'a skill is a probability: at least 0').max(1, 'a skill is a probability: at most 1');

export const SimModelSchema = z.object({
  name: z
    .string()
    .min(1, 'a model needs a name')
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'must be letters, digits, ".", "_", ":", "/" or "-"'),
  /** Always true: a simulated model is labelled as one wherever it appears. */
  simulated: z.literal(true, 'must be true (this file describes a SIMULATED model)'),
  /** The model this one was (simulated-)trained from; null for a base model. */
  parent: z.string().min(1).nullable(),
  skill: z.object({
    /** Skill on a task the model has no entry for. */
    default: skillValue,
    /** Skill per instance id. */
    tasks: z.record(z.string(), skillValue).default({}),
  }),
  notes: z.string().optional(),
});
export type SimModel = z.infer<typeof SimModelSchema>;

export const SIM_BASE_NAME = 'sim-base';

/**
 * The salt of sim-base's skill hash. Chosen (once, by trying a few) so that on the bundled
 * minigym tasks the skills spread over 0.13–0.58 and three of nine are at least 0.5, i.e.
 * solved at temperature 0; any other instance id gets a skill from the same formula.
 */
const BASE_SALT = 'sim-base/3';

/**
 * sim-base's fixed skill on a task, derived from the instance id alone: 0.1 + 0.5·u^0.55 for a
 * hash-uniform u, rounded to 0.01 — so between 0.1 and 0.6, about a third of tasks at 0.5 or more.
 */
export function baseSkill(instanceId: string): number {
  const u = createHash('sha256').update(`${BASE_SALT}\u0000${instanceId}`).digest().readUInt32BE(0) / 2 ** 32;
  return Math.round((0.1 + 0.5 * u ** 0.55) * 100) / 100;
}

/**
 * The built-in base model. Its per-task skills are not listed: `skillFor` derives them from the
 * instance id (`baseSkill`), so it has a fixed skill on every task, bundled or not.
 */
export const SIM_BASE: SimModel = Object.freeze({
  name: SIM_BASE_NAME,
  simulated: true,
  parent: null,
  skill: Object.freeze({ default: 0.3, tasks: Object.freeze({}) as Record<string, number> }),
  notes: 'SIMULATED base policy (test double): per-task skill derived from the instance id, 0.1–0.6',
}) as SimModel;

/** The model's skill on a task: its own entry, else (sim-base) the derived skill, else its default. */
export function skillFor(model: SimModel, instanceId: string): number {
  const listed = model.skill.tasks[instanceId];
  if (listed !== undefined) return listed;
  if (model.name === SIM_BASE_NAME && model.parent === null) return baseSkill(instanceId);
  return model.skill.default;
}

/** A bad model file: names the file and the field. */
export class SimModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimModelError';
  }
}

/** Parses one model from JSON text; `file` names it in errors. */
export function parseSimModel(text: string, file: string): SimModel {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SimModelError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const result = SimModelSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.slice(0, 5).map((issue) => `${issue.path.map(String).join('.') || '(the file)'}: ${issue.message}`);
    throw new SimModelError(`${file}: not a simulated model: ${problems.join('; ')}`);
  }
  return result.data;
}

/**
 * Every `*.json` model file in a directory, sorted by file name. A bad file is an error naming
 * the file and the field; two files naming the same model, or one naming sim-base (built in),
 * are errors too.
 */
export function loadSimModels(dir: string): SimModel[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json')).sort();
  } catch (err) {
    throw new SimModelError(`${dir}: cannot read the model directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const models: SimModel[] = [];
  const seen = new Map<string, string>();
  for (const name of names) {
    const file = path.join(dir, name);
    const model = parseSimModel(readFileSync(file, 'utf8'), file);
    if (model.name === SIM_BASE_NAME) throw new SimModelError(`${file}: name: ${SIM_BASE_NAME} is built in; give the model another name`);
    const before = seen.get(model.name);
    if (before) throw new SimModelError(`${file}: name: ${model.name} is already defined in ${before}`);
    seen.set(model.name, file);
    models.push(model);
  }
  return models;
}
