import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ImageMissingError, LABEL, reapContainers, Sandbox } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import {
  buildImage,
  classifyPullFailure,
  ensureImage,
  ImagePullError,
  imageExists,
  pullImage,
  PullProgressTracker,
  pushImage,
  registryOf,
  removeImage,
  tagImage,
  type PullProgress,
} from '../../src/sandbox/images.js';
import { freePort } from '../helpers/ports.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/registry.js';

/*
 * Pull, ensure and remove against a registry of our own: Debian's docker-registry, started here
 * on 127.0.0.1 with a temporary storage directory. Nothing but 127.0.0.1 is ever contacted.
 */

const BASE = 'rft-base:bookworm';
const RUN = `image-pull-test-${process.pid}`;
const BLOB_BYTES = 4 * 1024 * 1024;
const USER = 'rft-test';
const PASSWORD = 'not-a-real-secret';

/** A token endpoint for the registry's "silly" auth: a token only for the right basic credentials. */
async function startRealm(): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const server = createHttpServer((req, res) => {
    const authorization = req.headers.authorization ?? '';
    seen.push(authorization === '' ? 'anonymous' : authorization === expected ? 'good-credentials' : 'bad-credentials');
    res.setHeader('Content-Type', 'application/json');
    if (req.method === 'GET' && authorization === expected) {
      res.end(JSON.stringify({ token: 'rft-test-token', access_token: 'rft-test-token', expires_in: 300 }));
      return;
    }
    res.statusCode = 401;
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }] }));
  });
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, url: `http://127.0.0.1:${address.port}/token`, seen };
}

describe('pull progress summaries (no engine)', () => {
  it('counts layers and bytes, and reports at most once per interval plus the last', () => {
    let clock = 0;
    const reports: PullProgress[] = [];
    const tracker = new PullProgressTracker('r/x:1', (p) => reports.push(p), { intervalMs: 250, now: () => clock });
    tracker.event({ status: 'Pulling from x', id: '1' });
    tracker.event({ status: 'Already exists', id: 'aaa' });
    tracker.event({ status: 'Pulling fs layer', id: 'bbb' });
    tracker.event({ status: 'Pulling fs layer', id: 'ccc' });
    for (let i = 1; i <= 10; i++) {
      clock += 50;
      tracker.event({ status: 'Downloading', id: 'bbb', progressDetail: { current: i * 100, total: 1000 } });
    }
    tracker.event({ status: 'Download complete', id: 'bbb' });
    tracker.event({ status: 'Downloading', id: 'ccc', progressDetail: { current: 10, total: 500 } });
    clock += 1000;
    tracker.event({ status: 'Pull complete', id: 'bbb' });
    const mid = reports.at(-1)!;
    expect(mid).toMatchObject({ layersDone: 2, layersTotal: 3, bytesDownloaded: 1010, bytesTotal: 1500, done: false });
    tracker.event({ status: 'Download complete', id: 'ccc' });
    tracker.event({ status: 'Pull complete', id: 'ccc' });
    tracker.event({ status: 'Digest: sha256:0' });
    tracker.finish();
    // 18 events over 1.5 s of fake time: reports at 0, 250, 500 and 1500 ms, then the final one.
    expect(reports).toHaveLength(5);
    expect(reports.map((r) => r.bytesDownloaded)).toEqual([0, 500, 1000, 1010, 1500]);
    expect(reports.at(-1)).toEqual({
      image: 'r/x:1',
      layersDone: 3,
      layersTotal: 3,
      bytesDownloaded: 1500,
      bytesTotal: 1500,
      status: 'Digest: sha256:0',
      done: true,
    });
    expect(reports.filter((r) => r.done)).toHaveLength(1);
  });

  it('names registries and sorts failures', () => {
    expect(registryOf('127.0.0.1:5000/a/b:v1')).toBe('127.0.0.1:5000');
    expect(registryOf('xingyaoww/sweb.eval.x86_64.a_s_b-1')).toBe('docker.io');
    expect(registryOf('ubuntu')).toBe('docker.io');
    expect(registryOf('localhost/a')).toBe('localhost');
    expect(
      classifyPullFailure(
        "pull access denied for xingyaoww/nope, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
      ),
    ).toBe('denied');
    expect(classifyPullFailure('manifest for r/x:1 not found: manifest unknown: manifest unknown')).toBe('not_found');
    expect(classifyPullFailure('Head "http://127.0.0.1:1/v2/x/manifests/1": unauthorized')).toBe('unauthorized');
    expect(classifyPullFailure('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused')).toBe('unreachable');
    expect(classifyPullFailure('something else entirely')).toBe('failed');
  });
});

