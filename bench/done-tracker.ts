/**
 * When each task of a worker process was reported done, and waiting for the count-th one:
 * shared by After's worker (harness.ts) and the peers' workers (peers/worker-process.ts).
 */
export interface WorkerOutput {
  /** Whether the process has exited (then no more tasks will be done). */
  exited(): boolean;
  /** Its last lines, for error messages. */
  tail(): string;
}

export class DoneTracker {
  /** Date.now() in the bench when each task was first reported done, by task id. */
  readonly doneAtMs = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  constructor(private readonly worker: WorkerOutput) {}

  /** Records `id` as done (its first report counts) and wakes whoever waits. */
  markDone(id: string, atMs = Date.now()): void {
    if (!this.doneAtMs.has(id)) this.doneAtMs.set(id, atMs);
    this.wake();
  }

  /** Makes the waiters look again: call it when the process exits. */
  wake(): void {
    for (const waiter of this.waiters) waiter();
  }

  /** Resolves with the time of the `count`-th task done; rejects after `timeoutMs` or when the process exits first. */
  waitForDone(count: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const check = (): void => {
        if (this.doneAtMs.size >= count) {
          finish();
          resolve(Math.max(...this.doneAtMs.values()));
        } else if (this.worker.exited()) {
          finish();
          reject(new Error(`the worker exited with ${this.doneAtMs.size} of ${count} tasks done: ${this.worker.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.doneAtMs.size} of ${count} tasks done after ${timeoutMs} ms; the worker said:\n${this.worker.tail()}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}
