/**
 * The one place a worker instance writes a task. Each write goes to the store with what its
 * transition asks (task/writes.ts): the run lane for what a job or a user waits for, the
 * background lane for the rest, the hold rule of docs/spec.md §7 for claims and schedules. The store
 * batches the writes of one turn into `_bulk_docs` requests and answers each with one outcome.
 * Single writes (a run's finish, a hand-back) made in one turn go to the store together, as one
 * batch: the 200 finishes of a wave that ends together cost one call, not 200. Writes in flight
 * are remembered, so a stop can wait for what the database really holds.
 */
import type { TaskStore, WriteOutcome } from '../store/types';
import { isUrgent, takesHold, type Transition } from '../task/writes';
import type { TaskDoc } from '../types';
import type { HeldTask } from './held-task';

/** A write of a held task, built by one of its transitions. */
export interface Planned {
  task: HeldTask;
  transition: Transition;
  doc: TaskDoc;
}

export class TaskWriter {
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Single writes of this turn, sent together at its end. */
  private singles: Array<{ planned: Planned; resolve(outcome: WriteOutcome): void }> = [];

  constructor(private readonly store: Pick<TaskStore, 'write'>) {}

  /** One outcome per write, in order; a store that throws (closed) answers each as failed. */
  write(planned: readonly Planned[]): Promise<WriteOutcome[]> {
    const sent = this.store
      .write(
        planned.map(({ task, transition, doc }) => ({
          doc,
          lane: isUrgent(transition) ? 'run' : 'background',
          claim: takesHold(transition),
          neededByMs: task.task?.dueMs ?? 0,
        })),
      )
      .catch((err: Error): WriteOutcome[] => planned.map(() => ({ kind: 'failed', error: err })));
    this.inFlight.add(sent);
    void sent.finally(() => this.inFlight.delete(sent));
    return sent;
  }

  /** One write, sent with the other single writes of this turn. */
  writeOne(task: HeldTask, transition: Transition, doc: TaskDoc): Promise<WriteOutcome> {
    return new Promise((resolve) => {
      // setImmediate runs after this turn's promise callbacks: the finishes of every job that
      // ended in it join the batch.
      if (this.singles.length === 0) setImmediate(() => this.sendSingles());
      this.singles.push({ planned: { task, transition, doc }, resolve });
    });
  }

  /** Settles once every write in flight now (or waiting for the end of this turn) has its outcome. */
  settled(): Promise<unknown> {
    if (this.singles.length > 0) this.sendSingles();
    return Promise.allSettled([...this.inFlight]);
  }

  private sendSingles(): void {
    const singles = this.singles;
    if (singles.length === 0) return;
    this.singles = [];
    void this.write(singles.map(({ planned }) => planned)).then((outcomes) => singles.forEach(({ resolve }, index) => resolve(outcomes[index]!)));
  }
}
