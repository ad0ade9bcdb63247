import type Docker from 'dockerode';
import { LABEL, Sandbox } from '../sandbox/container.js';
import { COMMIT_ENV } from '../tasks/build-images.js';
import { shQuote } from '../verify/eval-script.js';
import type { FileEdit } from './candidate.js';
import type { RepoView } from './strategy.js';

/**
 * The repository of one environment in a container that stays up while many candidates are tried
 * in turn (the affordable way on a small machine: one container start per environment, not per
 * candidate). Edits are written through `cat >` so each file keeps its mode, and the byte-code
 * cache of every edited file is removed each time: a one-character mutation keeps the file's size
 * and may keep its mtime second, and Python would then load the other version's .pyc.
 */
export interface Limits {
  memoryBytes: number;
  cpus: number;
  pids: number;
}

const STAGE = '/tmp/rft-synth/stage';
const WORKDIR = '/testbed';

export class Workspace {
  private constructor(readonly box: Sandbox) {}

  static async open(docker: Docker, image: string, limits: Limits, labels: Record<string, string>): Promise<Workspace> {
    return new Workspace(await Sandbox.start(docker, { image, labels: { ...labels, [LABEL.purpose]: 'synth' }, ...limits, diskBytes: 4 * 1024 ** 3 }));
  }

  /** Text of a repository file as it is now in the container. */
  async readFile(path: string): Promise<string | null> {
    const buffer = await this.box.readFile(`${WORKDIR}/${path}`);
    return buffer === null ? null : buffer.toString('utf8');
  }

  /** A read-only view for strategies; reads go through a cache so they never see a candidate's edits. */
  view(): RepoView {
    const cache = new Map<string, Promise<string>>();
    return {
      readFile: (path) => {
        let text = cache.get(path);
        if (!text) {
          text = this.readFile(path).then((t) => {
            if (t === null) throw new Error(`${path}: no such file in the repository`);
            return t;
          });
          cache.set(path, text);
        }
        return text;
      },
      git: async (args) => {
        const run = await this.box.exec(['git', '-C', WORKDIR, ...args], { timeoutMs: 120_000, maxOutputBytes: 32 * 1024 * 1024 });
        if (run.exitCode !== 0) throw new Error(`git ${args.join(' ')} failed (exit ${run.exitCode}): ${run.output.slice(0, 400)}`);
        return run.output;
      },
    };
  }

  /** Which of `paths` exist in the repository. */
  async existing(paths: readonly string[]): Promise<string[]> {
    if (paths.length === 0) return [];
    const run = await this.box.exec(['bash', '-c', 'cd /testbed && for f in "$@"; do [ -e "$f" ] && printf "%s\\n" "$f"; done; true', 'rft', ...paths], { timeoutMs: 60_000 });
    const found = new Set(run.output.split('\n').filter((l) => l !== ''));
    return paths.filter((p) => found.has(p));
  }

  /** Writes each edit's `side` into the repository (after: the bug; before: back to the base). */
  async write(edits: readonly FileEdit[], side: 'before' | 'after'): Promise<void> {
    await this.box.putFiles('/', edits.map((edit, i) => ({ name: `${STAGE.slice(1)}/${i}`, content: edit[side], mode: 0o644 })));
    const script = edits
      .map((edit, i) => {
        const file = shQuote(`${WORKDIR}/${edit.path}`);
        const dir = edit.path.includes('/') ? edit.path.slice(0, edit.path.lastIndexOf('/')) : '.';
        const stem = edit.path.slice(edit.path.lastIndexOf('/') + 1).replace(/\.py$/, '');
        return `cat ${STAGE}/${i} > ${file} && rm -f ${shQuote(`${WORKDIR}/${dir}/__pycache__/${stem}`)}.*.pyc`;
      })
      .join(' && ');
    const run = await this.box.exec(['bash', '-c', `${script} && rm -rf ${STAGE}`], { timeoutMs: 60_000 });
    if (run.exitCode !== 0) throw new Error(`writing the candidate's files failed: ${run.output.slice(0, 400)}`);
  }

  /**
   * Commits the edits (the bug) in /testbed with rft's fixed identity and dates, so the same bug
   * on the same base gets the same hash; returns it. Only the edited paths are committed, without
   * mode changes: SWE-Gym images leave install-time edits and `chmod -R 777` modes uncommitted.
   */
  async commit(edits: readonly FileEdit[], message: string): Promise<string> {
    await this.write(edits, 'after');
    const paths = edits.map((e) => e.path);
    const git = 'git -c core.autocrlf=false -c core.filemode=false -c commit.gpgsign=false';
    const run = await this.box.exec(
      ['bash', '-c', `cd /testbed && ${git} add -- "$@" && ${git} commit -q --no-verify -m ${shQuote(message)} -- "$@" && git rev-parse HEAD`, 'rft', ...paths],
      { timeoutMs: 120_000, env: COMMIT_ENV },
    );
    const hash = run.output.trim().split('\n').pop() ?? '';
    if (run.exitCode !== 0 || !/^[0-9a-f]{40}$/.test(hash)) throw new Error(`committing the bug failed: ${run.output.slice(0, 400)}`);
    return hash;
  }

  /** Saves the container as an image (the task's image): the source image's command and labels, none of the container's rft labels. */
  async saveAs(image: string, sourceImage: string, extraLabels: Record<string, string>): Promise<void> {
    await this.box.exec(['rm', '-rf', '/tmp/rft-synth'], { timeoutMs: 30_000 });
    const info = await this.box.docker.getImage(sourceImage).inspect();
    const cleared = Object.fromEntries(Object.values(LABEL).map((key) => [key, '']));
    const colon = image.lastIndexOf(':');
    // docker-modem sends `_query` as the query string and `_body` as the container config to apply.
    await this.box.container.commit({
      _query: { container: this.box.id, repo: image.slice(0, colon), tag: image.slice(colon + 1), pause: true },
      _body: { Cmd: info.Config?.Cmd ?? null, Labels: { ...(info.Config?.Labels ?? {}), ...cleared, ...extraLabels } },
    });
  }

  async close(): Promise<void> {
    await this.box.remove().catch(() => {});
  }
}
