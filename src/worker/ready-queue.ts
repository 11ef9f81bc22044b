/**
 * Tasks that are due but wait for a free run slot (`--concurrency`), earliest date first,
 * so a burst never reorders and nothing waits behind a later task.
 */
export class ReadyQueue {
  private heap: Array<{ id: string; dueMs: number }> = [];
  private readonly members = new Set<string>();

  get size(): number {
    return this.members.size;
  }

  has(id: string): boolean {
    return this.members.has(id);
  }

  push(id: string, dueMs: number): void {
    if (this.members.has(id)) return;
    this.members.add(id);
    this.heap.push({ id, dueMs });
    this.up(this.heap.length - 1);
  }

  /** Removal is lazy: the entry is skipped when it reaches the top. */
  remove(id: string): void {
    this.members.delete(id);
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
      if (heap[parent]!.dueMs <= heap[i]!.dueMs) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  private down(i: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && heap[left]!.dueMs < heap[smallest]!.dueMs) smallest = left;
      if (right < heap.length && heap[right]!.dueMs < heap[smallest]!.dueMs) smallest = right;
      if (smallest === i) return;
      [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
      i = smallest;
    }
  }
}
