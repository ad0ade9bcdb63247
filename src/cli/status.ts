import type { CommandModule } from 'yargs';
import { runStatus } from '../loop/status.js';
import { stopsSummary } from '../loop/stops.js';

interface StatusArgs {
  'run-dir': string;
  json: boolean;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status <run-dir>',
  describe: 'Show per iteration and phase what is done, running and left, and the resolve rates so far',
  builder: (y) =>
    y
      .positional('run-dir', { type: 'string', demandOption: true })
      .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' }),
  handler: (args) => {
    const status = runStatus(args['run-dir']);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ run: status.name, complete: status.complete, driver: status.driver, phases: status.phases, rows: status.rows, excluded: status.excluded, stops: status.stops, joining: status.joining }, null, 2)}\n`);
      return;
    }
    const width = Math.max(...status.phases.map((p) => p.phase.length));
    const driver = status.driver
      ? `running (rft pid ${status.driver.pid} on ${status.driver.host}, since ${status.driver.acquired_at})`
      : status.complete
        ? 'complete'
        : `not complete, no rft process is running it (continue with: rft resume ${status.runDir})`;
    process.stdout.write(`run ${status.name} (${status.runDir}): ${driver}\n\n`);
    for (const p of status.phases) process.stdout.write(`  ${p.phase.padEnd(width)}  ${p.status.padEnd(7)}  ${p.detail}\n`);
    process.stdout.write(`\n${status.excluded.length} instance(s) left out before sampling\n`);
    for (const e of status.excluded) process.stdout.write(`  ${e.instance_id}: ${e.reason}\n`);
    const stops = stopsSummary(status.stops);
    if (stops) process.stdout.write(`${stops}\n`);
    if (status.joining) process.stdout.write(`iteration ${status.joining.iteration} will add ${status.joining.instance_ids.join(', ')} (left out when iteration ${status.joining.after} began; a begun iteration keeps its instances)\n`);
    process.stdout.write(`\n${status.table}\n`);
  },
};
