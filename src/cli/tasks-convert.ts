import type { CommandModule } from 'yargs';
import { readInstances } from '../tasks/read.js';
import { writeInstanceFile } from '../tasks/write.js';

interface ConvertArgs {
  tasks: string;
  out: string;
}

/** `rft tasks convert`: any task file (Parquet, JSON, JSONL, gzipped, a folder) to one checked JSONL file. */
export const tasksConvertCommand: CommandModule<object, ConvertArgs> = {
  command: 'convert <tasks>',
  describe: 'Check a task file or folder (Parquet, JSON, JSONL, .gz, a downloaded hub snapshot) and write it as one JSONL instance file',
  builder: (y) =>
    y
      .positional('tasks', { type: 'string', demandOption: true, describe: 'task file or folder' })
      .option('out', { type: 'string', demandOption: true, describe: 'JSONL file to write (atomically)' }),
  handler: async (args) => {
    const instances = await readInstances(args.tasks);
    writeInstanceFile(args.out, instances);
    process.stdout.write(`wrote ${instances.length} instances to ${args.out}\n`);
  },
};
