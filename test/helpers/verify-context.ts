import type Docker from 'dockerode';
import { LABEL } from '../../src/sandbox/container.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { VerifyContext } from '../../src/verify/run.js';

/**
 * The verify context the Docker tests use for the bundled tasks: their swebench-layout images,
 * small limits (512 MiB, one CPU, 256 processes), every container labelled with the test's run
 * so that it can be found and reaped.
 */
export function bundledVerifyContext(docker: Docker, run: string, extra: Partial<VerifyContext> = {}): VerifyContext {
  return {
    docker,
    imageFor: (i) => imageNameFor(i.instance_id, 'swebench'),
    limits: { memoryBytes: 512 * 1024 ** 2, cpus: 1, pids: 256 },
    labels: { [LABEL.run]: run },
    ...extra,
  };
}
