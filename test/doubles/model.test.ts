import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SIM_BASE, SIM_BASE_NAME, SimModelError, SimModelSchema, baseSkill, loadSimModels, parseSimModel, skillFor } from '../../src/doubles/model.js';
import { minigymInstances } from '../helpers/minigym.js';

function modelDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-sim-models-'));
  for (const [name, value] of Object.entries(files)) writeFileSync(path.join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  return dir;
}

const CHILD = { name: 'sim-it1', simulated: true, parent: 'sim-base', skill: { default: 0.2, tasks: { 'minigym__unitkit-101': 0.9 } }, notes: 'trained on 3 trajectories' };

describe('simulated models', () => {
  it('the schema fills in an empty task list and insists on simulated: true', () => {
    expect(SimModelSchema.parse({ name: 'm', simulated: true, parent: null, skill: { default: 0.5 } })).toEqual({
      name: 'm',
      simulated: true,
      parent: null,
      skill: { default: 0.5, tasks: {} },
    });
    expect(SimModelSchema.safeParse({ name: 'm', simulated: false, parent: null, skill: { default: 0.5 } }).success).toBe(false);
    expect(SimModelSchema.safeParse({ name: 'm', simulated: true, parent: null, skill: { default: 1.5 } }).success).toBe(false);
  });

  it('sim-base derives a fixed skill per task from the instance id, within 0.1–0.6', () => {
    const ids = [...Array(400).keys()].map((i) => `org__repo-${i}`);
    const skills = ids.map(baseSkill);
    expect(Math.min(...skills)).toBeGreaterThanOrEqual(0.1);
    expect(Math.max(...skills)).toBeLessThanOrEqual(0.6);
    expect(new Set(skills).size).toBeGreaterThan(20);
    const solvedAtZero = skills.filter((s) => s >= 0.5).length / skills.length;
    expect(solvedAtZero).toBeGreaterThan(0.2);
    expect(solvedAtZero).toBeLessThan(0.45);
    expect(ids.map(baseSkill)).toEqual(skills);
    expect(skillFor(SIM_BASE, 'org__repo-7')).toBe(baseSkill('org__repo-7'));
  });

  it('on the bundled tasks sim-base has skills from 0.1 to 0.6, a third of them at least 0.5', () => {
    const skills = Object.fromEntries(minigymInstances().map((i) => [i.instance_id, skillFor(SIM_BASE, i.instance_id)]));
    expect(skills).toEqual({
      'minigym__iniform-201': 0.13,
      'minigym__iniform-202': 0.23,
      'minigym__iniform-203': 0.58,
      'minigym__ledgerlite-301': 0.23,
      'minigym__ledgerlite-302': 0.41,
      'minigym__ledgerlite-303': 0.56,
      'minigym__unitkit-101': 0.58,
      'minigym__unitkit-102': 0.21,
      'minigym__unitkit-103': 0.43,
    });
    expect(Object.values(skills).filter((s) => s >= 0.5)).toHaveLength(3);
  });

  it('skillFor prefers the listed skill, then the default (sim-base: the derived skill)', () => {
    const child = SimModelSchema.parse(CHILD);
    expect(skillFor(child, 'minigym__unitkit-101')).toBe(0.9);
    expect(skillFor(child, 'minigym__unitkit-102')).toBe(0.2);
    const listed = { ...SIM_BASE, skill: { default: 0.3, tasks: { x: 0.99 } } };
    expect(skillFor(listed, 'x')).toBe(0.99);
  });

  it('loads every *.json model file of a directory, sorted', () => {
    const dir = modelDir({ 'b.json': CHILD, 'a.json': { ...CHILD, name: 'sim-a', notes: undefined }, 'readme.txt': 'not a model' });
    const models = loadSimModels(dir);
    expect(models.map((m) => m.name)).toEqual(['sim-a', 'sim-it1']);
    expect(models[1]!.skill.tasks['minigym__unitkit-101']).toBe(0.9);
  });

  it('names the file and the field of a bad model', () => {
    const dir = modelDir({ 'bad.json': { ...CHILD, skill: { default: 0.2, tasks: { t: 2 } } } });
    expect(() => loadSimModels(dir)).toThrow(SimModelError);
    expect(() => loadSimModels(dir)).toThrow(`${path.join(dir, 'bad.json')}: not a simulated model: skill.tasks.t: a skill is a probability: at most 1`);
    expect(() => parseSimModel(JSON.stringify({ ...CHILD, simulated: undefined }), 'x.json')).toThrow(/^x\.json: .*simulated: must be true/);
    expect(() => parseSimModel(JSON.stringify({ ...CHILD, parent: undefined }), 'x.json')).toThrow(/x\.json: .*parent/);
    expect(() => parseSimModel('{"name":', 'broken.json')).toThrow(/^broken\.json: not valid JSON/);
  });

  it('rejects a second definition of a model, and a file claiming sim-base', () => {
    expect(() => loadSimModels(modelDir({ 'a.json': CHILD, 'b.json': CHILD }))).toThrow(/b\.json: name: sim-it1 is already defined in .*a\.json/);
    expect(() => loadSimModels(modelDir({ 'a.json': { ...CHILD, name: SIM_BASE_NAME } }))).toThrow(/a\.json: name: sim-base is built in/);
    expect(() => loadSimModels(path.join(tmpdir(), 'no-such-model-dir-rft'))).toThrow(/cannot read the model directory \(ENOENT\)/);
  });
});
