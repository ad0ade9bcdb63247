import type Docker from 'dockerode';
import { z } from 'zod';
import { Ledger, readRecords } from '../store/ledger.js';
import { ImageMissingError } from './container.js';
import { imageExists, pullImage, removeImage, splitImageName, type PullOptions, type RemoveImageResult } from './images.js';

/**
 * Which images this run pulled, so that `sandbox.image_policy: remove_after_use` removes those
 * and never an image that was on the engine before rft needed it (one built locally, with
 * `rft tasks build-images` or by hand, cannot be pulled again).
 *
 * An append-only ledger in the run directory (`pulled-images.jsonl`), one event per line, each
 * on disk (fsync) before rft goes on:
 *   pulling   written BEFORE the pull starts, once rft found the image missing;
 *   pulled    the pull finished: the image is the run's to remove;
 *   failed    the pull failed: nothing of the run's is there;
 *   removed   the run removed it: what has that name later is not the run's (unless pulled again);
 *   disowned  a `pulling` left by a crash whose image turned out to be built locally meanwhile.
 * A crash between `pulling` and `pulled` leaves `pulling` last: the resumed run finds the image
 * either missing (it pulls again) or present, and then it is the run's only if the engine says it
 * came from a registry (a repo digest of its name) — what was pulled can be pulled again.
 */

export const PULLED_IMAGES_FILE = 'pulled-images.jsonl';

export const PulledImageEventSchema = z.object({
  image: z.string().min(1),
  /** The Docker engine's address (sandbox.docker[].url): an image is pulled per engine. */
  engine: z.string().min(1),
  event: z.enum(['pulling', 'pulled', 'failed', 'removed', 'disowned']),
  at: z.string(),
});
export type PulledImageEvent = z.infer<typeof PulledImageEventSchema>;

type Ownership = 'pulling' | 'pulled';

export class PulledImages {
  private constructor(
    private readonly ledger: Ledger<PulledImageEvent>,
    /** The last event of each (engine, image) the run may own; absent: not the run's. */
    private readonly owned: Map<string, Ownership>,
  ) {}

  /** Opens the run's record (a torn last line is cut off: that event's step is redone). */
  static open(file: string, warn: (message: string) => void = () => {}): PulledImages {
    const { ledger } = Ledger.open(file, PulledImageEventSchema, (bytes) => warn(`${file}: dropped a torn last line (${bytes} bytes)`));
    const owned = new Map<string, Ownership>();
    for (const e of readRecords(file, PulledImageEventSchema)) {
      if (e.event === 'pulling' || e.event === 'pulled') owned.set(keyOf(e.engine, e.image), e.event);
      else owned.delete(keyOf(e.engine, e.image));
    }
    return new PulledImages(ledger, owned);
  }

  /** Did this run pull the image on this engine (and not remove it since)? */
  pulled(engine: string, image: string): boolean {
    return this.owned.get(keyOf(engine, image)) === 'pulled';
  }

  /**
   * Makes sure the image is on the engine: present → nothing (a crash's `pulling` is settled);
   * missing → pulled if allowed (recorded before and after), else ImageMissingError.
   */
  async ensure(docker: Docker, engine: string, image: string, options: { pull: boolean } & PullOptions): Promise<'present' | 'pulled'> {
    const key = keyOf(engine, image);
    if (await imageExists(docker, image)) {
      if (this.owned.get(key) === 'pulling') this.record(engine, image, (await fromRegistry(docker, image)) ? 'pulled' : 'disowned');
      return 'present';
    }
    if (!options.pull) throw new ImageMissingError(image);
    this.record(engine, image, 'pulling');
    try {
      await pullImage(docker, image, options);
    } catch (err) {
      this.record(engine, image, 'failed');
      throw err;
    }
    this.record(engine, image, 'pulled');
    return 'pulled';
  }

  /** Removes the image if this run pulled it; null when it is not the run's (it is kept). */
  async removeIfPulled(docker: Docker, engine: string, image: string): Promise<RemoveImageResult | null> {
    if (!this.pulled(engine, image)) return null;
    const result = await removeImage(docker, image);
    // In use by a container: still the run's, removed after a later use.
    if (result.outcome !== 'in_use') this.record(engine, image, 'removed');
    return result;
  }

  close(): void {
    this.ledger.close();
  }

  private record(engine: string, image: string, event: PulledImageEvent['event']): void {
    this.ledger.append({ image, engine, event, at: new Date().toISOString() });
    const key = keyOf(engine, image);
    if (event === 'pulling' || event === 'pulled') this.owned.set(key, event);
    else this.owned.delete(key);
  }
}

function keyOf(engine: string, image: string): string {
  return `${engine}\u0000${image}`;
}

/** Did the image come from a registry? A pulled image has a repo digest of its repository; a local build has none. */
async function fromRegistry(docker: Docker, image: string): Promise<boolean> {
  const { repo } = splitImageName(image);
  const digests = ((await docker.getImage(image).inspect()).RepoDigests ?? []) as string[];
  return digests.some((d) => d.split('@')[0] === repo || d.split('@')[0] === `docker.io/${repo}` || d.split('@')[0] === `docker.io/library/${repo}`);
}
