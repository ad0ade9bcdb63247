import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statfsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DiskLimitExceededError, LABEL, Sandbox } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { Instance } from '../../src/tasks/instance.js';
import { verifyPatch, type VerifyContext } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { makePatch, minigymInstance } from '../helpers/minigym.js';

/**
 * Hostile patches in the sandbox, on the real engine: each is a patch to a bundled task whose
 * code under test misbehaves, verified with small limits. Each case asserts the verdict, that no
 * container of this run is left, and that the host is unaffected where that is the question.
 */

const RUN = `hostile-patches-${process.pid}`;
const TASK = 'minigym__unitkit-101';
const BUGGY = 'return value / self.factor - self.offset';
const FIXED = 'return (value - self.offset) / self.factor';
const FIX = { file: 'unitkit/units.py', from: BUGGY, to: FIXED };
const LIMITS = { memoryBytes: 256 * 1024 ** 2, cpus: 1, pids: 96, diskBytes: 1024 ** 3 };
const TIMEOUT_S = 20;
/** Unique per test run: names processes and files the hostile code makes, so the host can be searched for them. */
const MARK = `rft${randomBytes(4).toString('hex')}`;

let docker: Docker;
let ctx: VerifyContext;
let instance: Instance;
/** Does this engine bound a container's writable layer itself (StorageOpt.size)? Not on overlay2 over ext4. */
let engineBoundsLayers = false;

function verify(patch: string) {
  return verifyPatch(ctx, instance, buildEvalSpec(instance, { timeout_s: TIMEOUT_S }), patch);
}

/** Python run when the tests import unitkit.units (during collection), appended to the module. */
function atImport(code: string, options: { fix?: boolean } = {}): string {
  return makePatch('unitkit', [...(options.fix ? [FIX] : []), { file: 'unitkit/units.py', from: '', to: `\n\n${code.trim()}\n` }]);
}

/** Python run inside Unit.from_base (during the FAIL_TO_PASS tests), before its return. */
function inFromBase(code: string, options: { fix?: boolean } = {}): string {
  const body = code
    .trim()
    .split('\n')
    .map((line) => `        ${line}`)
    .join('\n');
  return makePatch('unitkit', [{ file: 'unitkit/units.py', from: BUGGY, to: `${body.trimStart()}\n        ${options.fix ? FIXED : BUGGY}` }]);
}

async function containersLeft(): Promise<number> {
  return (await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) })).length;
}

