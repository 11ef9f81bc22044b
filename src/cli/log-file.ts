/**
 * Reading a worker's log file for `after log`: the last lines without reading a large file
 * whole, and following it like `tail -f`. `after clean` truncates the file while a worker
 * (and maybe a follower) has it open, so a follower that finds the file shorter than what
 * it has read starts again from the top instead of waiting for the old size forever.
 */
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const CHUNK_BYTES = 64 * 1024;
const POLL_MS = 200;

/** The last `count` lines of a text (a trailing newline does not make an empty last line). */
export function lastLines(text: string, count: number): string[] {
  if (count <= 0 || text === '') return [];
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  return lines.slice(-count);
}

/** The last `count` lines of a file, reading backwards from its end in chunks. */
export function readLastLines(file: string, count: number): { lines: string[]; size: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let start = size;
    let tail = Buffer.alloc(0);
    // count + 1 newlines guarantee `count` whole lines (the first may be cut by the chunk).
    // Bytes are joined before decoding: a chunk boundary may split a UTF-8 character.
    while (start > 0 && countNewlines(tail) <= count) {
      const length = Math.min(CHUNK_BYTES, start);
      start -= length;
      const chunk = Buffer.alloc(length);
      fs.readSync(fd, chunk, 0, length, start);
      tail = Buffer.concat([chunk, tail]);
    }
    return { lines: lastLines(tail.toString('utf8'), count), size };
  } finally {
    fs.closeSync(fd);
  }
}

function countNewlines(bytes: Buffer): number {
  let newlines = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) newlines++;
  return newlines;
}

export interface Follower {
  stop(): void;
}

/**
 * Call `onLine` for every whole line appended to `file` after byte `from`. Polling (rather
 * than fs.watch) sees truncation and works the same on every file system.
 */
export function followFile(file: string, from: number, onLine: (line: string) => void): Follower {
  let position = from;
  let pending = '';
  let decoder = new StringDecoder('utf8');
  const timer = setInterval(() => {
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return; // removed for a moment (rotation, clean): wait for it to come back
    }
    if (size < position) {
      position = 0;
      pending = '';
      decoder = new StringDecoder('utf8');
    }
    if (size === position) return;
    const fd = fs.openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(size - position);
      const read = fs.readSync(fd, buffer, 0, buffer.length, position);
      position += read;
      pending += decoder.write(buffer.subarray(0, read));
    } finally {
      fs.closeSync(fd);
    }
    const parts = pending.split(/\r?\n/);
    pending = parts.pop() ?? '';
    for (const line of parts) onLine(line);
  }, POLL_MS);
  return { stop: () => clearInterval(timer) };
}
