/**
 * What a peer scheduler (BullMQ, pg-boss) offers the bench: a fresh queue per workload with its
 * own worker process, fed the same tasks After's workloads create (an id and a due date).
 */

export interface PeerTask {
  id: string;
  /** When the task is due, in epoch milliseconds. */
  dueMs: number;
}

export interface Peer {
  /** How the table names it, versions included: "BullMQ 6.7.0 (Redis 7.0.15)". */
  readonly label: string;
  /** A note for the table on how the peer is set up (polling interval, batch size...). */
  readonly setup: string;
  /** A fresh queue with a worker process already waiting for work (`concurrency` runs at once). */
  openQueue(label: string, concurrency: number): Promise<PeerQueue>;
  /** Stops the peer's server by PID and removes its temp folder. */
  stop(): Promise<void>;
}

export interface PeerQueue {
  /** Every task in one call (as After's workloads insert them in one `_bulk_docs`). */
  insert(tasks: readonly PeerTask[]): Promise<void>;
  /** Resolves with Date.now() when the `count`-th task is seen completed; rejects after `timeoutMs`. */
  waitForAllDone(count: number, timeoutMs: number): Promise<number>;
  /** Date.now() inside the job, by task id: when each run started, as the job saw it. */
  readonly startedAtMs: ReadonlyMap<string, number>;
  /** Stops the worker process and closes the bench's connections. */
  close(): Promise<void>;
}
