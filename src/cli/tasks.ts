import type { CommandModule } from 'yargs';
import { tasksBuildImagesCommand } from './tasks-build-images.js';
import { tasksConvertCommand } from './tasks-convert.js';
import { tasksFetchCommand } from './tasks-fetch.js';
import { tasksSynthCommand } from './tasks-synth.js';
import { tasksValidateCommand } from './tasks-validate.js';

export const tasksCommand: CommandModule = {
  command: 'tasks <command>',
  describe: 'Task sets: fetch, convert, build images, validate, synthesize',
  builder: (y) => y.command(tasksFetchCommand).command(tasksConvertCommand).command(tasksBuildImagesCommand).command(tasksValidateCommand).command(tasksSynthCommand).demandCommand(1),
  handler: () => {},
};
