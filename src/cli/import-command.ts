/**
 * `after import <file>`: a crontab or an NDJSON file of tasks into task documents, idempotently
 * (stable ids: a second import of the same file creates nothing), with a summary of what was
 * created, skipped and rejected, and a progress bar on a terminal.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { importCandidates, type ImportSummary } from '../import/bulk-import';
import { parseCrontab, type ParsedImport } from '../import/crontab';
import { parseNdjson } from '../import/ndjson';
import { progressBar } from '../import/progress-bar';
import { openConnection } from '../store/connection';
import { printable, terminalJson } from '../text';
import type { CliContext } from './context';
import { checkWorkerName } from './worker-name';

interface ImportOptions {
  format?: string;
  worker?: string;
  timezone?: string;
  shell?: boolean;
  json?: boolean;
}

export type ImportFormat = 'crontab' | 'ndjson';

export function registerImportCommand(program: Command, ctx: CliContext): void {
  program
    .command('import <file>')
    .description('create tasks from a crontab (exec tasks with a cron repeat) or an NDJSON file of tasks; a second import creates none')
    .option('--format <format>', 'crontab or ndjson (default: ndjson for .ndjson/.jsonl files or a first line starting with {, else crontab)')
    .option('--worker <name>', 'worker of the tasks (required for a crontab; for NDJSON lines that name none)')
    .option('--timezone <zone>', 'IANA zone of crontab schedules before any CRON_TZ line (default UTC)')
    .option('--shell', 'import crontab commands that need a shell (pipes, $VAR, >...) as /bin/sh -c <command>')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, opts: ImportOptions) => {
      const text = readImportFile(file);
      const format = chooseFormat(file, text, opts.format);
      if (opts.worker !== undefined) checkWorkerName(opts.worker);
      const parsed = parseImport(format, text, file, opts);
      const bar = progressBar(process.stdout, `importing ${path.basename(file)}`);
      const summary = await importCandidates(openConnection(ctx.config()), parsed.candidates, parsed.rejected, (done, total) => bar.update(done, total));
      bar.finish();
      if (opts.json) ctx.out.line(terminalJson(summary, 2));
      else for (const line of summaryLines(summary)) ctx.out.line(line);
      if (format === 'crontab' && !ctx.config().builtins.exec) {
        ctx.out.warn(
          'after: note: crontab lines become exec tasks, and exec is off by default (it lets every task writer run any program); ' +
            'turn it on for the worker that runs them with "builtins": {"exec": true} in its config',
        );
      }
    });
}

function readImportFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function chooseFormat(file: string, text: string, given: string | undefined): ImportFormat {
  if (given !== undefined) {
    if (given !== 'crontab' && given !== 'ndjson') throw new UsageError(`--format must be crontab or ndjson, got ${JSON.stringify(given)}`);
    return given;
  }
  if (/\.(ndjson|jsonl)$/i.test(file)) return 'ndjson';
  const first = text.split(/\r?\n/).find((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  return first?.trim().startsWith('{') ? 'ndjson' : 'crontab';
}

function parseImport(format: ImportFormat, text: string, file: string, opts: ImportOptions): ParsedImport {
  const source = `${format}:${path.basename(file)}`;
  if (format === 'ndjson') return parseNdjson(text, { worker: opts.worker, source });
  if (opts.worker === undefined) throw new UsageError('importing a crontab needs --worker <name>: the worker that will run its commands');
  return parseCrontab(text, { worker: opts.worker, timezone: opts.timezone, shell: opts.shell === true, nowMs: Date.now(), source });
}

/**
 * `created 3, skipped 1, rejected 2`, then skips counted by reason (a re-import skips every
 * line: one line says so) and one line per rejected line with its reason (each needs a fix).
 */
export function summaryLines(summary: ImportSummary): string[] {
  const lines = [`created ${summary.created.length}, skipped ${summary.skipped.length}, rejected ${summary.rejected.length}`];
  const skipReasons = new Map<string, number>();
  for (const skip of summary.skipped) {
    const reason = skip.reason.startsWith('same task as line') ? 'the same task appears earlier in the file' : skip.reason;
    skipReasons.set(reason, (skipReasons.get(reason) ?? 0) + 1);
  }
  // Reasons quote the file and the database's answers: text from outside, made printable.
  for (const [reason, count] of skipReasons) lines.push(`skipped ${count}: ${printable(reason)}`);
  for (const reject of summary.rejected) lines.push(`rejected line ${reject.line}: ${printable(reject.reason)}`);
  return lines;
}
