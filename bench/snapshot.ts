/**
 * A repository snapshot's first read (cache miss), side by side in one run, each variant in its
 * own process so that its peak RSS is its own:
 *   before: the container's archive read whole into memory, written to the cache, then every
 *           file of it collected (large data files included) before the text files are kept;
 *   after:  takeSnapshot as rft does it now: the archive streamed into the cache file, files
 *           over 1 MB passed over unread.
 * Trees: the Django 3.2 fixture image (a real repository, ~38 MB archive), and the same with
 * three 64 MB data files committed (repositories that track datasets or binaries).
 *
 *   node --expose-gc dist-bench/bench/snapshot.js
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { takeSnapshot } from '../src/agent/snapshot.js';
import { filesOfTar } from '../src/sandbox/archive.js';
import { LABEL, Sandbox } from '../src/sandbox/container.js';
import { connectEngine } from '../src/sandbox/engine.js';
import { writeFileAtomic } from '../src/store/atomic.js';

const DJANGO = 'rft-real/sweb.eval.x86_64.django__django-90001:latest';
const WITH_DATA = 'rft-bench/django-with-data:latest';
const LABELS = { [LABEL.run]: `bench-snapshot-${process.pid}` };

/** The old first read: the whole archive in one Buffer, then every file of it. */
async function before(image: string, cacheDir: string): Promise<number> {
  const docker = await connectEngine();
  const box = await Sandbox.start(docker, { image, labels: LABELS, memoryBytes: 512 * 1024 ** 2, cpus: 1, pids: 64 });
  const cached = path.join(cacheDir, 'snapshot.tar');
  try {
    const made = await box.exec(['git', '-C', '/testbed', 'archive', '--format=tar', '-o', '/tmp/rft-snapshot.tar', 'HEAD'], { timeoutMs: 300_000 });
    if (made.exitCode !== 0) throw new Error(made.output);
    const file = await box.readFile('/tmp/rft-snapshot.tar', 1024 ** 3);
    writeFileAtomic(cached, file!);
  } finally {
    await box.remove();
  }
  const files = await filesOfTar(createReadStream(cached), 1024 ** 3);
  // As the old takeSnapshot did: the small text files decoded (lossily) into the snapshot's map.
  const kept = new Map<string, string>();
  for (const [name, b] of files) if (b.length <= 1024 * 1024 && !b.includes(0)) kept.set(name, b.toString('utf8'));
  return kept.size;
}

async function after(image: string, cacheDir: string): Promise<number> {
  const snapshot = await takeSnapshot(await connectEngine(), image, { cacheDir, labels: LABELS });
  return snapshot.files.size;
}

async function child(variant: string, image: string): Promise<void> {
  const cacheDir = mkdtempSync(path.join(tmpdir(), 'rft-bench-snap-'));
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const started = performance.now();
  const files = await (variant === 'before' ? before : after)(image, cacheDir);
  const ms = performance.now() - started;
  clearInterval(timer);
  rmSync(cacheDir, { recursive: true, force: true });
  console.log(JSON.stringify({ files, seconds: +(ms / 1000).toFixed(2), peak_rss_mb: Math.round(Math.max(peak, process.memoryUsage.rss()) / 2 ** 20) }));
}

/** Django plus three 64 MB files of random bytes, committed at HEAD. */
async function ensureDataImage(): Promise<void> {
  const docker = await connectEngine();
  const box = await Sandbox.start(docker, { image: DJANGO, labels: LABELS, memoryBytes: 512 * 1024 ** 2, cpus: 1, pids: 64 });
  try {
    const script = 'mkdir -p /testbed/data && for i in 1 2 3; do head -c 67108864 /dev/urandom > /testbed/data/blob$i.bin; done && git -C /testbed add data && git -C /testbed -c user.name=b -c user.email=b@b commit -qm data';
    const made = await box.exec(['sh', '-c', script], { timeoutMs: 300_000 });
    if (made.exitCode !== 0) throw new Error(made.output);
    const [repo, tag] = WITH_DATA.split(':');
    await box.container.commit({ repo, tag });
  } finally {
    await box.remove();
  }
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--child');
  if (at >= 0) return child(process.argv[at + 1]!, process.argv[at + 2]!);
  await ensureDataImage();
  const self = fileURLToPath(import.meta.url);
  console.log('| tree | variant | files kept | seconds | peak RSS MB |');
  console.log('|---|---|---|---|---|');
  const ratios: string[] = [];
  try {
    for (const [tree, image] of [['django 3.2', DJANGO], ['django + 3 × 64 MB data', WITH_DATA]] as const) {
      const rows: Record<string, { files: number; seconds: number; peak_rss_mb: number }> = {};
      for (const variant of ['before', 'after']) {
        const out = execFileSync(process.execPath, [self, '--child', variant, image], { encoding: 'utf8', maxBuffer: 1 << 20 });
        rows[variant] = JSON.parse(out.trim().split('\n').pop()!);
        const r = rows[variant]!;
        console.log(`| ${tree} | ${variant} | ${r.files} | ${r.seconds} | ${r.peak_rss_mb} |`);
      }
      ratios.push(`${tree}: peak RSS before/after ${(rows.before!.peak_rss_mb / rows.after!.peak_rss_mb).toFixed(2)}×`);
    }
  } finally {
    await (await connectEngine()).getImage(WITH_DATA).remove({ force: true }).catch(() => {});
  }
  for (const line of ratios) console.log(line);
}

await main();