/** Host processes whose name (comm) or command line contains `needle`. */
function hostProcesses(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (comm.includes(needle) || cmdline.includes(needle)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function junitForgery(): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const ids = [...instance.FAIL_TO_PASS, ...instance.PASS_TO_PASS];
  const cases = ids.map((id) => {
    const [file, ...rest] = id.split('::');
    const name = rest.pop()!;
    return `<testcase classname="${esc([file!.replace(/\.py$/, '').replace(/\//g, '.'), ...rest].join('.'))}" name="${esc(name)}" time="0.001"/>`;
  });
  return `<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="${ids.length}" time="0.1">${cases.join('')}</testsuite></testsuites>`;
}

beforeAll(async () => {
  docker = await connectEngine();
  instance = minigymInstance(TASK);
  const probe = await docker
    .createContainer({ Image: 'rft-base:bookworm', Cmd: ['true'], Labels: { [LABEL.run]: RUN }, HostConfig: { NetworkMode: 'none', StorageOpt: { size: '1G' } } })
    .then(async (c) => {
      await c.remove({ force: true });
      return true;
    })
    .catch(() => false);
  engineBoundsLayers = probe;
  ctx = {
    docker,
    imageFor: (i) => imageNameFor(i.instance_id, 'swebench'),
    limits: LIMITS,
    labels: { [LABEL.run]: RUN },
    maxLogBytes: 256 * 1024,
  };
});

afterEach(async () => {
  expect(await containersLeft()).toBe(0);
  expect(hostProcesses(MARK)).toEqual([]);
});

afterAll(async () => {
  expect(await containersLeft()).toBe(0);
});

describe('hostile patches, verified in the sandbox', () => {
  it('the fix alone resolves under these limits (the baseline every case below is measured against)', { timeout: 200_000 }, async () => {
    const { verdict } = await verify(makePatch('unitkit', [FIX]));
    expect(verdict.outcome).toBe('resolved');
  });

  it('a fork bomb: the pids limit holds inside the container, the run times out, nothing of it is left on the host', { timeout: 300_000 }, async () => {
    const bomb = `
import ctypes as _rft_c, os as _rft_o, time as _rft_t
_rft_c.CDLL(None).prctl(15, b"${MARK}", 0, 0, 0)
while True:
    try:
        _rft_o.fork()
    except OSError:
        _rft_t.sleep(0.01)
`;
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, hostProcesses(MARK).length)), 200);
    try {
      const { verdict } = await verify(atImport(bomb, { fix: true }));
      expect(verdict.outcome).toBe('timeout');
    } finally {
      clearInterval(watch);
    }
    // It did bomb, and never past the limit (a few pids go to the container's own processes).
    expect(most).toBeGreaterThan(LIMITS.pids / 2);
    expect(most).toBeLessThanOrEqual(LIMITS.pids);
    expect(hostProcesses(MARK)).toEqual([]);
  });

  it('a memory hog (2 GB) is killed by the memory limit: not resolved', { timeout: 200_000 }, async () => {
    const hog = `_rft_hog = b"x" * (2 * 1024 ** 3)`;
    const { verdict } = await verify(atImport(hog, { fix: true }));
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.reason).toMatch(/killed/);
  });

  it('a disk filler is stopped at the disk bound (by the watchdog where the engine cannot bound the layer, as here), not resolved, the space given back', { timeout: 300_000 }, async () => {
    const free = () => {
      const s = statfsSync('/var/lib/docker', { bigint: false });
      return s.bavail * s.bsize;
    };
    const before = free();
    const filler = `
_rft_buf = b"x" * (1 << 20)
_rft_i = 0
while True:
    try:
        with open(f"/tmp/${MARK}-{_rft_i}", "wb") as _rft_f:
            for _ in range(128):
                _rft_f.write(_rft_buf)
    except OSError as _rft_e:
        print(_rft_e)
    _rft_i += 1
`;
    const { verdict } = await verify(atImport(filler, { fix: true }));
    if (engineBoundsLayers) {
      // ENOSPC inside; the filler keeps trying until the timeout.
      expect(verdict.outcome).toBe('timeout');
    } else {
      expect(verdict.outcome).toBe('unresolved');
      expect(verdict.reason).toMatch(/filled the disk: .* over the limit of 1073741824/);
    }
    // The container and its layer are gone: what it wrote is free again (others' use of the disk aside).
    expect(free()).toBeGreaterThan(before - 512 * 1024 ** 2);
  });

  describe('network use', () => {
    let server: Server;
    let port: number;
    const accepted: Socket[] = [];

    beforeAll(async () => {
      server = createServer((socket) => {
        accepted.push(socket);
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen({ port: 0, host: '::', ipv6Only: false }, resolve));
      port = (server.address() as { port: number }).port;
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('1.1.1.1, DNS and every address of the host (a server listening there) are unreachable: the fix that needs them does not apply', { timeout: 200_000 }, async () => {
      const hostAddresses = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a !== undefined && !a.address.startsWith('fe80'))
        .map((a) => a!.address);
      const targets = [
        ['1.1.1.1', 53],
        ['1.1.1.1', 443],
        ['172.17.0.1', port],
        ['host.docker.internal', port],
        ...hostAddresses.map((address) => [address, port]),
      ];
      const code = `
import socket as _rft_s
_RFT_NET = []
_RFT_NET_LOG = []
for _rft_h, _rft_p in ${JSON.stringify(targets)}:
    try:
        _rft_s.create_connection((_rft_h, _rft_p), timeout=3).close()
        _RFT_NET.append(_rft_h)
    except OSError as _rft_e:
        _RFT_NET_LOG.append(f"RFT_NET {_rft_h}:{_rft_p} {type(_rft_e).__name__}: {_rft_e}")
try:
    _rft_s.getaddrinfo("example.com", 80)
    _RFT_NET.append("dns")
except OSError as _rft_e:
    _RFT_NET_LOG.append(f"RFT_NET dns {type(_rft_e).__name__}: {_rft_e}")
`;
      const patch = makePatch('unitkit', [
        { file: 'unitkit/units.py', from: BUGGY, to: `print("\\n".join(_RFT_NET_LOG))\n        return (value - self.offset) / self.factor if _RFT_NET else value / self.factor - self.offset` },
        { file: 'unitkit/units.py', from: '', to: `\n\n${code.trim()}\n` },
      ]);
      const { verdict, log } = await verify(patch);
      expect(verdict.outcome).toBe('unresolved');
      expect(verdict.report?.FAIL_TO_PASS.failure.length).toBe(instance.FAIL_TO_PASS.length);
      expect(log).toMatch(/RFT_NET 1\.1\.1\.1:53 OSError: \[Errno 101\] Network is unreachable/);
      expect(log).toMatch(/RFT_NET dns gaierror/);
      for (const address of hostAddresses) expect(log).toContain(`RFT_NET ${address}:${port}`);
      expect(accepted).toHaveLength(0);
    });
  });

  it('sleeping forever: a timeout verdict, the container removed', { timeout: 200_000 }, async () => {
    const { verdict } = await verify(atImport('import time as _rft_t\n_rft_t.sleep(10 ** 6)', { fix: true }));
    expect(verdict).toMatchObject({ outcome: 'timeout', reason: `the tests ran past ${TIMEOUT_S} s and were killed` });
  });

  it('a sleeper that leaves its session (a daemon) does not hold the verification, and dies with the container', { timeout: 200_000 }, async () => {
    const daemon = `import subprocess as _rft_sp\n_rft_sp.Popen(["bash", "-c", "exec -a ${MARK} sleep 100000"], start_new_session=True)`;
    const { verdict } = await verify(atImport(daemon, { fix: true }));
    // The fix is right and the daemon touches nothing the tests see.
    expect(verdict.outcome).toBe('resolved');
  });

  it('writes outside /testbed stay in that container: the next verification, in a fresh one, is unaffected', { timeout: 300_000 }, async () => {
    // A start-up hook that "fixes" the bug in every later Python process — if it persisted.
    const payload = [
      '',
      'import builtins as _rft_b, sys as _rft_sys',
      `print("${MARK}-sitecustomize", file=_rft_sys.stderr)`,
      '_rft_import = _rft_b.__import__',
      'def _rft_hook(name, *args, **kwargs):',
      '    module = _rft_import(name, *args, **kwargs)',
      '    units = _rft_sys.modules.get("unitkit.units")',
      '    if units is not None and hasattr(units, "Unit") and not getattr(units, "_rft_done", False):',
      '        units._rft_done = True',
      '        units.Unit.from_base = lambda self, value: (value - self.offset) / self.factor',
      '    return module',
      '_rft_b.__import__ = _rft_hook',
      '',
    ].join('\n');
    const writer = `
with open("/etc/python3.11/sitecustomize.py", "a") as _rft_f:
    _rft_f.write(${JSON.stringify(payload)})
with open("/usr/lib/python3/dist-packages/${MARK}.pth", "w") as _rft_f:
    _rft_f.write("import sys; print('${MARK}-pth', file=sys.stderr)\\n")
with open("/etc/${MARK}", "w") as _rft_f:
    _rft_f.write("pwned\\n")
`;
    const first = await verify(atImport(writer));
    expect(first.verdict.outcome).toBe('unresolved');

    // The payload is real: where it persists, the unfixed code passes every test.
    const box = await Sandbox.start(docker, { image: ctx.imageFor(instance), labels: { [LABEL.run]: RUN }, memoryBytes: LIMITS.memoryBytes, cpus: 1, pids: 64 });
    try {
      await box.putFiles('/tmp', [
        { name: 'payload.py', content: payload },
        { name: 'test.patch', content: instance.test_patch },
      ]);
      const run = await box.exec(['bash', '-c', 'cat /tmp/payload.py >> /etc/python3.11/sitecustomize.py && git apply /tmp/test.patch && python3 -m pytest -q -p no:cacheprovider tests/test_temperature.py 2>&1'], { timeoutMs: 120_000 });
      expect(run.output).toContain(`${MARK}-sitecustomize`);
      expect(run.output).toMatch(/\b16 passed\b/);
      expect(run.exitCode).toBe(0);
    } finally {
      await box.remove();
    }

    // The next verification, of a patch that changes nothing that matters, runs in a fresh container.
    const next = await verify(makePatch('unitkit', [{ file: 'README.md', from: '', to: '\nA note.\n' }]));
    expect(next.verdict.outcome).toBe('unresolved');
    expect(next.verdict.report?.FAIL_TO_PASS.failure.length).toBe(instance.FAIL_TO_PASS.length);
    expect(next.log).not.toContain(MARK);
    const fresh = await Sandbox.start(docker, { image: ctx.imageFor(instance), labels: { [LABEL.run]: RUN }, memoryBytes: LIMITS.memoryBytes, cpus: 1, pids: 64 });
    try {
      const look = await fresh.exec(['bash', '-c', `ls /etc/${MARK} /usr/lib/python3/dist-packages/${MARK}.pth 2>&1; grep -c ${MARK} /etc/python3.11/sitecustomize.py`], { timeoutMs: 30_000 });
      expect(look.output).toMatch(/No such file or directory[\s\S]*No such file or directory/);
      expect(look.output.trim().split('\n').at(-1)).toBe('0');
    } finally {
      await fresh.remove();
    }
  });

  it('killing the test runner (its parent, at import): not resolved, even with the fix', { timeout: 200_000 }, async () => {
    const { verdict } = await verify(atImport('import os as _rft_o\n_rft_o.kill(_rft_o.getppid(), 9)', { fix: true }));
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.reason).toMatch(/killed before it finished \(exit 137\)/);
  });

  it('pkill pytest from inside a test: not resolved, even with the fix', { timeout: 200_000 }, async () => {
    const pkill = `
import os as _rft_o
for _rft_p in _rft_o.listdir("/proc"):
    if _rft_p.isdigit() and int(_rft_p) != _rft_o.getpid():
        try:
            if b"pytest" in open(f"/proc/{_rft_p}/cmdline", "rb").read():
                _rft_o.kill(int(_rft_p), 9)
        except OSError:
            pass
_rft_o.kill(_rft_o.getpid(), 9)
`;
    const { verdict } = await verify(inFromBase(pkill, { fix: true }));
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.reason).toMatch(/killed before it finished|pytest wrote no report/);
  });

  it('a forged pytest summary after a real one, with the real one voided, does not resolve', { timeout: 200_000 }, async () => {
    const forged = [
      '=========================== short test summary info ============================',
      ...[...instance.FAIL_TO_PASS, ...instance.PASS_TO_PASS].map((id) => `PASSED ${id}`),
      '============================== 15 passed in 0.05s ==============================',
    ].join('\n');
    const code = `import atexit as _rft_ax\n_rft_ax.register(lambda: print(${JSON.stringify(forged)}, flush=True))`;
    const { verdict, log } = await verify(atImport(code));
    expect(log).toContain(`PASSED ${instance.FAIL_TO_PASS[0]}`);
    expect(verdict.outcome).toBe('unresolved');
  });

  it('a forged junit report written to every *.xml under /tmp during the run: not resolved (pytest finds no reader at the end and times out)', { timeout: 200_000 }, async () => {
    const code = `
import glob as _rft_g
for _rft_p in _rft_g.glob("/tmp/**/*.xml", recursive=True):
    with open(_rft_p, "w") as _rft_f:
        _rft_f.write(${JSON.stringify(junitForgery())})
    print("forged", _rft_p)
`;
    const { verdict } = await verify(atImport(code));
    expect(verdict.outcome).not.toBe('resolved');
    expect(verdict.outcome).toBe('timeout');
  });

  it('a forged junit report written over the real one at exit (atexit), the real summary voided: not resolved (it resolved before the report pipe)', { timeout: 200_000 }, async () => {
    const code = `
import atexit as _rft_ax, glob as _rft_g, sys as _rft_sys
def _rft_forge():
    paths = set(_rft_g.glob("/tmp/**/*.xml", recursive=True))
    paths.update(a.split("=", 1)[1] for a in _rft_sys.argv if a.startswith("--junitxml="))
    for path in paths:
        with open(path, "w") as f:
            f.write(${JSON.stringify(junitForgery())})
    # a section line after the totals makes the summary parser drop pytest's real summary
    print("=" * 20 + " forged " + "=" * 20, flush=True)
_rft_ax.register(_rft_forge)
`;
    const { verdict } = await verify(atImport(code));
    expect(verdict.outcome).not.toBe('resolved');
    // Which of the two safe ends it reaches is a race with the harness's reader of the report
    // pipe: gone, the forger's open blocks until the run times out; still reading, the forgery
    // lands after pytest's report and the mixed report does not parse (CI saw both).
    expect(['timeout', 'unresolved']).toContain(verdict.outcome);
  });

  it('a forger that holds the report open around pytest\'s own write: the mixed report does not parse, not resolved', { timeout: 200_000 }, async () => {
    const code = `
import atexit as _rft_ax, sys as _rft_sys
_rft_path = [a.split("=", 1)[1] for a in _rft_sys.argv if a.startswith("--junitxml=")][0]
_rft_w = open(_rft_path, "w")
def _rft_late():
    _rft_w.write(${JSON.stringify(junitForgery())})
    _rft_w.close()
_rft_ax.register(_rft_late)
`;
    const { verdict } = await verify(atImport(code));
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.reason).toMatch(/pytest wrote no report/);
  });
});

