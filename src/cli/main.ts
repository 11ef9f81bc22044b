/**
 * Entry point of bin/after: run the command, then exit with its code. Every failure is one
 * line on stderr (`after: <message>`, no stack unless --verbose) and exit code 1.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CommanderError } from 'commander';
import { createContext } from './context';
import { receiveFromLauncher } from './credential-handover';
import { errorLines } from './output';
import { buildProgram } from './program';

export async function main(argv: string[] = process.argv): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    // A worker run by `after start` for its credentials' sake reads them first (credential-handover.ts).
    await buildProgram(createContext({ env: receiveFromLauncher(process.env) }), packageVersion()).parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // commander has printed its own message (usage error) or the help/version text.
    if (err instanceof CommanderError) return err.exitCode;
    for (const line of errorLines(err, verbose)) process.stderr.write(`${line}\n`);
    return 1;
  }
}

function packageVersion(): string {
  const file = path.resolve(__dirname, '..', '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

/**
 * Run the CLI and exit with its code. Exiting explicitly means a finished command never
 * lingers on a keep-alive socket or a library's timer (stdout and stderr are written
 * synchronously to files and pipes, so nothing printed is lost). An error that escapes
 * every command (a library's stray rejection) still ends as one line.
 */
export function run(argv: string[] = process.argv): void {
  const verbose = argv.includes('--verbose');
  const fatal = (err: unknown): void => {
    for (const line of errorLines(err, verbose)) process.stderr.write(`${line}\n`);
    process.exit(1);
  };
  // `after task list | head -1`: the reader went away; that ends the command, quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(0) : fatal(err)));
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  void main(argv).then((code) => process.exit(code), fatal);
}
