/**
 * `after init`: create the database, its indexes and design document (idempotent). Databases
 * and design documents need an admin: on the embedded server started from this AFTER_HOME,
 * After uses the admin it generated (embedded/admin-config.ts).
 */
import type { Command } from 'commander';
import { withEmbeddedAdmin } from '../embedded/admin-config';
import { initDatabase } from '../store/design';
import type { CliContext } from './context';

export function registerInitCommand(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create the tasks database, its indexes and design document (safe to run again)')
    .action(async () => {
      const report = await initDatabase(withEmbeddedAdmin(ctx.config()));
      ctx.out.line(`database ${report.database} (${report.server.kind} ${report.server.version})`);
      for (const line of report.lines) ctx.out.line(`  ${line}`);
      ctx.out.line(report.changed ? 'initialized' : 'already up to date');
    });
}
