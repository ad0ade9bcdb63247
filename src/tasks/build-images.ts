import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import lodash from 'lodash';
import type { FileEntry } from '../sandbox/archive.js';
import { buildImage, imageExists, tagImage } from '../sandbox/images.js';
import { imageNameFor } from './image-name.js';
import type { Instance } from './instance.js';

/** What never belongs in a task image's repository: caches a host-side test run leaves behind. */
/** The base image of the bundled tasks' system layout (scripts/build-base-image.sh). */
export const DEFAULT_BASE_IMAGE = 'rft-base:bookworm';

const SKIPPED_NAMES = new Set(['.git', '__pycache__', '.pytest_cache', '.mypy_cache']);

/**
 * The commit identity every bundled base commit is made with, so the same tree gives the same sha
 * on the host (test/fixtures/minigym/make-tasks.mjs, test/helpers/realrunner.ts) and in the image.
 */
export const COMMIT_ENV = {
  GIT_AUTHOR_NAME: 'rft',
  GIT_AUTHOR_EMAIL: 'rft@localhost',
  GIT_COMMITTER_NAME: 'rft',
  GIT_COMMITTER_EMAIL: 'rft@localhost',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};
/** The git settings of that commit: no line-ending or mode rewriting, no signing. */
export const COMMIT_GIT_FLAGS = ['-c', 'core.autocrlf=false', '-c', 'core.filemode=true', '-c', 'commit.gpgsign=false'];

export interface BuildImagesOptions {
  docker: Docker;
  instances: readonly Instance[];
  /** Folder holding one source tree per repository, named after the part of `repo` after the slash. */
  reposDir: string;
  /** Where an instance's source tree is, when not `<reposDir>/<name>` (several trees of one repository). */
  sourceDirFor?: (instance: Instance) => string;
  baseImage: string;
  imageTemplate: string;
  force?: boolean;
  log?: (line: string) => void;
}

export interface BuiltImage {
  instance_id: string;
  image: string;
  status: 'exists' | 'built';
}

/**
 * Builds `sweb.eval.x86_64.<id>`-style images for task instances whose repositories are local
 * source trees (the bundled task set): one image per (repository, base commit), with the
 * repository committed at /testbed, then one tag per instance. Existing images are skipped.
 */
export async function buildTaskImages(options: BuildImagesOptions): Promise<BuiltImage[]> {
  const { docker, instances, reposDir, baseImage, imageTemplate, force = false, log = () => {} } = options;
  const sourceDirFor = options.sourceDirFor ?? ((instance: Instance) => repoSourceDir(reposDir, instance.repo));
  if (!(await imageExists(docker, baseImage))) {
    throw new Error(`base image ${baseImage} is missing; build it with: bash scripts/build-base-image.sh`);
  }
  const results: BuiltImage[] = [];
  const byBase = lodash.groupBy(instances, (i) => `${i.repo}@${i.base_commit}`);
  for (const group of Object.values(byBase)) {
    const first = group[0]!;
    const wanted = group.map((instance) => ({ instance, image: imageNameFor(instance.instance_id, imageTemplate) }));
    const missing = [];
    for (const entry of wanted) {
      if (!force && (await imageExists(docker, entry.image))) results.push({ instance_id: entry.instance.instance_id, image: entry.image, status: 'exists' });
      else missing.push(entry);
    }
    if (missing.length === 0) continue;
    // One intermediate image per (repository, base commit, base image): the same tree on another
    // base (another image layout) is another image.
    const onBase = baseImage === DEFAULT_BASE_IMAGE ? '' : `-${repoSlug(baseImage).replace(/:/g, '-')}`;
    const repoImage = `rft-repo/${repoSlug(first.repo)}:${first.base_commit.slice(0, 12)}${onBase}`;
    if (force || !(await imageExists(docker, repoImage))) {
      log(`building ${repoImage} (${first.repo} at ${first.base_commit.slice(0, 12)})`);
      await buildImage(docker, {
        tag: repoImage,
        context: repoContext(sourceDirFor(first), baseImage, first.base_commit),
        labels: { 'rft.repo': first.repo, 'rft.base_commit': first.base_commit },
      });
    }
    for (const entry of missing) {
      await tagImage(docker, repoImage, entry.image);
      log(`built ${entry.image}`);
      results.push({ instance_id: entry.instance.instance_id, image: entry.image, status: 'built' });
    }
  }
  return lodash.sortBy(results, (r) => r.instance_id);
}

function repoSlug(repo: string): string {
  return repo.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
}

function repoSourceDir(reposDir: string, repo: string): string {
  const dir = path.join(reposDir, repo.split('/').pop()!);
  try {
    if (statSync(dir).isDirectory()) return dir;
  } catch {
    // reported below
  }
  throw new Error(`no source tree for ${repo}: expected a folder ${dir} (pass --repos-dir to point elsewhere)`);
}

function repoContext(sourceDir: string, baseImage: string, baseCommit: string): FileEntry[] {
  const env = Object.entries(COMMIT_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const dockerfile = [
    `FROM ${baseImage}`,
    'COPY repo/ /testbed/',
    'WORKDIR /testbed',
    `RUN git init -q -b main && git add -A && ${env} git ${COMMIT_GIT_FLAGS.join(' ')} commit -q --no-verify -m base \\`,
    `    && test "$(git rev-parse HEAD)" = "${baseCommit}" \\`,
    `    || { echo "base commit mismatch: the tree commits as $(git rev-parse HEAD), the instance says ${baseCommit}"; exit 1; }`,
    '',
  ].join('\n');
  return [{ name: 'Dockerfile', content: dockerfile }, ...treeFiles(sourceDir, 'repo')];
}

function treeFiles(dir: string, prefix: string): FileEntry[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => !SKIPPED_NAMES.has(entry.name) && !entry.name.endsWith('.pyc'))
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      const name = `${prefix}/${entry.name}`;
      if (entry.isDirectory()) return treeFiles(full, name);
      if (!entry.isFile()) return [];
      return [{ name, content: readFileSync(full), mode: statSync(full).mode & 0o777 }];
    });
}
