import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { canonicalJson, sha256Hex } from '../util/canonical.js';
import { compareSources, type SftExample, type SftLine } from './examples.js';
import { DATASET_FILE, MANIFEST_FILE } from './files.js';
import { buildManifest, type DatasetManifest, type ManifestInput } from './manifest.js';

export { DATASET_FILE, MANIFEST_FILE } from './files.js';

/**
 * One JSONL line: keys sorted at every depth (canonical JSON), except inside `tools`, which keeps
 * the key order the agent sends it in (type, function: name, description, parameters as the
 * action's JSON Schema lists them), so a chat template renders the tool block of a training
 * example exactly as it renders it at sampling time. Both orders are fixed by the input, so the
 * same example always gives the same bytes. TRL's prompt-completion lines (train_on target) put
 * `prompt` and `completion` where the others put `messages`.
 */
export function serializeLine(line: SftLine): string {
  const body = 'messages' in line ? `"messages":${canonicalJson(line.messages)}` : `"completion":${canonicalJson(line.completion)},"prompt":${canonicalJson(line.prompt)}`;
  return line.tools === undefined ? `{${body}}` : `{${body},"tools":${JSON.stringify(line.tools)}}`;
}

/** train.jsonl's text: one line per example in (instance_id, iteration, sample_index, call_index) order. */
export function renderJsonl(examples: readonly SftExample[]): string {
  return [...examples]
    .sort((a, b) => compareSources(a.source, b.source))
    .map((example) => `${serializeLine(example.line)}\n`)
    .join('');
}

/**
 * Writes a dataset into `dir` (created if missing): train.jsonl, then manifest.json, each
 * atomically, so a manifest on disk always describes a whole train.jsonl beside it. Identical
 * input gives byte-identical files — no clock is read and nothing run-specific is written — so a resumed run
 * rebuilds exactly what an uninterrupted one wrote. Returns the manifest.
 */
export function writeDataset(dir: string, input: ManifestInput): DatasetManifest {
  const jsonl = renderJsonl(input.examples.examples);
  const bytes = Buffer.from(jsonl, 'utf8');
  const manifest = buildManifest(input, {
    name: DATASET_FILE,
    sha256: sha256Hex(bytes),
    bytes: bytes.length,
    lines: input.examples.examples.length,
  });
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, DATASET_FILE), bytes);
  writeFileAtomic(path.join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
