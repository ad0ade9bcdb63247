import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import type { FileEntry } from '../../src/sandbox/archive.js';
import { buildImage, imageExists } from '../../src/sandbox/images.js';

/**
 * The two image layouts every fixture task is built in (test/fixtures/layouts/README.md):
 * `system` runs the tests with Debian's python as it is; `conda` looks like SWE-bench's and
 * SWE-Gym's images (env `testbed` under /opt/miniconda3, activated only from /root/.bashrc).
 * Image names carry the layout so the two never clobber each other, nor the bundled
 * `sweb.eval.x86_64.*` images other tests use.
 */
export type Layout = 'system' | 'conda';
export const LAYOUTS: readonly Layout[] = ['system', 'conda'];

export const SYSTEM_BASE = 'rft-base:bookworm';
export const CONDA_BASE = 'rft-conda-base:bookworm';
/** Bases with the real runners' libraries (Django's, sympy's, mypy's) installed, per layout. */
export const RUNNER_BASE: Record<Layout, string> = { system: 'rft-runner-base:bookworm', conda: 'rft-runner-conda-base:bookworm' };

/** Image name templates of the fixture tasks per layout (the system-layout bundled tasks keep `swebench`). */
export const BUNDLED_TEMPLATE: Record<Layout, string> = { system: 'swebench', conda: 'rft-conda/sweb.eval.x86_64.{id_lower}' };
export const RUNNER_TEMPLATE: Record<Layout, string> = {
  system: 'rft-real/sweb.eval.x86_64.{id_lower}',
  conda: 'rft-real-conda/sweb.eval.x86_64.{id_lower}',
};

const LAYOUT_DIR = path.resolve(import.meta.dirname, '../fixtures/layouts');
const VENV = '/opt/miniconda3/envs/testbed';
const PATH_CONDA = '/opt/miniconda3/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The venv's site-packages: the system python is 3.11 in bookworm. */
const VENV_SITE = `${VENV}/lib/python3.11/site-packages`;
/** Everything Debian installed for python3 goes into the env, so only the activated env can import it. */
const MOVE_SYSTEM_PACKAGES = `cp -a /usr/lib/python3/dist-packages/. ${VENV_SITE}/ && rm -rf /usr/lib/python3/dist-packages/*`;

function filesUnder(dir: string, prefix: string): FileEntry[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    const name = `${prefix}/${entry.name}`;
    if (entry.isDirectory()) return filesUnder(full, name);
    return entry.isFile() ? [{ name, content: readFileSync(full), mode: statSync(full).mode & 0o777 }] : [];
  });
}

/** rft-conda-base:bookworm from rft-base:bookworm (no network: everything is in the base already). */
export async function ensureCondaBase(docker: Docker): Promise<string> {
  if (await imageExists(docker, CONDA_BASE)) return CONDA_BASE;
  const dockerfile = [
    `FROM ${SYSTEM_BASE}`,
    'COPY conda/ /opt/miniconda3/',
    'RUN set -e; \\',
    `    python3 -m venv --without-pip ${VENV}; \\`,
    `    ${MOVE_SYSTEM_PACKAGES}; \\`,
    '    ln -s /usr/bin/python3 /opt/miniconda3/bin/python; ln -s /usr/bin/python3 /opt/miniconda3/bin/python3; \\',
    "    echo 'source /opt/miniconda3/etc/profile.d/conda.sh && conda activate testbed' >> /root/.bashrc; \\",
    // The env's own `pytest` command, as pip would install it (the system one runs the system python).
    `    printf '#!${VENV}/bin/python\\nimport sys\\nfrom pytest import console_main\\nsys.exit(console_main())\\n' > ${VENV}/bin/pytest; chmod 755 ${VENV}/bin/pytest; \\`,
    "    if /usr/bin/python3 -c 'import pytest' 2>/dev/null; then echo 'the system python still imports pytest'; exit 1; fi; \\",
    `    ${VENV}/bin/python -m pytest --version`,
    `ENV PATH=${PATH_CONDA}`,
    '',
  ].join('\n');
  await buildImage(docker, {
    tag: CONDA_BASE,
    context: [{ name: 'Dockerfile', content: dockerfile }, ...filesUnder(path.join(LAYOUT_DIR, 'conda'), 'conda')],
    labels: { 'rft.fixture': 'conda-base' },
  });
  return CONDA_BASE;
}

/**
 * The base the real-runner tasks are built on: the layout's base plus Debian binary packages
 * (downloaded on the host by scripts/fetch-fixture-sources.sh, installed from the build context),
 * and /testbed on the import path the way an editable install puts it there. In the conda layout
 * the packages' files move into the env, so only the activated env can import them.
 */
export async function ensureRunnerBase(docker: Docker, layout: Layout, debsDir: string): Promise<string> {
  const tag = RUNNER_BASE[layout];
  if (await imageExists(docker, tag)) return tag;
  const site = layout === 'conda' ? VENV_SITE : '/usr/lib/python3/dist-packages';
  const debs = readdirSync(debsDir).filter((name) => name.endsWith('.deb') && !name.startsWith('python3-mypy_'));
  const dockerfile = [
    `FROM ${layout === 'conda' ? await ensureCondaBase(docker) : SYSTEM_BASE}`,
    'COPY debs/ /tmp/rft-debs/',
    'RUN set -e; \\',
    '    DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/rft-debs/*.deb >/dev/null; rm -rf /tmp/rft-debs; \\',
    ...(layout === 'conda' ? [`    ${MOVE_SYSTEM_PACKAGES}; \\`] : []),
    `    echo /testbed > ${site}/rft-testbed.pth`,
    '',
  ].join('\n');
  await buildImage(docker, {
    tag,
    context: [
      { name: 'Dockerfile', content: dockerfile },
      ...debs.map((name) => ({ name: `debs/${name}`, content: readFileSync(path.join(debsDir, name)) })),
    ],
    labels: { 'rft.fixture': `runner-base-${layout}` },
  });
  return tag;
}
