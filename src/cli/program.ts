/**
 * The `after` command line, wired with commander. Each command group lives in its own file;
 * this one only assembles them and makes commander's own errors look like ours: one line,
 * `after: <message>`, credentials scrubbed.
 */
import { Command } from 'commander';
import { UsageError } from '../errors';
import { scrubSecrets } from '../log';
import type { CliContext } from './context';
import { registerDbCommands } from './db';
import { registerImportCommand } from './import-command';
import { registerInitCommand } from './init';
import { registerJobsCommand } from './jobs-command';
import { registerNextCommand } from './next-command';
import { registerPurgeCommand } from './purge-command';
import { registerStatusCommand } from './status';
import { registerSteerCommands } from './steer-commands';
import { registerTaskCommands } from './task-commands';
import { registerUiCommand } from './ui-command';
import { registerWorkerCommands } from './worker-commands';

export function buildProgram(ctx: CliContext, version: string): Command {
  const program = new Command('after');
  // Set before any subcommand is added: commander copies these settings into each one.
  program
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      outputError: (message, write) => write(`${scrubSecrets(message.trim().replace(/^error: /, 'after: ').replace(/\s*\n\s*/g, ' '))}\n`),
    });
  program
    .description('After: time-based tasks kept as documents in CouchDB, run by named workers')
    .version(version, '-V, --version', 'print the version')
    .option('--verbose', 'print stack traces with errors')
    .helpCommand(true)
    .addHelpText(
      'after',
      '\nConfiguration: config.json in the current folder (or AFTER_CONFIG); AFTER_COUCHDB_URL, AFTER_DB,\nAFTER_JOBS and AFTER_HOME override it. Run `after <command> --help` for a command\'s options.',
    );

  registerDbCommands(program, ctx);
  registerInitCommand(program, ctx);
  registerWorkerCommands(program, ctx);
  registerSteerCommands(program, ctx);
  registerJobsCommand(program, ctx);
  registerTaskCommands(program, ctx);
  registerStatusCommand(program, ctx);
  registerNextCommand(program, ctx);
  registerImportCommand(program, ctx);
  registerUiCommand(program, ctx);
  registerPurgeCommand(program, ctx);
  for (const group of [program, ...program.commands.filter((c) => c.commands.length > 0)]) requireSubcommand(group);
  return program;
}

/**
 * `after`, `after db` and `after task` alone (or with an unknown command) are bad usage:
 * one line naming the commands there are, rather than commander's full help on stderr.
 */
function requireSubcommand(group: Command): void {
  group.allowExcessArguments(true).action(() => {
    const path = group.parent ? `after ${group.name()}` : 'after';
    const names = group.commands.map((c) => c.name()).filter((name) => name !== 'help');
    const given = group.args[0];
    throw new UsageError(
      given === undefined
        ? `'${path}' needs a command: ${names.join(', ')} (see '${path} --help')`
        : `unknown command '${path} ${given}' (commands: ${names.join(', ')})`,
    );
  });
}
