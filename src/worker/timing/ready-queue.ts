/**
 * Tasks that are due but wait for a free run slot (`--concurrency`). The order in which they
 * get one: this instance's own share before another's it holds as a backup, then the higher
 * `priority`, then the earlier date — so a burst never reorders and nothing waits behind a
 * later task of the same priority.
 *
 * Backups (another instance's share, still unclaimed past their grace: their owner is busy)
 * are taken latest date first within a priority: the owner works from the earliest, so the two
 * meet at the end of its backlog instead of racing for the same claims at its front.
 */
export interface ReadyOrder {
  dueMs: number;
  /** Higher first. @default 0 */
  priority?: number;
  /** Another instance's share, claimed only when this instance has nothing of its own to run. */
  backup?: boolean;
}

interface Item {
  id: string;
  dueMs: number;
  priority: number;
  backup: boolean;
  /** Insertion order: equal keys leave first in, first out. */
  seq: number;
}

export class ReadyQueue {
  private heap: Item[] = [];
  private readonly members = new Set<string>();
  private seq = 0;

  get size(): number {
    return this.members.size;
  }

  has(id: string): boolean {
    return this.members.has(id);
  }

  push(id: string, order: ReadyOrder): void {
    if (this.members.has(id)) return;
    this.members.add(id);
    this.heap.push({ id, dueMs: order.dueMs, priority: order.priority ?? 0, backup: order.backup ?? false, seq: this.seq++ });
    this.up(this.heap.length - 1);
  }

  /** Removal is lazy: the entry is skipped when it reaches the top. */
  remove(id: string): void {
    this.members.delete(id);
  }

  /** The id that `pop()` would return, and its order, without removing it. */
  peek(): (ReadyOrder & { id: string }) | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.members.has(top.id)) return top;
      const last = this.heap.pop()!;
      if (this.heap.length > 0) {
        this.heap[0] = last;
        this.down(0);
      }
    }
    return undefined;
  }

  pop(): string | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      const last = this.heap.pop()!;
      if (this.heap.length > 0) {
        this.heap[0] = last;
        this.down(0);
      }
      if (this.members.delete(top.id)) return top.id;
    }
    return undefined;
  }

  clear(): string[] {
    const ids = [...this.members];
    this.members.clear();
    this.heap = [];
    return ids;
  }

  private up(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  private down(i: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let first = i;
      if (left < heap.length && before(heap[left]!, heap[first]!)) first = left;
      if (right < heap.length && before(heap[right]!, heap[first]!)) first = right;
      if (first === i) return;
      [heap[first], heap[i]] = [heap[i]!, heap[first]!];
      i = first;
    }
  }
}

/** True when `a` gets a run slot before `b` (see the header); equal orders: neither. */
export function readyBefore(a: ReadyOrder, b: ReadyOrder): boolean {
  if ((a.backup ?? false) !== (b.backup ?? false)) return !a.backup;
  const pa = a.priority ?? 0;
  const pb = b.priority ?? 0;
  if (pa !== pb) return pa > pb;
  return a.dueMs < b.dueMs;
}

function before(a: Item, b: Item): boolean {
  if (a.backup !== b.backup) return !a.backup;
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.dueMs !== b.dueMs) return a.backup ? a.dueMs > b.dueMs : a.dueMs < b.dueMs;
  return a.seq < b.seq;
}
