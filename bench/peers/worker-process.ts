/** The bench's side of a peer's worker process (see worker-protocol.ts for what it prints). */
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { DoneTracker } from '../done-tracker';
import { parseWorkerLine, type PeerWorkerSettings } from './worker-protocol';

export interface PeerWorkerProcess {
  readonly pid: number;
  /** Resolves when the worker prints `ready`; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** Job start times, as the job saw them, by task id. */
  readonly startedAtMs: ReadonlyMap<string, number>;
  /** Date.now() in the bench when each `done` line arrived, by task id. */
  readonly doneAtMs: ReadonlyMap<string, number>;
  /** Resolves with the time of the `count`-th `done` line; rejects after `timeoutMs` or on exit. */
  waitForDone(count: number, timeoutMs: number): Promise<number>;
  /** The last lines it printed that were not events (for error messages). */
  tail(): string;
  /** SIGTERM, then SIGKILL if it has not exited 30 s later. */
  stop(): Promise<void>;
}

export function startPeerWorker(script: string, settings: PeerWorkerSettings): PeerWorkerProcess {
  const child = spawn(process.execPath, [script, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`cannot start ${script}`);
  const startedAtMs = new Map<string, number>();
  let lastLines: string[] = [];
  const done = new DoneTracker({ exited: () => child.exitCode !== null || child.signalCode !== null, tail: () => lastLines.join('\n') });
  const remember = (text: string): void => {
    lastLines = [...lastLines.slice(-19), text];
  };

  let resolveReady!: () => void;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    void exited.then((code) => reject(new Error(`${script} exited (code ${code}) before it was ready: ${lastLines.join('\n')}`)));
  });
  ready.catch(() => undefined);
  void exited.then(() => done.wake());

  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = parseWorkerLine(text);
    if (line.kind === 'ready') resolveReady();
    else if (line.kind === 'started') startedAtMs.set(line.id, line.atMs);
    else if (line.kind === 'done') done.markDone(line.id);
    else remember(line.text);
  });
  readline.createInterface({ input: child.stderr! }).on('line', remember);

  return {
    pid: child.pid,
    ready,
    startedAtMs,
    doneAtMs: done.doneAtMs,
    waitForDone: (count, timeoutMs) => done.waitForDone(count, timeoutMs),
    tail: () => lastLines.join('\n'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const late = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(late);
    },
  };
}
