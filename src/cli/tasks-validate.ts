import type { CommandModule } from 'yargs';
import { readInstances } from '../tasks/read.js';
import { validateTasks } from '../verify/validate.js';
import { parseInstanceIds, pickInstances, withInstanceIds } from './arguments.js';
import { verifyContextFrom, withSandboxOptions, type SandboxArgs } from './sandbox-options.js';

type ValidateArgs = SandboxArgs & { tasks: string; 'instance-ids'?: string[] };

export const tasksValidateCommand: CommandModule<object, ValidateArgs> = {
  command: 'validate <tasks>',
  describe: 'Check every task: its gold patch must resolve it and the unpatched repository must not',
  builder: (y) => withSandboxOptions(withInstanceIds(y, 'check only these tasks').positional('tasks', { type: 'string', demandOption: true, describe: 'instance file (JSON/JSONL)' })),
  handler: async (args) => {
    const instances = pickInstances(await readInstances(args.tasks), parseInstanceIds(args['instance-ids']), args.tasks);
    const { ctx, specFor } = await verifyContextFrom(args, 'validate');
    const rows = await validateTasks(ctx, instances, specFor, args.concurrency);
    const width = Math.max(11, ...rows.map((r) => r.instance_id.length));
    process.stdout.write(`${'instance_id'.padEnd(width)}  ${'gold'.padEnd(12)}  ${'no patch'.padEnd(12)}  ${'env'.padEnd(6)}  valid\n`);
    for (const r of rows) {
      const env = r.gold.python_env ?? '?';
      process.stdout.write(`${r.instance_id.padEnd(width)}  ${r.gold.outcome.padEnd(12)}  ${r.empty.outcome.padEnd(12)}  ${env.padEnd(6)}  ${r.valid ? 'yes' : `NO: ${r.problem}`}\n`);
      for (const note of r.notes) process.stdout.write(`${' '.repeat(width)}  note: ${note}\n`);
    }
    const invalid = rows.filter((r) => !r.valid).length;
    process.stdout.write(`${rows.length - invalid}/${rows.length} tasks valid\n`);
    const withJunk = rows.filter((r) => r.junk.FAIL_TO_PASS.length + r.junk.PASS_TO_PASS.length > 0).length;
    if (withJunk > 0) process.stdout.write(`${withJunk} tasks list ids no test run can produce; rft grades without them (see the notes)\n`);
    if (invalid > 0) process.exitCode = 1;
  },
};
