/**
 * A stable hash: the same number for the same text in every process, on every machine, in every
 * release. Instances agree through it without talking: which of them a task belongs to
 * (worker/peers/membership.ts) and where in its jitter window a repeat's occurrence runs
 * (task/series.ts). Changing it would move every jittered date and every task's owner at once.
 */

/** cyrb53: a fast 53-bit string hash, well spread. An integer in [0, 2^53). */
export function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** A stable fraction in [0, 1) of `text`. */
export function stableFraction(text: string): number {
  return hash53(text) / 2 ** 53;
}
