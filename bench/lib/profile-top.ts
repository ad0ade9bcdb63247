/**
 * The top of a V8 CPU profile (`node --cpu-prof`): functions by self time and by inclusive time
 * (a function's samples with it anywhere on the stack, counted once per sample), as Markdown
 * tables for bench/RESULTS.md. `node profile-top.js <file.cpuprofile> [rows]`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-top.js <file.cpuprofile> [rows]');
const rows = Number(rowsArg ?? 15);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const label = (n: Node) => {
  const f = n.callFrame;
  const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
};
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const leaf = byId.get(id)!;
  self.set(label(leaf), (self.get(label(leaf)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const l = label(byId.get(at)!);
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
  }
});
const table = (title: string, m: Map<string, number>) => {
  const top = [...m].filter(([l]) => !/^\((root|program)\)/.test(l)).sort((a, b) => b[1] - a[1]).slice(0, rows);
  return [`| ${title} | s | share |`, '| --- | ---: | ---: |', ...top.map(([l, t]) => `| \`${l.replaceAll('|', '\\|').slice(0, 90)}\` | ${(t / 1e6).toFixed(1)} | ${((100 * t) / total).toFixed(1)}% |`)].join('\n');
};
console.log(`profile ${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled\n`);
console.log(table('self time', self));
console.log('');
console.log(table('inclusive time', inclusive));
