/**
 * What the parts of a worker instance share: the Worker implements it, and each part (the
 * task table, the entry writes, the run slots, the request desk) receives it. One place that
 * names what each part may reach, rather than a constructor list per part.
 */
import type { Clock } from '../clock';
import type { SafeEmitter } from '../events';
import type { Logger } from '../log';
import type { TaskStore } from '../store/types';
import type { WriteContext } from '../task/writes';
import type { TaskDoc } from '../types';
import type { ControlLink } from './control-link';
import type { EntryWrites } from './entry-writes';
import type { RequestDesk } from './requests';
import type { Runner } from './runner';
import type { RunSlots } from './run-slots';
import type { TaskTable } from './task-table';
import type { TaskWriter } from './task-writer';
import type { WorkerEvents } from './worker-events';

export interface WorkerCore {
  readonly instance: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly store: TaskStore;
  readonly events: SafeEmitter<WorkerEvents>;
  readonly control: ControlLink;
  readonly writer: TaskWriter;
  readonly runner: Runner;
  /** The tasks this instance holds, their timers and ready queue. */
  readonly table: TaskTable;
  /** The writes of held tasks (claims aside): holds, verdicts, hand-backs. */
  readonly writes: EntryWrites;
  /** Claims and runs, within the run slots (`concurrency`). */
  readonly slots: RunSlots;
  /** Users' requests about tasks (control documents). */
  readonly requests: RequestDesk;
  /** How long past its date another instance's task waits before this one claims it. */
  readonly graceMs: number;
  /** The instance is stopping: nothing new starts. */
  readonly stopping: boolean;
  /** The leases and times a write of this instance carries now. */
  writeContext(): WriteContext;
  /** A document from anywhere: dropped when older than what is known, else decided. */
  ingest(doc: TaskDoc): void;
  /** Decide `doc` now and carry the decision out. */
  apply(doc: TaskDoc): void;
}
