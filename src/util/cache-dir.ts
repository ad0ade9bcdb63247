import { homedir } from 'node:os';
import path from 'node:path';

/**
 * Where rft keeps what it can rebuild (repository snapshots, the code index's files): $RFT_CACHE_DIR
 * if set, else $XDG_CACHE_HOME/rft, else ~/.cache/rft. `sub` names one cache inside it.
 */
export function rftCacheDir(sub: string, env: NodeJS.ProcessEnv = process.env): string {
  const root = env.RFT_CACHE_DIR ? env.RFT_CACHE_DIR : path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'rft');
  return path.join(root, sub);
}
