/** `after init`: create the database, its indexes and design document (idempotent). */
import type { Command } from 'commander';
import { initDatabase } from '../store/design';
import type { CliContext } from './context';

export function registerInitCommand(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create the tasks database, its indexes, design documents and control database (safe to run again)')
    .option('--validate', 'also install the validate_doc_update that refuses invalid tasks at write time (CouchDB runs it in JavaScript for every write)')
    .option('--no-validate', 'remove that validator')
    .action(async (opts: { validate?: boolean }) => {
      const report = await initDatabase(ctx.config(), { validate: opts.validate });
      ctx.out.line(`database ${report.database} (${report.server.kind} ${report.server.version})`);
      for (const line of report.lines) ctx.out.line(`  ${line}`);
      ctx.out.line(report.changed ? 'initialized' : 'already up to date');
    });
}
