import { connectEngine } from '../src/sandbox/engine.js';
import { ensureLayoutImages, ensureMinigymImages } from './helpers/images.js';

/**
 * Once per test run: the bundled task images, the conda-layout ones and the real-runner ones
 * (Django and sympy from Debian's source packages, downloaded once and cached), so parallel test
 * files never race to build them.
 */
export default async function setup(): Promise<void> {
  const docker = await connectEngine();
  await ensureMinigymImages(docker);
  const started = Date.now();
  await ensureLayoutImages(docker);
  process.stderr.write(`[global-setup] layout and real-runner fixtures ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
