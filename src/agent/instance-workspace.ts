import type Docker from 'dockerode';
import { CodeIndex } from './code-index.js';
import { PythonSpanParser } from './python-spans.js';
import { takeSnapshot } from './snapshot.js';

/** What every sample of one instance shares: the repository snapshot, its code index and the parser. */
export interface PreparedInstance {
  image: string;
  files: ReadonlyMap<string, string>;
  index: CodeIndex;
  parser: PythonSpanParser;
}

let sharedParser: Promise<PythonSpanParser> | null = null;

/** The parser loads its grammar once per process. */
export function spanParser(): Promise<PythonSpanParser> {
  sharedParser ??= PythonSpanParser.create();
  return sharedParser;
}

export async function prepareInstance(docker: Docker, image: string, labels: Record<string, string> = {}): Promise<PreparedInstance> {
  const snapshot = await takeSnapshot(docker, image, { labels });
  const parser = await spanParser();
  return { image, files: snapshot.files, index: await CodeIndex.build(snapshot.files, parser), parser };
}
