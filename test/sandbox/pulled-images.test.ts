import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { buildImage, ImagePullError, imageExists, pullImage, pushImage, removeImage, tagImage } from '../../src/sandbox/images.js';
import { PULLED_IMAGES_FILE, PulledImageEventSchema, PulledImages } from '../../src/sandbox/pulled-images.js';
import { readRecords } from '../../src/store/ledger.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/registry.js';

/*
 * remove_after_use removes only what the run pulled, across a crash and resume. Against the real
 * engine: a locally built image, and images pulled from a docker-registry on 127.0.0.1.
 */

const ENGINE = 'unix:///var/run/docker.sock';
const BASE = 'rft-base:bookworm';
const TAG = `pulled-images-test-${process.pid}`;

let docker: Docker;
let registry: LocalRegistry;
let localName: string;
let remoteName: string;

beforeAll(async () => {
  docker = await connectEngine();
  registry = await startLocalRegistry();
  localName = `rft-pulled-test/local:${TAG}`;
  remoteName = `${registry.host}/rft-pulled-test/remote:v1`;
  const labels = { [LABEL.purpose]: 'pulled-images-test', 'rft.test-run': TAG };
  // Built here, never pulled: what `rft tasks build-images` makes (and no registry serves).
  await buildImage(docker, { tag: localName, labels, context: [{ name: 'Dockerfile', content: `FROM ${BASE}\nRUN echo local-${TAG} > /marker\n` }] });
  await buildImage(docker, { tag: remoteName, labels, context: [{ name: 'Dockerfile', content: `FROM ${BASE}\nRUN echo remote-${TAG} > /marker\n` }] });
  await pushImage(docker, remoteName);
  await removeImage(docker, remoteName);
});

afterAll(async () => {
  for (const name of [localName, remoteName, `${registry?.host}/rft-pulled-test/none:v1`]) await docker?.getImage(name).remove({ force: true }).catch(() => {});
  await registry?.stop();
});

function recordFile(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'rft-pulled-run-')), PULLED_IMAGES_FILE);
}

const events = (file: string) => [...readRecords(file, PulledImageEventSchema)].map((e) => `${e.event} ${e.image}`);

describe('images the run pulled (pulled-images.jsonl)', () => {
  it('a locally built image is present: not recorded, and never removed', async () => {
    const file = recordFile();
    const images = PulledImages.open(file);
    expect(await images.ensure(docker, ENGINE, localName, { pull: true })).toBe('present');
    expect(await images.removeIfPulled(docker, ENGINE, localName)).toBeNull();
    images.close();
    expect(await imageExists(docker, localName)).toBe(true);
    expect(events(file)).toEqual([]);
  });

  it('an image pulled from the registry is recorded before and after the pull, and removed after use', async () => {
    const file = recordFile();
    const images = PulledImages.open(file);
    expect(await images.ensure(docker, ENGINE, remoteName, { pull: true })).toBe('pulled');
    expect(events(file)).toEqual([`pulling ${remoteName}`, `pulled ${remoteName}`]);
    expect(await imageExists(docker, remoteName)).toBe(true);
    // On another engine this run pulled nothing.
    expect(await images.removeIfPulled(docker, 'tcp://elsewhere:2375', remoteName)).toBeNull();
    expect((await images.removeIfPulled(docker, ENGINE, remoteName))?.outcome).toBe('deleted');
    expect(await imageExists(docker, remoteName)).toBe(false);
    expect(events(file).at(-1)).toBe(`removed ${remoteName}`);
    expect(await images.removeIfPulled(docker, ENGINE, remoteName)).toBeNull();
    images.close();
  });

  it('after a crash, the resumed run removes what it pulled before the crash', async () => {
    const file = recordFile();
    const first = PulledImages.open(file);
    await first.ensure(docker, ENGINE, remoteName, { pull: true });
    first.close(); // killed before the instance was done: the image was not removed

    const resumed = PulledImages.open(file);
    expect(resumed.pulled(ENGINE, remoteName)).toBe(true);
    expect(await resumed.ensure(docker, ENGINE, remoteName, { pull: true })).toBe('present');
    expect((await resumed.removeIfPulled(docker, ENGINE, remoteName))?.outcome).toBe('deleted');
    resumed.close();
    expect(await imageExists(docker, remoteName)).toBe(false);
  });

  it('killed in the middle of a pull: the image is the run\'s if it came from the registry, not if it was built locally since', async () => {
    const pullingLine = (name: string) => `${JSON.stringify({ image: name, engine: ENGINE, event: 'pulling', at: new Date().toISOString() })}\n`;

    // The pull finished but `pulled` was never written.
    const file = recordFile();
    appendFileSync(file, pullingLine(remoteName));
    await pullImage(docker, remoteName);
    const resumed = PulledImages.open(file);
    expect(await resumed.ensure(docker, ENGINE, remoteName, { pull: true })).toBe('present');
    expect(events(file).at(-1)).toBe(`pulled ${remoteName}`);
    expect((await resumed.removeIfPulled(docker, ENGINE, remoteName))?.outcome).toBe('deleted');
    resumed.close();

    // The pull never got anywhere, and the user built the image under that name before resuming.
    const other = recordFile();
    appendFileSync(other, pullingLine(remoteName));
    await tagImage(docker, localName, remoteName);
    const again = PulledImages.open(other);
    expect(await again.ensure(docker, ENGINE, remoteName, { pull: true })).toBe('present');
    expect(events(other).at(-1)).toBe(`disowned ${remoteName}`);
    expect(await again.removeIfPulled(docker, ENGINE, remoteName)).toBeNull();
    again.close();
    expect(await imageExists(docker, remoteName)).toBe(true);
    await removeImage(docker, remoteName); // only the extra name: the local image stays
    expect(await imageExists(docker, localName)).toBe(true);
  });

  it('a failed pull is recorded as failed: an image built later under that name is not the run\'s', async () => {
    const missing = `${registry.host}/rft-pulled-test/none:v1`;
    const file = recordFile();
    const images = PulledImages.open(file);
    await expect(images.ensure(docker, ENGINE, missing, { pull: true })).rejects.toBeInstanceOf(ImagePullError);
    expect(events(file)).toEqual([`pulling ${missing}`, `failed ${missing}`]);
    images.close();

    // "rft tasks build-images" as the pull failure suggests, then resume.
    await tagImage(docker, localName, missing);
    const resumed = PulledImages.open(file);
    expect(await resumed.ensure(docker, ENGINE, missing, { pull: true })).toBe('present');
    expect(await resumed.removeIfPulled(docker, ENGINE, missing)).toBeNull();
    resumed.close();
    expect(await imageExists(docker, missing)).toBe(true);
  });
});
