/** The files of an emitted dataset folder (a tiny module: status and show name them without loading the emitter). */
export const DATASET_FILE = 'train.jsonl';
export const MANIFEST_FILE = 'manifest.json';
