import type Docker from 'dockerode';
import type { Recipe } from '../recipe/schema.js';
import { LABEL } from '../sandbox/container.js';
import { parseByteSize } from '../sandbox/limits.js';
import { imageNameFor } from '../tasks/image-name.js';
import type { Instance } from '../tasks/instance.js';
import type { VerifyContext } from '../verify/run.js';
import { buildEvalSpec, type EvalSpec } from '../verify/spec.js';
import { RUN_DIR_LABEL } from './gc.js';
import type { RolloutResources } from './rollout.js';

/** How a run names each instance's image and test spec and runs its containers: the loop and a shard worker share it. */
export interface RolloutContext {
  specFor: (instance: Instance) => EvalSpec;
  imageFor: (instance: Instance) => string;
  verifyContext: VerifyContext;
}

/** `train`: the train set's instances (the rest are eval's, with eval's image and Python settings). */
export function rolloutContext(recipe: Recipe, runDir: string, docker: Docker, train: readonly Instance[], extraLabels: Record<string, string> = {}): RolloutContext {
  const trainIds = new Set(train.map((i) => i.instance_id));
  const specs = new Map<string, EvalSpec>();
  const specFor = (instance: Instance): EvalSpec => {
    let spec = specs.get(instance.instance_id);
    if (!spec) {
      const set = trainIds.has(instance.instance_id) ? recipe.tasks.train : recipe.tasks.eval;
      spec = buildEvalSpec(instance, { timeout_s: recipe.sandbox.test_timeout_s, pythonEnv: set?.python_env ?? recipe.sandbox.python_env });
      specs.set(instance.instance_id, spec);
    }
    return spec;
  };
  const imageTemplate = (set: 'train' | 'eval') => recipe.tasks[set]?.image ?? recipe.sandbox.image;
  const imageFor = (instance: Instance) => imageNameFor(instance.instance_id, imageTemplate(trainIds.has(instance.instance_id) ? 'train' : 'eval'));
  const verifyContext: VerifyContext = {
    docker,
    imageFor,
    limits: { memoryBytes: parseByteSize(recipe.sandbox.memory), cpus: recipe.sandbox.cpus, pids: recipe.sandbox.pids },
    // The directory too: two runs may share a name, and `rft gc` reads the run's lock there.
    labels: { [LABEL.run]: recipe.name, [RUN_DIR_LABEL]: runDir, ...extraLabels },
  };
  return { specFor, imageFor, verifyContext };
}

/** The rollout settings the recipe fixes (concurrency, image handling, retries). */
export function rolloutSettings(recipe: Recipe): Pick<RolloutResources, 'llmConcurrency' | 'containerConcurrency' | 'instancesInFlight' | 'pullImages' | 'removeImagesAfterUse' | 'maxErrorAttempts'> {
  return {
    llmConcurrency: recipe.policy.concurrency,
    containerConcurrency: recipe.sandbox.concurrency,
    instancesInFlight: recipe.sampling.instances_in_flight,
    pullImages: true,
    removeImagesAfterUse: recipe.sandbox.image_policy === 'remove_after_use',
    maxErrorAttempts: recipe.sandbox.max_error_attempts,
  };
}
