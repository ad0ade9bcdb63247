import { existsSync, readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import pLimit from 'p-limit';
import { z } from 'zod';
import { imageExists } from '../sandbox/images.js';
import { writeJsonAtomic } from '../store/atomic.js';
import type { Instance } from '../tasks/instance.js';
import type { EvalSpec } from './spec.js';

/** An instance left out of a run before any sampling, and why (one line). */
export const ExclusionSchema = z.object({ instance_id: z.string().min(1), reason: z.string().min(1) }).strict();
export type Exclusion = z.infer<typeof ExclusionSchema>;
export const ExclusionsFileSchema = z.object({ checked_at: z.iso.datetime({ offset: true }), excluded: z.array(ExclusionSchema) }).strict();

/** How preflight asks about an image: on one engine, and from its registry (the interface tests count calls through). */
export interface ImageProbe {
  /** Is the image on this engine? */
  has(image: string): Promise<boolean>;
  /** Null when the registry serves the image (asked without pulling), else why not (one line). */
  registryProblem(image: string): Promise<string | null>;
}

/** One engine's probe: `GET /images/<name>/json`, then `GET /distribution/<name>/json`. */
export function dockerImageProbe(docker: Docker): ImageProbe {
  return {
    has: (image) => imageExists(docker, image),
    registryProblem: async (image) => {
      try {
        await docker.getImage(image).distribution({});
        return null;
      } catch (err) {
        const message = (err as { json?: { message?: string }; message?: string }).json?.message ?? (err as Error).message;
        return String(message).split('\n')[0]!;
      }
    },
  };
}

/** Images asked about at once: a registry answers a few per second each, 2,438 one at a time took 15 minutes. */
export const PREFLIGHT_CONCURRENCY = 16;

export interface PreflightOptions {
  specFor: (instance: Instance) => EvalSpec;
  imageFor: (instance: Instance) => string;
  /** Engines the instance's containers may run on; the image must be on each or pullable. */
  dockers: readonly Docker[];
  /** May missing images be pulled (then the registry is asked whether it has them)? */
  pull: boolean;
  /** How the engines are asked (default: dockerImageProbe of each of `dockers`). */
  probes?: readonly ImageProbe[];
}

/**
 * Which instances cannot be verified at all, known before the first LLM call so no sample is
 * spent on them: an eval spec that cannot be built (a test patch reaching outside the
 * repository, an instance naming a runner rft cannot read), or an image that is not on the engine
 * and that its registry does not serve (asked without pulling: `GET /distribution/<name>/json`).
 * Checked again on every start of the run, so a registry that was only unreachable for a while
 * costs nothing lasting.
 */
export async function preflight(instances: readonly Instance[], options: PreflightOptions): Promise<{ kept: Instance[]; excluded: Exclusion[] }> {
  const kept: Instance[] = [];
  const excluded: Exclusion[] = [];
  const imageChecks = new Map<string, Promise<string | null>>();
  const limit = pLimit(PREFLIGHT_CONCURRENCY);
  const probes = options.probes ?? options.dockers.map(dockerImageProbe);
  // Every distinct image is asked about at once (bounded), then the answers are read in order.
  const reasons: Array<Promise<string | null>> = [];
  for (const instance of instances) {
    let reason: string | null = null;
    try {
      options.specFor(instance);
    } catch (err) {
      reason = `cannot be verified: ${(err as Error).message}`;
    }
    if (reason === null) {
      let image: string;
      try {
        image = options.imageFor(instance);
      } catch (err) {
        image = '';
        reason = `no image name: ${(err as Error).message}`;
      }
      if (reason === null) {
        let check = imageChecks.get(image);
        if (!check) {
          check = limit(() => imageProblem(image, probes, options.pull));
          imageChecks.set(image, check);
        }
        reasons.push(check);
        continue;
      }
    }
    reasons.push(Promise.resolve(reason));
  }
  const answers = await Promise.all(reasons);
  instances.forEach((instance, i) => {
    const reason = answers[i]!;
    if (reason === null) kept.push(instance);
    else excluded.push({ instance_id: instance.instance_id, reason });
  });
  return { kept, excluded };
}

async function imageProblem(image: string, probes: readonly ImageProbe[], pull: boolean): Promise<string | null> {
  for (const probe of probes) {
    if (await probe.has(image)) continue;
    if (!pull) return `image ${image} is missing and pulling is off`;
    const problem = await probe.registryProblem(image);
    if (problem !== null) return `image ${image} is missing and cannot be pulled: ${problem}`;
  }
  return null;
}

export const EXCLUDED_FILE = 'excluded.json';

export function writeExclusions(file: string, excluded: readonly Exclusion[]): void {
  writeJsonAtomic(file, ExclusionsFileSchema.parse({ checked_at: new Date().toISOString(), excluded }));
}

/** The instances the last start of a run left out; [] when none were (or the run predates this). */
export function readExclusions(file: string): Exclusion[] {
  if (!existsSync(file)) return [];
  return ExclusionsFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).excluded;
}
