/**
 * A peer's worker runs in a child process, as After's worker does, so the bench process that
 * inserts and the process that runs jobs do not share an event loop. The child reports on
 * stdout, one line per event:
 *
 *   ready                    the worker is connected and waiting for work
 *   started <id> <ms>        the job of task <id> started at Date.now() = <ms> (inside the job)
 *   done <id>                the library reported the run of <id> completed
 */

/** What the bench passes to a worker process, as one JSON argument. */
export interface PeerWorkerSettings {
  queue: string;
  concurrency: number;
  /** Library-specific connection settings (host, port, user...). */
  connection: Record<string, string | number>;
}

export type WorkerLine =
  | { kind: 'ready' }
  | { kind: 'started'; id: string; atMs: number }
  | { kind: 'done'; id: string }
  | { kind: 'other'; text: string };

export function parseWorkerLine(line: string): WorkerLine {
  const [kind, id, atMs] = line.split(' ');
  if (kind === 'ready' && id === undefined) return { kind };
  if (kind === 'started' && id !== undefined && atMs !== undefined) return { kind, id, atMs: Number(atMs) };
  if (kind === 'done' && id !== undefined) return { kind, id };
  return { kind: 'other', text: line };
}

/** The child's side: its settings, and the lines it writes. */
export const workerSide = {
  settings(): PeerWorkerSettings {
    return JSON.parse(process.argv[2] ?? '{}') as PeerWorkerSettings;
  },
  ready(): void {
    process.stdout.write('ready\n');
  },
  started(id: string, atMs: number): void {
    process.stdout.write(`started ${id} ${atMs}\n`);
  },
  done(id: string): void {
    process.stdout.write(`done ${id}\n`);
  },
  /** Stops on SIGTERM through `close`, then exits, so the bench can wait for the exit. */
  stopOnSigterm(close: () => Promise<unknown>): void {
    process.once('SIGTERM', () => {
      close().then(
        () => process.exit(0),
        (err: Error) => {
          process.stderr.write(`${err.message}\n`);
          process.exit(1);
        },
      );
    });
  },
};
