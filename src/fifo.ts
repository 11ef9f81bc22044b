/**
 * A first-in first-out queue whose `shift` costs nothing (an array's `shift` moves every item
 * after it): the items taken stay in the array behind a head index until they are more than
 * half of it, then the array is cut. The worker keeps several such lines that grow by thousands
 * in a burst: lease renewals by due time, the revisions it remembers by expiry, recent run ends.
 */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, left in the queue. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** The oldest item, taken out. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > COMPACT_AFTER && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/** Taken items kept behind the head at most (and at most half the array) before it is cut. */
const COMPACT_AFTER = 1024;
