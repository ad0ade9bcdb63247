import type { CommandModule } from 'yargs';
import { readInstances } from '../tasks/read.js';
import { gradePredictions } from '../verify/grade-predictions.js';
import { loadPredictions } from '../verify/predictions.js';
import { parseInstanceIds, pickInstances, withInstanceIds } from './arguments.js';
import { verifyContextFrom, withSandboxOptions, type SandboxArgs } from './sandbox-options.js';

type VerifyArgs = SandboxArgs & { tasks: string; predictions: string; out: string; 'instance-ids'?: string[] };

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify',
  describe: 'Grade SWE-bench predictions ({instance_id, model_name_or_path, model_patch} lines) from any agent',
  builder: (y) =>
    withSandboxOptions(
      withInstanceIds(y, 'grade only their predictions (each must be in --tasks)')
        .option('tasks', { type: 'string', demandOption: true, describe: 'instance file (JSON/JSONL)' })
        .option('predictions', { type: 'string', demandOption: true, describe: 'predictions file (JSONL or JSON array)' })
        .option('out', { type: 'string', default: 'report.json', describe: 'run report; per-instance reports go to <out>.d/' }),
    ),
  handler: async (args) => {
    const ids = parseInstanceIds(args['instance-ids']);
    const instances = pickInstances(await readInstances(args.tasks), ids, args.tasks);
    const picked = new Set(instances.map((i) => i.instance_id));
    const predictions = loadPredictions(args.predictions).filter((p) => ids === null || picked.has(p.instance_id));
    const { ctx, specFor } = await verifyContextFrom(args, 'verify');
    const report = await gradePredictions({ ctx, instances, predictions, specFor, concurrency: args.concurrency, out: args.out });
    process.stdout.write(
      [
        `submitted ${report.submitted_instances}, completed ${report.completed_instances}, resolved ${report.resolved_instances}, ` +
          `unresolved ${report.unresolved_instances}, empty patch ${report.empty_patch_instances}, errors ${report.error_instances}`,
        ...(report.unknown_instance_ids.length > 0 ? [`ignored ${report.unknown_instance_ids.length} predictions for instances not in ${args.tasks}`] : []),
        `report: ${args.out} (per instance: ${args.out}.d/)`,
        '',
      ].join('\n'),
    );
    if (report.error_instances > 0) process.exitCode = 1;
  },
};
