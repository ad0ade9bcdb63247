import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentSchema } from '../../src/recipe/schema.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { Instance } from '../../src/tasks/instance.js';
import { loadInstances } from '../../src/tasks/load.js';
import { buildEvalSpec, type EvalSpec } from '../../src/verify/spec.js';
import type { AgentSettings } from '../../src/agent/run.js';

/** The repository root, from dist-bench/bench/lib or bench/lib alike. */
export const ROOT = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const parts = here.split(path.sep);
  const at = parts.lastIndexOf('bench');
  const top = parts.slice(0, at).join(path.sep) || path.sep;
  return path.basename(top) === 'dist-bench' ? path.dirname(top) : top;
})();

export const TASKS_FILE = path.join(ROOT, 'test/fixtures/minigym/tasks.jsonl');

/** The bundled repositories' Python files, depth first in name order: path from the repository root, and text. */
export function bundledPythonFiles(): Array<{ rel: string; text: string }> {
  const files: Array<{ rel: string; text: string }> = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.py')) files.push({ rel: path.relative(ROOT, full), text: readFileSync(full, 'utf8') });
    }
  };
  walk(path.join(ROOT, 'test/fixtures/minigym/repos'));
  return files;
}

export function bundledInstances(limit?: number): Instance[] {
  const all = loadInstances(TASKS_FILE);
  return limit && limit > 0 ? all.slice(0, limit) : all;
}

export function imageFor(instance: Pick<Instance, 'instance_id'>): string {
  return imageNameFor(instance.instance_id, 'swebench');
}

/** The demo recipe's sandbox settings (recipes/demo.yaml). */
export const LIMITS = { memoryBytes: 1024 ** 3, cpus: 1, pids: 256 };
export const TEST_TIMEOUT_S = 120;

export function specCache(): (instance: Instance) => EvalSpec {
  const specs = new Map<string, EvalSpec>();
  return (instance) => {
    let spec = specs.get(instance.instance_id);
    if (!spec) specs.set(instance.instance_id, (spec = buildEvalSpec(instance, { timeout_s: TEST_TIMEOUT_S })));
    return spec;
  };
}

export function agentDefaults(): AgentSettings {
  return AgentSchema.parse({});
}
