/**
 * Where a drain's clock stops: when the database shows the last write, as a user watching it
 * would see it, not when the worker logs it. A continuous `_changes` feed of the database, ids
 * and revisions only (no documents, no filter: the least it can cost the database), records
 * when each revision was first seen. After a drain, each task's final revision (read once) says
 * when the database showed it. A workload starts it where its drain's clock starts (W1: after
 * the insert), so that it never reads more of the database than a user watching the drain would.
 */
import type { BenchDb } from './server';

export interface ChangesClock {
  /** Date.now() when the feed first showed revision `rev` of document `id`. */
  seenAtMs(id: string, rev: string): number | undefined;
  /**
   * When the database showed the last of these documents as they are now (waits a little for
   * the feed to catch up). NaN when one of them was never seen.
   */
  lastSeenMs(docs: ReadonlyArray<{ _id: string; _rev?: string }>, waitMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** Follows `db` (node `node` of a cluster) from its current update seq. */
export async function watchChanges(db: BenchDb, node = 0): Promise<ChangesClock> {
  const { update_seq: since } = await db.nodes[node]!.request<{ update_seq: unknown }>('GET', '');
  const seen = new Map<string, number>();
  const stopping = new AbortController();
  const { url, headers } = db.nodes[node]!.changesEndpoint(String(since));
  const res = await fetch(url, { headers, signal: stopping.signal });
  if (!res.ok || !res.body) throw new Error(`_changes of ${db.name}: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const reading = (async () => {
    let buffered = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const now = Date.now();
        buffered += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (!line) continue;
          const change = JSON.parse(line) as { id?: string; changes?: Array<{ rev: string }> };
          for (const { rev } of change.changes ?? []) {
            const key = `${change.id} ${rev}`;
            if (!seen.has(key)) seen.set(key, now);
          }
        }
      }
    } catch {
      // stopped
    }
  })();
  const seenAtMs = (id: string, rev: string): number | undefined => seen.get(`${id} ${rev}`);
  return {
    seenAtMs,
    async lastSeenMs(docs, waitMs = 10_000) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        let last = 0;
        let missing = false;
        for (const doc of docs) {
          const at = doc._rev === undefined ? undefined : seenAtMs(doc._id, doc._rev);
          if (at === undefined) missing = true;
          else last = Math.max(last, at);
        }
        if (!missing) return last;
        if (Date.now() > deadline) return Number.NaN;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      stopping.abort();
      await reading;
    },
  };
}
