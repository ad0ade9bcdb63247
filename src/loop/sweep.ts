import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadRecipe } from '../recipe/load.js';
import { RUN_FILES } from '../store/run-dir.js';
import { isNoneWord } from '../util/none-word.js';
import type { StartSimulatedPolicy } from '../policy/simulated.js';
import { driveRun, type DriveResult } from './drive.js';
import { forkRun } from './fork.js';

export class SweepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepError';
  }
}

export interface GridAxis {
  key: string;
  values: string[];
}

/** `select.cap=1,2,none` → { key: 'select.cap', values: ['1', '2', 'null'] } (`none` and `null` alike: src/util/none-word.ts). */
export function parseGridAxis(text: string): GridAxis {
  const eq = text.indexOf('=');
  const key = text.slice(0, eq);
  const values = text.slice(eq + 1).split(',').map((v) => v.trim());
  if (eq <= 0 || values.some((v) => v === '')) throw new SweepError(`--grid takes key=v1,v2,…, got "${text}"`);
  return { key, values: values.map((v) => (isNoneWord(v) ? 'null' : v)) };
}

/** Every combination of the axes' values, as --set overrides. */
export function gridPoints(axes: readonly GridAxis[]): string[][] {
  return axes.reduce<string[][]>((points, axis) => points.flatMap((point) => axis.values.map((value) => [...point, `${axis.key}=${value}`])), [[]]);
}

export function pointName(base: string, point: readonly string[]): string {
  const parts = point.map((setting) => {
    const [key, value] = setting.split('=') as [string, string];
    return `${key.split('.').pop()}-${value === 'null' ? 'none' : value}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  });
  return [base, ...parts].join('-');
}

export interface SweepResult {
  base: DriveResult;
  runs: { name: string; settings: string[]; result: DriveResult | null }[];
}

/**
 * A grid of sibling runs off one shared first iteration: the recipe's run samples and verifies
 * iteration 0 once; each grid point is a fork of it from iteration 0 (sharing those samples by
 * hard link) with its own settings, run to the end. Running the sweep again continues each run.
 */
export async function sweep(options: {
  recipeFile: string;
  grid: readonly string[];
  runsDir: string;
  startSimulated?: StartSimulatedPolicy;
  log: (message: string) => void;
  warn: (message: string) => void;
}): Promise<SweepResult> {
  const axes = options.grid.map(parseGridAxis);
  if (axes.length === 0) throw new SweepError('give at least one --grid key=v1,v2');
  const points = gridPoints(axes);
  for (const point of points) loadRecipe(options.recipeFile, point); // every point must be a valid recipe before anything runs
  const baseName = loadRecipe(options.recipeFile).recipe.name;
  options.log(`sweep: ${points.length} runs off ${baseName}'s first iteration`);
  const base = await driveRun({ recipeFile: options.recipeFile, runsDir: options.runsDir, stopAfterSampling: 0, startSimulated: options.startSimulated, log: options.log, warn: options.warn });
  const runs: SweepResult['runs'] = [];
  if (base.status !== 'sampled' && base.status !== 'complete') return { base, runs };
  for (const point of points) {
    const name = pointName(baseName, point);
    const runDir = path.join(path.resolve(options.runsDir), name);
    if (!existsSync(path.join(runDir, RUN_FILES.meta))) {
      const forked = forkRun({ parentDir: base.runDir, name, fromIteration: 0, overrides: point, runsDir: options.runsDir, warn: options.warn });
      options.log(`sweep: ${name} (${point.join(' ')}) shares ${forked.linkedFiles} files with ${baseName}`);
    }
    const result = await driveRun({ runDir, runsDir: options.runsDir, startSimulated: options.startSimulated, log: options.log, warn: options.warn });
    runs.push({ name, settings: point, result });
    if (result.status === 'stopped') break;
  }
  return { base, runs };
}
