import type Docker from 'dockerode';
import { buildTaskImages } from '../../src/tasks/build-images.js';
import { MINIGYM_DIR, minigymInstances } from './minigym.js';
import path from 'node:path';

/** Builds the bundled task images if they are missing (cached by the engine across runs). */
export async function ensureMinigymImages(docker: Docker): Promise<void> {
  await buildTaskImages({
    docker,
    instances: minigymInstances(),
    reposDir: path.join(MINIGYM_DIR, 'repos'),
    baseImage: 'rft-base:bookworm',
    imageTemplate: 'swebench',
  });
}
