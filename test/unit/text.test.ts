import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorLines, formatTable } from '../../src/cli/output';
import { tasksTable } from '../../src/cli/task-commands';
import { summaryLines } from '../../src/cli/import-command';
import { countsTable } from '../../src/cli/status';
import { createLogger } from '../../src/log';
import { printable, printableLines, terminalJson } from '../../src/text';
import type { TaskDoc } from '../../src/types';

/** Any C0 control but none, DEL, C1, line separators, bidi controls: what must never reach a terminal raw. */
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** An id that writes the clipboard (OSC 52) and forges a second log line. */
const evil = 'x\u001b]52;c;cHduZWQ=\u0007\ninfo task payroll done';

describe('text: document text made printable', () => {
  const cases: Array<{ name: string; input: string; output: string }> = [
    { name: 'plain text', input: 'payroll-2024 ünïcödé ✓', output: 'payroll-2024 ünïcödé ✓' },
    { name: 'a backslash (left as is)', input: 'C:\\jobs\\x1b', output: 'C:\\jobs\\x1b' },
    { name: 'a newline that would forge a log line', input: 'a\ninfo task payroll done', output: 'a\\ninfo task payroll done' },
    { name: 'CR and tab', input: 'a\rb\tc', output: 'a\\rb\\tc' },
    { name: 'ESC c (terminal reset)', input: '\u001bc', output: '\\x1bc' },
    { name: 'CSI clear screen', input: '\u001b[2J\u001b[H', output: '\\x1b[2J\\x1b[H' },
    { name: 'OSC 52 clipboard write (BEL-terminated)', input: '\u001b]52;c;ZWNobyBwd25lZA==\u0007', output: '\\x1b]52;c;ZWNobyBwd25lZA==\\x07' },
    { name: 'OSC title (ST-terminated)', input: '\u001b]0;owned\u001b\\', output: '\\x1b]0;owned\\x1b\\' },
    { name: 'NUL and DEL', input: 'a\u0000b\u007f', output: 'a\\x00b\\x7f' },
    { name: '8-bit CSI, OSC and NEL (C1)', input: '\u009b2J\u009d0;x\u0085', output: '\\x9b2J\\x9d0;x\\x85' },
    { name: 'line and paragraph separators', input: 'a\u2028b\u2029c', output: 'a\\u2028b\\u2029c' },
    { name: 'a right-to-left override (Trojan Source)', input: 'done\u202e enod', output: 'done\\u202e enod' },
    { name: 'isolates and marks', input: '\u2066x\u2069\u200e\u200f\u061c', output: '\\u2066x\\u2069\\u200e\\u200f\\u061c' },
  ];
  for (const c of cases) {
    it(`printable: ${c.name}`, () => {
      const shown = printable(c.input);
      expect(shown).to.equal(c.output);
      expect(shown).not.to.match(RAW_CONTROL);
    });
  }

  it('printableLines keeps line breaks and escapes the rest', () => {
    expect(printableLines('one \u001b[31m\ntwo\r')).to.equal('one \\x1b[31m\ntwo\\r');
  });

  it('terminalJson is JSON that parses back to the same value, with no raw C1 or bidi control', () => {
    const value = { id: 'a\u009b2J\u001b[H\n', why: 'x\u202ey', list: [1, 'z\u2028'] };
    for (const indent of [undefined, 2]) {
      const json = terminalJson(value, indent);
      expect(JSON.parse(json)).to.deep.equal(value);
      expect(json.replace(/\n/g, '')).not.to.match(RAW_CONTROL);
    }
  });

  describe('where the CLI prints document text', () => {
    it('a task table keeps one line per task', () => {
      const doc = { _id: evil, worker: `w\u001b[2J`, status: 'waiting', date: '2030-01-01', job: { name: 'j\u009b' } } as unknown as TaskDoc;
      const lines = tasksTable([doc]);
      expect(lines).to.have.length(2);
      for (const line of lines) expect(line).not.to.match(RAW_CONTROL);
      expect(lines[1]).to.contain('x\\x1b]52;c;cHduZWQ=\\x07\\ninfo task payroll done');
    });

    it('a status table escapes worker names and odd statuses in cells and headers', () => {
      const lines = countsTable([{ worker: evil, status: 'odd\u001b[2J', count: 1 }]);
      expect(lines).to.have.length(2);
      for (const line of lines) expect(line).not.to.match(RAW_CONTROL);
    });

    it('formatTable escapes every cell', () => {
      for (const line of formatTable(['A', 'B'], [[evil, 'ok']])) expect(line).not.to.match(RAW_CONTROL);
    });

    it('an import report escapes the reasons it quotes', () => {
      const lines = summaryLines({ created: [], skipped: [{ line: 1, id: 'a', reason: evil }], rejected: [{ line: 2, reason: evil }] });
      for (const line of lines) expect(line).not.to.match(RAW_CONTROL);
    });

    it("an error naming a task id is one line with no raw control", () => {
      const lines = errorLines(new Error(`task ${evil} not found`), false);
      expect(lines).to.have.length(1);
      expect(lines[0]).not.to.match(RAW_CONTROL);
    });
  });

  it('a log line holding an id with ESC and a newline is one line in the file, nothing forged', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-text-'));
    const file = path.join(dir, 'w.log');
    try {
      const log = createLogger({ level: 'info', file, console: false });
      log.child({ component: `task ${evil}` }).info(`task ${evil} done after 3 ms`);
      await new Promise<void>((resolve) => {
        log.on('finish', () => resolve());
        log.end();
      });
      const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).not.to.match(RAW_CONTROL);
      expect(lines[0]).to.contain('\\ninfo task payroll done');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
