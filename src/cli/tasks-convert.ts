import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { writeFileAtomic } from '../store/atomic.js';
import { readInstances } from '../tasks/read.js';

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
    mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
    writeFileAtomic(args.out, `${instances.map((i) => JSON.stringify(i)).join('\n')}\n`);
    process.stdout.write(`wrote ${instances.length} instances to ${args.out}\n`);
  },
};
