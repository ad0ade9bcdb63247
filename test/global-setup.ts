import { connectEngine } from '../src/sandbox/engine.js';
import { ensureMinigymImages } from './helpers/images.js';

/** Once per test run: the bundled task images, so parallel test files never race to build them. */
export default async function setup(): Promise<void> {
  await ensureMinigymImages(await connectEngine());
}
