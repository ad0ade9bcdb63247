import path from 'node:path';
import type Docker from 'dockerode';
import { classifyPullFailure, imageExists, registryOf } from '../../sandbox/images.js';
import { imageNameFor } from '../../tasks/image-name.js';
import { mulberry32 } from '../../util/prng.js';
import type { DoctorContext } from '../context.js';
import { fail, ok, warn, type CheckResult } from '../record.js';
import { CheckTimeoutError, reasonOf, withTimeout } from '../timeout.js';

/** Image look-ups in flight on the engine. */
const CONCURRENCY = 8;

type ImageState = { name: string; state: 'present' } | { name: string; state: 'pullable' } | { name: string; state: 'missing'; reason: string; unreachable: boolean };

/**
 * Each task set's images are on the first engine, or the engine can resolve them in their
 * registry (GET /distribution/{name}/json: the manifest, no layers). A registry that does not
 * answer within the timeout is not asked again for the set's other images: the check fails in
 * seconds whatever the number of images.
 */
export async function checkImages(ctx: DoctorContext): Promise<CheckResult[]> {
  const [sets, engines] = await Promise.all([ctx.taskSets(), ctx.engines()]);
  const engine = engines[0]!;
  return Promise.all(
    sets.map(async (set): Promise<CheckResult> => {
      const template = ctx.recipe.tasks[set.set]?.image ?? ctx.recipe.sandbox.image;
      const what = `images of ${set.field} (${template})`;
      if (set.instances === null) return warn('images', what, `not checked: the task file is not readable (see ${set.field}.path above)`);
      if (engine.docker === null) return warn('images', what, `not checked: Docker engine ${engine.url} does not answer`);
      let names: string[];
      try {
        names = [...new Set(set.instances.map((instance) => imageNameFor(instance.instance_id, template)))];
      } catch (err) {
        return fail('images', what, (err as Error).message, `fix ${set.field}.image or sandbox.image`);
      }
      const all = names.length;
      if (ctx.options.sample !== null && names.length > ctx.options.sample) names = seededSample(names, ctx.options.sample, ctx.recipe.seed);
      const states = await lookUp(engine.docker, names, ctx.options.timeoutMs);
      const scope = names.length < all ? `a seeded sample of ${names.length} of ${all} image(s)` : `${all} image(s)`;
      const present = states.filter((s) => s.state === 'present').length;
      const pullable = states.filter((s) => s.state === 'pullable').length;
      const missing = states.filter((s): s is Extract<ImageState, { state: 'missing' }> => s.state === 'missing');
      const counts = `${present} present${pullable > 0 ? `, ${pullable} pullable` : ''}`;
      if (missing.length === 0) return ok('images', what, `${scope}: ${counts}`);
      const shown = `e.g. ${missing[0]!.name} (${missing[0]!.reason.trim()})`;
      const more = missing.length > 1 ? ` and ${missing.length - 1} more` : '';
      const unreachable = missing.some((m) => m.unreachable);
      const fix = unreachable
        ? `let the engine reach ${[...new Set(missing.filter((m) => m.unreachable).map((m) => registryOf(m.name)))].join(', ')} (network, proxy, or a mirror: scripts/setup-registry.sh), or build the images locally`
        : `check the image name template (${set.field}.image / sandbox.image) against the registry, or build them (\`rft tasks build-images ${path.resolve(ctx.baseDir, set.file)}\` for local source trees)`;
      return fail('images', what, `${scope}: ${counts}, ${missing.length} neither present nor pullable: ${shown}${more}`, fix);
    }),
  );
}

/** N names drawn without replacement, the same for the same seed (Fisher–Yates on a copy). */
export function seededSample(names: readonly string[], n: number, seed: number): string[] {
  const random = mulberry32(seed);
  const copy = [...names];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, n);
}

async function lookUp(docker: Docker, names: string[], timeoutMs: number): Promise<ImageState[]> {
  const deadRegistries = new Map<string, string>();
  const out: ImageState[] = new Array(names.length);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      out[i] = await lookUpOne(docker, names[i]!, timeoutMs, deadRegistries);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, names.length) }, worker));
  return out;
}

async function lookUpOne(docker: Docker, name: string, timeoutMs: number, deadRegistries: Map<string, string>): Promise<ImageState> {
  try {
    if (await withTimeout(timeoutMs, () => imageExists(docker, name))) return { name, state: 'present' };
  } catch (err) {
    return { name, state: 'missing', reason: `the engine did not say whether it has it: ${reasonOf(err)}`, unreachable: false };
  }
  const registry = registryOf(name);
  const dead = deadRegistries.get(registry);
  if (dead !== undefined) return { name, state: 'missing', reason: dead, unreachable: true };
  try {
    await withTimeout(timeoutMs, (abortSignal) => distributionInspect(docker, name, abortSignal));
    return { name, state: 'pullable' };
  } catch (err) {
    const message = reasonOf(err);
    const unreachable = err instanceof CheckTimeoutError || classifyPullFailure(message) === 'unreachable';
    const reason = unreachable ? `registry ${registry} unreachable: ${message}` : `${classifyPullFailure(message).replace('_', ' ')}: ${message}`;
    if (unreachable) deadRegistries.set(registry, reason);
    return { name, state: 'missing', reason, unreachable };
  }
}

/** GET /distribution/{name}/json: the engine asks the registry for the image's manifest. */
function distributionInspect(docker: Docker, name: string, abortSignal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      { path: `/distribution/${name}/json`, method: 'GET', abortSignal, options: {}, statusCodes: { 200: true, 401: 'unauthorized', 403: 'denied', 404: 'not found', 500: 'server error' } },
      (err: unknown, data: unknown) => (err ? reject(err) : resolve(data)),
    );
  });
}
