/**
 * `after jobs`: what a worker would load from the jobs folder, and every problem in it at
 * once (each naming its file), so a broken job is found before a worker refuses to start.
 */
import type { Command } from 'commander';
import { describeJobs, jobsOptionsOf, loadJobs } from '../jobs/loader';
import type { CliContext } from './context';
import { absolutePath } from './options';

export function registerJobsCommand(program: Command, ctx: CliContext): void {
  program
    .command('jobs')
    .description('list the jobs a worker would load (exit 1 when the folder has problems)')
    .option('--jobs <dir>', 'jobs folder (default: jobs in config, or AFTER_JOBS)', absolutePath)
    .action(async (opts: { jobs?: string }) => {
      const dir = opts.jobs ?? ctx.config().jobs;
      const registry = await loadJobs(dir, jobsOptionsOf(ctx.config()));
      ctx.out.line(`jobs in ${registry.dir}:`);
      for (const line of describeJobs(registry)) ctx.out.line(`  ${line}`);
      if (registry.problems.length > 0) {
        const count = registry.problems.length === 1 ? '1 problem' : `${registry.problems.length} problems`;
        ctx.out.warn(`after: jobs folder ${registry.dir} has ${count}`);
        process.exitCode = 1;
      }
    });
}
