/**
 * A one-line progress bar redrawn in place with `\r`, only on a terminal: in a pipe, a log
 * file or CI it would be noise, so there it draws nothing.
 */
export interface ProgressBar {
  update(done: number, total: number): void;
  /** Clear the line (the summary follows). */
  finish(): void;
}

const WIDTH = 30;

export function progressBar(stream: NodeJS.WriteStream, label: string): ProgressBar {
  if (!stream.isTTY) return { update: () => {}, finish: () => {} };
  let drawn = false;
  return {
    update(done, total) {
      const share = total === 0 ? 1 : done / total;
      const filled = Math.round(share * WIDTH);
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${done}/${total}`);
      drawn = true;
    },
    finish() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
