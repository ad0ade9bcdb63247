import type Docker from 'dockerode';
import path from 'node:path';
import { buildTaskImages } from '../../src/tasks/build-images.js';
import { BUNDLED_TEMPLATE, CONDA_BASE, ensureCondaBase, SYSTEM_BASE } from './layouts.js';
import { MINIGYM_DIR, minigymInstances } from './minigym.js';
import { ensureRealRunnerImages, ensureSympyPre16Images } from './realrunner.js';

/** Builds the bundled task images if they are missing (cached by the engine across runs). */
export async function ensureMinigymImages(docker: Docker): Promise<void> {
  await buildTaskImages({
    docker,
    instances: minigymInstances(),
    reposDir: path.join(MINIGYM_DIR, 'repos'),
    baseImage: SYSTEM_BASE,
    imageTemplate: BUNDLED_TEMPLATE.system,
  });
}

/** The bundled tasks again, in the conda layout (test/fixtures/layouts): `rft-conda/sweb.eval.x86_64.*`. */
export async function ensureCondaMinigymImages(docker: Docker): Promise<void> {
  await ensureCondaBase(docker);
  await buildTaskImages({
    docker,
    instances: minigymInstances(),
    reposDir: path.join(MINIGYM_DIR, 'repos'),
    baseImage: CONDA_BASE,
    imageTemplate: BUNDLED_TEMPLATE.conda,
  });
}

/** Every fixture image of the image-layout and real-runner tests (sources downloaded once, cached). */
export async function ensureLayoutImages(docker: Docker): Promise<void> {
  await ensureCondaMinigymImages(docker);
  await ensureRealRunnerImages(docker);
  await ensureSympyPre16Images(docker);
}
