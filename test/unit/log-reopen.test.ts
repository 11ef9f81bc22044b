/**
 * SIGUSR2's half of log rotation: after `logrotate` moved the log file away, reopenLogFiles
 * makes the next line start a new file under the old name; lines before it stay in the moved one.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLogger, reopenLogFiles } from '../../src/log';
import { waitFor } from '../helpers/wait';

describe('log files opened again (SIGUSR2)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-log-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const contents = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

  it('after the file was moved: old lines in the moved file, new lines in a new file of the same name, child loggers too', async () => {
    const file = path.join(dir, 'billing.log');
    const moved = `${file}.1`;
    const log = createLogger({ level: 'info', file, console: false });
    const child = log.child({ component: 'task t1' });
    log.info('before the rotation');
    await waitFor(async () => contents(file).includes('before the rotation'), { timeoutMs: 5000, what: 'the first line' });

    fs.renameSync(file, moved);
    log.info('after the move, before the signal');
    await waitFor(async () => contents(moved).includes('after the move, before the signal'), { timeoutMs: 5000, what: 'the line to reach the moved file' });
    expect(fs.existsSync(file)).to.equal(false);

    expect(reopenLogFiles(log)).to.deep.equal([file]);
    log.info('after the signal');
    child.info('from a child logger');
    await waitFor(async () => contents(file).includes('from a child logger'), { timeoutMs: 5000, what: 'lines in the new file' });
    expect(contents(file)).to.include('after the signal');
    expect(contents(moved)).not.to.include('after the signal');
    expect(contents(file)).not.to.include('before the rotation');
    await new Promise<void>((resolve) => {
      log.on('finish', () => resolve());
      log.end();
    });
  });

  it('a console-only logger has no file to reopen', () => {
    expect(reopenLogFiles(createLogger({ level: 'info', console: false }))).to.deep.equal([]);
  });
});

describe('log files are their owner\'s only', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-log-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const mode = (file: string): string => (fs.statSync(file).mode & 0o777).toString(8);

  it('creates a worker log 0600 in a new 0700 folder whatever the umask, makes an existing one 0600, and a reopened one too', async () => {
    const previous = process.umask(0o022);
    try {
      const file = path.join(dir, 'logs', 'billing.log');
      const log = createLogger({ level: 'info', file, console: false });
      log.info('a line');
      await waitFor(async () => fs.readFileSync(file, 'utf8').includes('a line'), { timeoutMs: 5000, what: 'the line' });
      expect(mode(file)).to.equal('600');
      expect(mode(path.dirname(file))).to.equal('700');

      const older = path.join(dir, 'older.log');
      fs.writeFileSync(older, 'from an older After\n', { mode: 0o644 });
      createLogger({ level: 'info', file: older, console: false });
      expect(mode(older)).to.equal('600');

      fs.renameSync(file, `${file}.1`);
      reopenLogFiles(log);
      log.info('after the rotation');
      await waitFor(async () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('after the rotation'), { timeoutMs: 5000, what: 'the new file' });
      expect(mode(file)).to.equal('600');
    } finally {
      process.umask(previous);
    }
  });
});
