/**
 * The job's copy of its task: nothing a job does to it reaches the worker's document, and no
 * field is copied until the job reads it.
 *
 * A task's payload (`data`, `job.arguments`, `result`) may be up to worker.max_task_size; a copy of
 * 1 MB of small keys held the worker's one thread about 35 ms at the start of every run, for
 * jobs that never look at it (most commands, `exec`, a job reading two fields). So each top-level
 * field is copied (through JSON, which is what a task is; faster than structuredClone for one,
 * and reaching deeper) the first time the job reads it, then kept. A document JSON cannot
 * serialise never reaches a job: validation refuses it (document-size.ts). JSON.stringify of
 * the copy (the webhook job POSTs the task) serialises the fields the job has not read straight
 * from the worker's document, which serialising only reads.
 */
import type { TaskDoc } from '../types';

/** A copy of `doc` whose fields are copied on first read (and replaced by what the job writes). */
export function jobCopy(doc: TaskDoc): TaskDoc {
  const copy = {} as TaskDoc;
  const copied = new Map<string, unknown>();
  const original = doc as unknown as Record<string, unknown>;
  for (const field of Object.keys(doc)) {
    Object.defineProperty(copy, field, {
      enumerable: true,
      configurable: true,
      get: () => {
        if (!copied.has(field)) copied.set(field, copyValue(original[field]));
        return copied.get(field);
      },
      set: (value: unknown) => void copied.set(field, value),
    });
  }
  // A task with a field named toJSON keeps it: JSON.stringify then reads every field through its copy.
  if (Object.hasOwn(doc, 'toJSON')) return copy;
  Object.defineProperty(copy, 'toJSON', {
    enumerable: false,
    value: (): Record<string, unknown> => {
      const fields: Record<string, unknown> = {};
      for (const field of Object.keys(copy)) {
        const untouched = Object.hasOwn(original, field) && !copied.has(field) && isLazy(copy, field);
        Object.defineProperty(fields, field, { value: untouched ? original[field] : (copy as unknown as Record<string, unknown>)[field], enumerable: true });
      }
      return fields;
    },
  });
  return copy;
}

function isLazy(copy: object, field: string): boolean {
  return typeof Object.getOwnPropertyDescriptor(copy, field)?.get === 'function';
}

function copyValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  return JSON.parse(JSON.stringify(value)) as unknown;
}
