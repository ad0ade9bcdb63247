import path from 'node:path';
import type { CommandModule } from 'yargs';
import { connectEngine } from '../sandbox/engine.js';
import { buildTaskImages } from '../tasks/build-images.js';
import { readInstances } from '../tasks/read.js';

interface BuildArgs {
  tasks: string;
  'repos-dir'?: string;
  image: string;
  base: string;
  force: boolean;
}

export const tasksBuildImagesCommand: CommandModule<object, BuildArgs> = {
  command: 'build-images <tasks>',
  describe: 'Build task images for instances whose repositories are local source trees (the bundled set)',
  builder: (y) =>
    y
      .positional('tasks', { type: 'string', demandOption: true, describe: 'instance file (JSON/JSONL)' })
      .option('repos-dir', { type: 'string', describe: 'folder of repository source trees (default: repos/ beside the instance file)' })
      .option('image', { type: 'string', default: 'swebench', describe: 'image name: swebench, swegym or a template' })
      .option('base', { type: 'string', default: 'rft-base:bookworm', describe: 'base image (python3, pytest, git, patch)' })
      .option('force', { type: 'boolean', default: false, describe: 'rebuild images that exist' }),
  handler: async (args) => {
    const instances = (await readInstances(args.tasks));
    const results = await buildTaskImages({
      docker: await connectEngine(),
      instances,
      reposDir: args['repos-dir'] ?? path.join(path.dirname(args.tasks), 'repos'),
      baseImage: args.base,
      imageTemplate: args.image,
      force: args.force,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const built = results.filter((r) => r.status === 'built').length;
    for (const r of results) process.stdout.write(`${r.status === 'built' ? 'built ' : 'exists'}  ${r.image}\n`);
    process.stdout.write(`${built} built, ${results.length - built} already present\n`);
  },
};
