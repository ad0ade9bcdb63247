import type { CommandModule } from 'yargs';

interface WorkerArgs {
  run: string;
  iteration: number;
  phase: string;
  shard: number;
  shards: number;
  model: string;
  'base-url': string[];
}

/**
 * `rft worker`: one shard of an iteration's sampling + verification, as a Slurm array task runs
 * it (the coordinator writes the command into iter-<k>/shards/job.sh) or as a user may run it by
 * hand. Exit 0: the shard is done; 3: something is left to retry (run it again).
 */
export const workerCommand: CommandModule<object, WorkerArgs> = {
  command: 'worker',
  describe: "Sample and verify one shard of a run's iteration on this machine's Docker engine (what each Slurm array task runs)",
  builder: (y) =>
    y
      .option('run', { type: 'string', demandOption: true, describe: 'the run directory (on the filesystem the coordinator shares)' })
      .option('iteration', { type: 'number', demandOption: true, describe: 'the iteration whose instances to sample' })
      .option('phase', { type: 'string', choices: ['sample'], default: 'sample', describe: 'the phase (sampling + verification)' })
      .option('shard', { type: 'number', demandOption: true, describe: 'this shard: instances j with j mod shards = shard' })
      .option('shards', { type: 'number', demandOption: true, describe: 'how many shards the iteration is split into' })
      .option('model', { type: 'string', demandOption: true, describe: 'the model to sample' })
      .option('base-url', { type: 'string', array: true, demandOption: true, describe: 'where the model answers (repeat for replicas)' })
      .check((a) => {
        if (!Number.isInteger(a.shards) || a.shards < 1) throw new Error('--shards must be a whole number ≥ 1');
        if (!Number.isInteger(a.shard) || a.shard < 0 || a.shard >= a.shards) throw new Error(`--shard must be a whole number from 0 to ${a.shards - 1}`);
        if (!Number.isInteger(a.iteration) || a.iteration < 0) throw new Error('--iteration must be a whole number ≥ 0');
        return true;
      }),
  handler: async (args) => {
    const { runWorker } = await import('../cluster/worker.js');
    let stopping = false;
    // scancel, preemption and the time limit send SIGTERM: no new work starts; what is recorded stays.
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(143);
      stopping = true;
      console.error(`rft worker: ${signal}: stopping; what is recorded stays, a resubmission does the rest`);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    const log = (m: string) => console.error(`[${new Date().toISOString()}] ${m}`);
    const result = await runWorker({
      runDir: args.run,
      iteration: args.iteration,
      shard: args.shard,
      shards: args.shards,
      model: args.model,
      baseUrls: args['base-url'],
      log,
      warn: (m) => log(`warning: ${m}`),
      stopping: () => stopping,
    });
    process.exitCode = result.complete ? 0 : 3;
  },
};
