import type { Instance } from '../tasks/instance.js';

/**
 * What the real path knows of the SIMULATED policy (a test double in src/doubles/): the name its
 * verifier answers to, and the shape of a server rft starts for `policy.kind: simulated`. The
 * doubles import these; nothing here (nor anywhere on the real path) imports the doubles: the CLI
 * hands the loop a starter (src/cli/sim.ts startSimulatedPolicy).
 */

/** The model name under which the run's SIMULATED policy server also plays the SIMULATED verifier. */
export const SIM_VERIFIER_NAME = 'sim-verifier';

/** A SIMULATED policy server rft runs itself on 127.0.0.1 for the length of a loop. */
export interface SimulatedPolicyServer {
  /** Base URL, ending in /v1. */
  readonly url: string;
  /** Completion requests answered so far (tests count them). */
  completions(): number;
  close(): Promise<void>;
}

/** Starts one, reading the models the simulated trainer writes into `modelsDir` as they appear. */
export type StartSimulatedPolicy = (options: { modelsDir: string; tasks: readonly Instance[] }) => Promise<SimulatedPolicyServer>;
