import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { followFile, lastLines, readLastLines } from '../../src/cli/log-file';
import { waitFor } from '../helpers/wait';

describe('cli: log files', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-log-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lastLines ignores the trailing newline', () => {
    expect(lastLines('a\nb\nc\n', 2)).to.deep.equal(['b', 'c']);
    expect(lastLines('a\nb', 5)).to.deep.equal(['a', 'b']);
    expect(lastLines('', 5)).to.deep.equal([]);
    expect(lastLines('a\n', 0)).to.deep.equal([]);
  });

  it('readLastLines reads the end of a file larger than one chunk, multi-byte characters intact', () => {
    const file = path.join(dir, 'w.log');
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} — café`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const { lines: tail, size } = readLastLines(file, 3);
    expect(tail).to.deep.equal(lines.slice(-3));
    expect(size).to.equal(fs.statSync(file).size);
    expect(readLastLines(file, 4000).lines).to.deep.equal(lines.slice(-4000));
  });

  it('followFile prints appended lines and starts over after truncation', async () => {
    const file = path.join(dir, 'w.log');
    fs.writeFileSync(file, 'old line\n');
    const seen: string[] = [];
    const follower = followFile(file, fs.statSync(file).size, (line) => seen.push(line));
    try {
      fs.appendFileSync(file, 'first\nsec');
      await waitFor(async () => seen.includes('first'), { timeoutMs: 5000, what: 'the appended line' });
      fs.appendFileSync(file, 'ond\n');
      await waitFor(async () => seen.includes('second'), { timeoutMs: 5000, what: 'the completed line' });
      fs.truncateSync(file, 0);
      fs.appendFileSync(file, 'after clean\n');
      await waitFor(async () => seen.includes('after clean'), { timeoutMs: 5000, what: 'the line written after truncation' });
      expect(seen).to.deep.equal(['first', 'second', 'after clean']);
    } finally {
      follower.stop();
    }
  });
});
