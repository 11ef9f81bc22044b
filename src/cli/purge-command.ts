/** `after purge --older-than 30d`: the retention command operators run (docs/spec.md §7, growth). */
import type { Command } from 'commander';
import { withEmbeddedAdmin } from '../embedded/admin-config';
import { UsageError } from '../errors';
import { detectServer, openConnection } from '../store/connection';
import { purgeFinished } from '../store/for-operators/purge';
import { approximateMs, parseCompactDuration } from '../task/duration';
import type { CliContext } from './context';
import { checkWorkerName } from './worker-name';

export function registerPurgeCommand(program: Command, ctx: CliContext): void {
  program
    .command('purge')
    .description('remove finished tasks (done, error, canceled) whose date is older than a duration, then compact')
    .requiredOption('--older-than <duration>', 'e.g. 30d, 12h, 1M (M months, m minutes)')
    .option('--worker <name>', 'only this worker\'s tasks')
    .option('--dry-run', 'count what would be removed, change nothing')
    .action(async (opts: { olderThan: string; worker?: string; dryRun?: boolean }) => {
      const age = parseCompactDuration(opts.olderThan, '--older-than');
      if (!age.ok) throw new UsageError(age.message);
      const before = new Date(Date.now() - approximateMs(age.duration)).toISOString();
      // Compaction needs an admin: the embedded server's own, when it is the configured database.
      const conn = openConnection(withEmbeddedAdmin(ctx.config()));
      const server = await detectServer(conn);
      const report = await purgeFinished(conn, server, {
        before,
        ...(opts.worker !== undefined && { worker: checkWorkerName(opts.worker) }),
        dryRun: opts.dryRun === true,
      });
      const scope = opts.worker === undefined ? '' : ` of worker ${opts.worker}`;
      if (opts.dryRun) {
        ctx.out.line(`${report.matched} finished tasks${scope} dated before ${before} would be removed (dry run)`);
        return;
      }
      const how = report.method === 'purge' ? 'purged' : 'deleted';
      ctx.out.line(`${report.removed} of ${report.matched} finished tasks${scope} dated before ${before} ${how}; compaction ${report.compaction}`);
    });
}
