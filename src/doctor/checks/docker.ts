import type { DoctorContext } from '../context.js';
import { fail, ok, warn, type CheckResult } from '../record.js';

/**
 * Each sandbox.docker engine answers a ping. The first engine also takes snapshots, so it must
 * answer; another one that does not only loses its share of containers (the pool works around it).
 */
export async function checkDocker(ctx: DoctorContext): Promise<CheckResult[]> {
  const engines = await ctx.engines();
  return engines.map((engine, i) => {
    const what = `Docker engine ${engine.url}`;
    if (engine.error === null) return ok('docker', what, `reachable${engine.version ? ` (Docker ${engine.version})` : ''}`);
    const fix = engine.url.startsWith('unix://')
      ? 'start Docker on this machine (`bash scripts/setup-docker.sh` as root), or point sandbox.docker at a running engine'
      : 'start the engine there or fix sandbox.docker[].url (tcp://host:2375, ssh://user@host)';
    return i === 0 || engines.every((e) => e.error !== null)
      ? fail('docker', what, `no answer: ${engine.error}`, fix)
      : warn('docker', what, `no answer: ${engine.error}; containers go to the other engines`, fix);
  });
}
