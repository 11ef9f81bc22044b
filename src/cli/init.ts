/**
 * `after init`: create the databases, indexes and design documents (idempotent). Databases
 * and design documents need an admin: on the embedded server started from this AFTER_HOME,
 * After uses the admin it generated (embedded/admin-config.ts).
 */
import type { Command } from 'commander';
import { withEmbeddedAdmin } from '../embedded/admin-config';
import { AfterError, CouchRequestError } from '../errors';
import { initDatabase, type InitReport } from '../store/for-operators/init';
import type { CliContext } from './context';

export function registerInitCommand(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('create the tasks database, its indexes, design documents and control database (safe to run again)')
    .option('--validate', 'also install the validate_doc_update that refuses invalid tasks at write time (CouchDB runs it in JavaScript for every write)')
    .option('--no-validate', 'remove that validator')
    .action(async (opts: { validate?: boolean }) => {
      const report = await initAsAdmin(ctx, opts.validate);
      ctx.out.line(`database ${report.database} (${report.server.kind} ${report.server.version})`);
      for (const line of report.lines) ctx.out.line(`  ${line}`);
      ctx.out.line(report.changed ? 'initialized' : 'already up to date');
    });
}

async function initAsAdmin(ctx: CliContext, validate: boolean | undefined): Promise<InitReport> {
  try {
    return await initDatabase(withEmbeddedAdmin(ctx.config()), { validate });
  } catch (err) {
    if (err instanceof CouchRequestError && (err.status === 401 || err.status === 403)) {
      throw new AfterError(err.code, `${err.message}; 'after init' needs a database admin (for the embedded server: AFTER_COUCHDB_URL=$(after db credentials) after init)`, { cause: err });
    }
    throw err;
  }
}
