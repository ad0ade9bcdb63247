import { describe, expect, it } from 'vitest';
import { connectEngine, EngineUnavailableError } from '../../src/sandbox/engine.js';

const BASE_IMAGE = 'rft-base:bookworm';

describe('the real Docker engine', () => {
  it('runs rft-base:bookworm with no network and removes the container', async () => {
    const docker = await connectEngine();
    const probe = [
      'import socket, sys, os',
      'print("ifaces", sorted(os.listdir("/sys/class/net")))',
      's = socket.socket(); s.settimeout(3)',
      'try:',
      '    s.connect(("1.1.1.1", 53)); print("network: reachable")',
      'except OSError as e:',
      '    print("network: unreachable", e.errno)',
      'import pytest, subprocess',
      'print("pytest", pytest.__version__)',
      'print(subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip())',
    ].join('\n');
    const container = await docker.createContainer({
      Image: BASE_IMAGE,
      Cmd: ['python3', '-c', probe],
      Labels: { 'rft.test': 'engine' },
      HostConfig: { NetworkMode: 'none', Memory: 256 * 1024 * 1024, PidsLimit: 64 },
    });
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as Buffer;
      const text = demux(logs);
      expect(StatusCode).toBe(0);
      expect(text).toContain("ifaces ['lo']");
      expect(text).toMatch(/network: unreachable \d+/);
      expect(text).toMatch(/pytest \d+\.\d+/);
      expect(text).toMatch(/git version/);
      const info = await container.inspect();
      expect(info.HostConfig.NetworkMode).toBe('none');
    } finally {
      await container.remove({ force: true });
    }
    await expect(docker.getContainer(container.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('a missing engine is a clear error saying what to run', async () => {
    const error = await connectEngine('unix:///nonexistent/docker.sock').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(EngineUnavailableError);
    expect((error as Error).message).toContain('scripts/setup-docker.sh');
  });
});

/** Docker multiplexes stdout/stderr of a non-TTY container into 8-byte-header frames. */
function demux(buffer: Buffer): string {
  let out = '';
  for (let offset = 0; offset + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  return out;
}
