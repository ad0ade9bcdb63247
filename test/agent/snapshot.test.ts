import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { takeSnapshot } from '../../src/agent/snapshot.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { MINIGYM_DIR } from '../helpers/minigym.js';

describe('repository snapshot', () => {
  it('holds the tracked files at HEAD of /testbed, is cached by image id, and leaves no container', async () => {
    const docker = await connectEngine();
    const cacheDir = mkdtempSync(path.join(tmpdir(), 'rft-snap-'));
    const image = 'sweb.eval.x86_64.minigym__unitkit-101:latest';
    const labels = { [LABEL.run]: `snapshot-test-${process.pid}` };
    const first = await takeSnapshot(docker, image, { cacheDir, labels });
    const source = readFileSync(path.join(MINIGYM_DIR, 'repos/unitkit/unitkit/units.py'), 'utf8');
    expect(first.files.get('unitkit/units.py')).toBe(source);
    expect(first.files.has('tests/test_temperature.py')).toBe(true);
    expect([...first.files.keys()].some((p) => p.startsWith('.git/'))).toBe(false);
    expect(readdirSync(cacheDir)).toHaveLength(1);
    const cached = path.join(cacheDir, readdirSync(cacheDir)[0]!);
    expect(existsSync(cached)).toBe(true);

    const second = await takeSnapshot(docker, image, { cacheDir, labels });
    expect(second.imageId).toBe(first.imageId);
    expect([...second.files.entries()]).toEqual([...first.files.entries()]);
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${labels[LABEL.run]}`] }) });
    expect(left).toEqual([]);
  });
});
