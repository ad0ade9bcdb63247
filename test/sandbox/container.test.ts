import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { connectEngine } from '../../src/sandbox/engine.js';
import { ImageMissingError, LABEL, reapContainers, Sandbox } from '../../src/sandbox/container.js';

const RUN = `sandbox-test-${process.pid}`;

function spec(extra: Partial<Parameters<typeof Sandbox.start>[1]> = {}) {
  return {
    image: 'rft-base:bookworm',
    labels: { [LABEL.run]: RUN, [LABEL.iteration]: '0', [LABEL.instance]: 'demo__x-1' },
    memoryBytes: 256 * 1024 ** 2,
    cpus: 1,
    pids: 64,
    workdir: '/tmp',
    ...extra,
  };
}

describe('sandbox on the real engine', () => {
  let docker: Docker;
  let box: Sandbox;

  beforeAll(async () => {
    docker = await connectEngine();
    box = await Sandbox.start(docker, spec());
  });

  afterAll(async () => {
    await box?.remove();
    await reapContainers(docker, { [LABEL.run]: RUN });
  });

  it('runs with the limits, labels and no network', async () => {
    const info = await box.container.inspect();
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.Memory).toBe(256 * 1024 ** 2);
    expect(info.HostConfig.PidsLimit).toBe(64);
    expect(info.Config.Labels).toMatchObject({ 'rft.run': RUN, 'rft.iteration': '0', 'rft.instance': 'demo__x-1' });
    const result = await box.exec(['cat', '/proc/net/dev'], { timeoutMs: 10_000 });
    expect(result.exitCode).toBe(0);
    expect(result.output).toMatch(/\blo:/);
    expect(result.output).not.toMatch(/eth0/);
  });

  it('returns exit code and combined stdout and stderr', async () => {
    const result = await box.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 10_000 });
    expect(result.exitCode).toBe(3);
    expect(result.output).toContain('out');
    expect(result.output).toContain('err');
    expect(result.timedOut).toBe(false);
  });

  it('kills a command that runs past its timeout, with everything it started', async () => {
    const result = await box.exec(['sh', '-c', '(sleep 300 &) ; sleep 300'], { timeoutMs: 1_000 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    const ps = await box.exec(['sh', '-c', 'ls /proc | grep -E "^[0-9]+$" | while read p; do cat /proc/$p/cmdline 2>/dev/null | tr "\\0" " "; echo; done'], {
      timeoutMs: 10_000,
    });
    expect(ps.output).not.toContain('sleep 300');
  });

  it('caps a flood of output and reports the truncation', async () => {
    const result = await box.exec(['sh', '-c', 'echo FIRST; yes flood | head -c 20000000; echo; echo LAST'], {
      timeoutMs: 60_000,
      maxOutputBytes: 64 * 1024,
    });
    expect(result.exitCode).toBe(0);
    expect(result.truncated).toBe(true);
    expect(result.outputBytes).toBeGreaterThan(20_000_000);
    expect(result.output.length).toBeLessThan(70 * 1024);
    expect(result.output.startsWith('FIRST')).toBe(true);
    expect(result.output.trimEnd().endsWith('LAST')).toBe(true);
  });

  it('copies files in and out through tar archives, names with spaces and quotes intact', async () => {
    const name = "odd name 'quoted' $(touch pwned).txt";
    await box.putFiles('/tmp', [{ name: `in/${name}`, content: 'payload\n' }]);
    const listing = await box.exec(['ls', '/tmp/in'], { timeoutMs: 10_000 });
    expect(listing.output.trim()).toBe(name);
    expect((await box.exec(['test', '-e', '/tmp/pwned'], { timeoutMs: 10_000 })).exitCode).toBe(1);
    expect((await box.readFile(`/tmp/in/${name}`))?.toString()).toBe('payload\n');
    expect(await box.readFile('/tmp/in/missing')).toBeNull();
  });

  it('a missing image is a clear error that says what to run', async () => {
    const error = await Sandbox.start(docker, spec({ image: 'sweb.eval.x86_64.no-such-task:latest' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageMissingError);
    expect((error as Error).message).toContain('rft tasks build-images');
  });

  it('the reaper removes every container of a run', async () => {
    const a = await Sandbox.start(docker, spec());
    const b = await Sandbox.start(docker, spec());
    expect(await reapContainers(docker, { [LABEL.run]: RUN })).toBeGreaterThanOrEqual(2);
    for (const id of [a.id, b.id]) {
      await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    }
  });
});