describe('images against a local registry (docker-registry on 127.0.0.1)', () => {
  let docker: Docker;
  let dir: string;
  let open: LocalRegistry;
  let locked: LocalRegistry;
  let realm: Awaited<ReturnType<typeof startRealm>>;
  let baseName: string;
  let layeredName: string;
  let lockedName: string;
  const createdNames: string[] = [];

  // A set-up failure (above all: the registry binary is not installed) fails every test below
  // with its message, rather than leaving them skipped.
  let setupError: unknown;
  beforeEach(() => {
    if (setupError !== undefined) throw setupError;
  });

  beforeAll(async () => {
    try {
      await setUp();
    } catch (err) {
      setupError = err;
    }
  });

  async function setUp(): Promise<void> {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rft-registry-'));
    // First, so that a missing registry binary is the error every test reports.
    open = await startLocalRegistry({ dir, name: 'open' });
    docker = await connectEngine();
    realm = await startRealm();
    // Same folder, so the same storage, but every request needs a token from our realm: what an authenticated registry does.
    locked = await startLocalRegistry({ dir, name: 'locked', auth: { realm: realm.url } });

    baseName = `${open.host}/rft-test/base:v1`;
    layeredName = `${open.host}/rft-test/layered:v1`;
    lockedName = `${locked.host}/rft-test/layered:v1`;
    createdNames.push(baseName, layeredName, lockedName);

    await tagImage(docker, BASE, baseName);
    await pushImage(docker, baseName);
    // A layer of random bytes that no other image has, so pulling it back really downloads.
    await buildImage(docker, {
      tag: layeredName,
      labels: { [LABEL.run]: RUN, [LABEL.purpose]: 'image-pull-test' },
      context: [
        { name: 'Dockerfile', content: `FROM ${BASE}\nCOPY blob /blob\n` },
        { name: 'blob', content: randomBytes(BLOB_BYTES) },
      ],
    });
    await pushImage(docker, layeredName);
  }

  afterAll(async () => {
    try {
      if (docker) {
        await reapContainers(docker, { [LABEL.run]: RUN });
        for (const name of createdNames) await docker.getImage(name).remove({ force: true }).catch(() => {});
        const leftovers = await docker.listImages({ filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) });
        for (const image of leftovers) await docker.getImage(image.Id).remove({ force: true }).catch(() => {});
      }
    } finally {
      await open?.stop();
      await locked?.stop();
      await new Promise<void>((resolve) => (realm ? realm.server.close(() => resolve()) : resolve()));
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });

  it('the engine allows plain http to registries on 127.0.0.0/8', async () => {
    const info = (await docker.info()) as { RegistryConfig?: { InsecureRegistryCIDRs?: string[] } };
    expect(info.RegistryConfig?.InsecureRegistryCIDRs).toContain('127.0.0.0/8');
    // and the push in beforeAll went through over http: the registry has the tag
    const tags = (await (await fetch(`http://${open.host}/v2/rft-test/base/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['v1']);
  });

  it('removing a second name of an image only untags it: the base image stays', async () => {
    const result = await removeImage(docker, baseName);
    expect(result).toMatchObject({ outcome: 'untagged', freed: false, sizeBytes: null, deleted: [] });
    expect(result.untagged).toContain(baseName);
    expect(await imageExists(docker, baseName)).toBe(false);
    expect(await imageExists(docker, BASE)).toBe(true);
  });

  it('ensureImage pulls a missing image back with progress, and then finds it present', async () => {
    expect(await imageExists(docker, baseName)).toBe(false);
    const reports: PullProgress[] = [];
    expect(await ensureImage(docker, baseName, { pull: true, onProgress: (p) => reports.push(p) })).toBe('pulled');
    expect(await imageExists(docker, baseName)).toBe(true);
    expect(reports.length).toBeGreaterThanOrEqual(1);
    const last = reports.at(-1)!;
    // every layer of it is already on the engine (it is rft-base), so the engine announces none
    expect(last).toMatchObject({ image: baseName, done: true, layersDone: last.layersTotal, bytesDownloaded: 0 });
    expect(last.status).toMatch(/^Status: Downloaded newer image for .*rft-test\/base:v1$/);
    // the same image id as the base: it is the very image we pushed
    expect((await docker.getImage(baseName).inspect()).Id).toBe((await docker.getImage(BASE).inspect()).Id);

    const again: PullProgress[] = [];
    expect(await ensureImage(docker, baseName, { pull: true, onProgress: (p) => again.push(p) })).toBe('present');
    expect(again).toEqual([]);
    expect((await removeImage(docker, baseName)).outcome).toBe('untagged');
  });

  it('removing the last name deletes the image and says so; pulling it back downloads the layer', async () => {
    const removed = await removeImage(docker, layeredName);
    expect(removed.outcome).toBe('deleted');
    expect(removed.freed).toBe(true);
    expect(removed.deleted.length).toBeGreaterThanOrEqual(1);
    expect(removed.sizeBytes).toBeGreaterThan(BLOB_BYTES);
    expect(await imageExists(docker, layeredName)).toBe(false);
    expect(await imageExists(docker, BASE)).toBe(true);

    const reports: PullProgress[] = [];
    await pullImage(docker, layeredName, { onProgress: (p) => reports.push(p) });
    expect(await imageExists(docker, layeredName)).toBe(true);
    const last = reports.at(-1)!;
    // two layers: the base one (already on the engine) and the random blob (downloaded)
    expect(last).toMatchObject({ done: true, layersTotal: 2, layersDone: 2 });
    expect(last.bytesTotal).toBeGreaterThan(BLOB_BYTES * 0.9);
    expect(last.bytesDownloaded).toBe(last.bytesTotal);
    expect(reports.filter((r) => r.done)).toHaveLength(1);
    for (let i = 1; i < reports.length; i++) {
      expect(reports[i]!.bytesDownloaded).toBeGreaterThanOrEqual(reports[i - 1]!.bytesDownloaded);
    }
    const box = await Sandbox.start(docker, {
      image: layeredName,
      labels: { [LABEL.run]: RUN, [LABEL.purpose]: 'image-pull-test' },
      memoryBytes: 128 * 1024 ** 2,
      cpus: 1,
      pids: 32,
      workdir: '/',
    });
    try {
      const stat = await box.exec(['stat', '-c', '%s', '/blob'], { timeoutMs: 30_000 });
      expect(stat.output.trim()).toBe(String(BLOB_BYTES));
    } finally {
      await box.remove();
    }
  });

  it('an image a container uses is kept with a warning, not a throw; removed once the container is gone', async () => {
    expect(await imageExists(docker, layeredName)).toBe(true);
    const container = await docker.createContainer({
      Image: layeredName,
      Cmd: ['true'],
      Labels: { [LABEL.run]: RUN, [LABEL.purpose]: 'image-pull-test' },
      HostConfig: { NetworkMode: 'none' },
    });

    const kept = await removeImage(docker, layeredName);
    expect(kept.outcome).toBe('in_use');
    expect(kept.freed).toBe(false);
    expect(kept.warning).toContain(layeredName);
    expect(kept.warning).toContain(container.id.slice(0, 12));
    expect(await imageExists(docker, layeredName)).toBe(true);

    await container.remove({ force: true });
    const removed = await removeImage(docker, layeredName);
    expect(removed).toMatchObject({ outcome: 'deleted', freed: true });
    expect(await imageExists(docker, layeredName)).toBe(false);
  });

  it('removing a name that is not there is fine', async () => {
    expect(await removeImage(docker, `${open.host}/rft-test/never-was:v1`)).toMatchObject({ outcome: 'absent', freed: false, sizeBytes: null });
  });

  it('ensureImage without permission to pull throws ImageMissingError and pulls nothing', async () => {
    expect(await imageExists(docker, layeredName)).toBe(false);
    const reports: PullProgress[] = [];
    await expect(ensureImage(docker, layeredName, { pull: false, onProgress: (p) => reports.push(p) })).rejects.toBeInstanceOf(ImageMissingError);
    expect(reports).toEqual([]);
    expect(await imageExists(docker, layeredName)).toBe(false);
  });

  it('pulling a name the registry does not have fails naming the image and the registry message', async () => {
    const name = `${open.host}/rft-test/does-not-exist:v7`;
    const error = await pullImage(docker, name).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ImagePullError);
    const e = error as ImagePullError;
    expect(e.reason).toBe('not_found');
    expect(e.registry).toBe(open.host);
    expect(e.message).toContain(name);
    expect(e.message).toMatch(/manifest unknown|not found/);
    expect(await imageExists(docker, name)).toBe(false);
    // ensureImage passes the pull failure on, not a "missing image" error
    await expect(ensureImage(docker, name, { pull: true })).rejects.toBeInstanceOf(ImagePullError);
  });

  it('a registry nobody listens on is reported as unreachable', async () => {
    const port = await freePort(); // bound and closed again: nothing listens there
    const name = `127.0.0.1:${port}/rft-test/base:v1`;
    const error = (await pullImage(docker, name).catch((e: unknown) => e)) as ImagePullError;
    expect(error).toBeInstanceOf(ImagePullError);
    expect(error.reason).toBe('unreachable');
    expect(error.message).toContain(name);
    expect(error.registryMessage).toMatch(/connection refused/);
  });

  it('a registry that wants credentials: unauthorized without them, pulls with them', async () => {
    const error = (await pullImage(docker, lockedName).catch((e: unknown) => e)) as ImagePullError;
    expect(error).toBeInstanceOf(ImagePullError);
    expect(error.reason).toBe('unauthorized');
    expect(error.message).toContain(lockedName);
    expect(error.registryMessage).toMatch(/unauthorized/i);
    expect(realm.seen).toContain('anonymous');
    expect(await imageExists(docker, lockedName)).toBe(false);

    const wrong = (await pullImage(docker, lockedName, { auth: { username: USER, password: 'wrong', serveraddress: locked.host } }).catch(
      (e: unknown) => e,
    )) as ImagePullError;
    expect(wrong).toBeInstanceOf(ImagePullError);
    expect(wrong.reason).toBe('unauthorized');
    expect(realm.seen).toContain('bad-credentials');

    const reports: PullProgress[] = [];
    const result = await ensureImage(docker, lockedName, {
      pull: true,
      auth: { username: USER, password: PASSWORD, serveraddress: locked.host },
      onProgress: (p) => reports.push(p),
    });
    expect(result).toBe('pulled');
    expect(realm.seen).toContain('good-credentials');
    expect(await imageExists(docker, lockedName)).toBe(true);
    expect(reports.at(-1)).toMatchObject({ done: true, layersTotal: 2, layersDone: 2 });
    expect((await removeImage(docker, lockedName)).outcome).toBe('deleted');
  });
});