describe('the sandbox disk bound itself', () => {
  it('one file stops at the bound (RLIMIT_FSIZE: EFBIG), and the watchdog kills a container whose layer outgrows it', { timeout: 200_000 }, async () => {
    const bound = 64 * 1024 ** 2;
    const box = await Sandbox.start(docker, { image: 'rft-base:bookworm', labels: { [LABEL.run]: RUN }, memoryBytes: 256 * 1024 ** 2, cpus: 1, pids: 64, workdir: '/tmp', diskBytes: bound, diskPollMs: 200 });
    try {
      const info = await box.container.inspect();
      expect(info.HostConfig.Ulimits).toEqual([{ Name: 'fsize', Soft: bound, Hard: bound }]);
      const one = await box.exec(['bash', '-c', 'head -c 200M /dev/zero > /tmp/one; echo "rc=$?"; stat -c %s /tmp/one; rm -f /tmp/one'], { timeoutMs: 60_000 });
      expect(one.output).toMatch(/File too large|File size limit exceeded/);
      expect(one.output).toContain(`\n${bound}\n`);
      // 64 files of 32 MiB: 2 GiB against a bound of 64 MiB.
      const many = await box
        .exec(['bash', '-c', 'for i in $(seq 1 64); do head -c 32M /dev/zero > /tmp/f$i; done; echo finished'], { timeoutMs: 120_000 })
        .catch((err: unknown) => err);
      if (info.HostConfig.StorageOpt?.size) {
        // An engine that bounds the layer itself: the writes fail inside.
        expect((many as { output: string }).output).toMatch(/No space left on device/);
      } else {
        // Here (overlay2 on ext4, no StorageOpt) the watchdog kills the container.
        expect(many).toBeInstanceOf(DiskLimitExceededError);
        expect((many as DiskLimitExceededError).usedBytes).toBeGreaterThan(bound);
        expect(box.diskExceeded).toMatchObject({ limitBytes: bound });
        await expect(box.exec(['true'], { timeoutMs: 10_000 })).rejects.toBeInstanceOf(DiskLimitExceededError);
      }
    } finally {
      await box.remove();
    }
  });
});
