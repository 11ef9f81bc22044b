/** Lateness as the job itself saw it: the stamp job's `started_at_ms` minus the task's date. */
import type { BenchDb } from '../harness';
import { summarize, type Summary } from '../stats';

export interface Lateness extends Summary {
  /** Runs that started before their date (must be 0). */
  early: number;
  /** Tasks whose result carries no stamp (not run, or not by the stamp job). */
  missing: number;
}

export async function latenessOf(db: BenchDb, idPrefix: string): Promise<Lateness> {
  const values: number[] = [];
  let missing = 0;
  for (const task of await db.allTasks()) {
    if (!task._id.startsWith(idPrefix)) continue;
    const result = task.result as { started_at_ms?: unknown } | undefined;
    const dateMs = Date.parse(String(task.date));
    if (typeof result?.started_at_ms !== 'number' || !Number.isFinite(dateMs)) {
      missing++;
      continue;
    }
    values.push(result.started_at_ms - dateMs);
  }
  return { ...summarize(values), early: values.filter((late) => late < 0).length, missing };
}
