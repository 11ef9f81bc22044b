import { expect } from 'chai';
import { AfterError } from '../../src/errors';
import { errorLines, formatTable } from '../../src/cli/output';
import { formatDuration } from '../../src/format-duration';
import { countsTable, instancesLines } from '../../src/cli/status';
import type { InstanceView } from '../../src/store/for-operators/instances';

describe('cli: output helpers', () => {
  describe('formatDuration', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [999, '0s'],
      [42_000, '42s'],
      [60_000, '1m'],
      [7 * 60_000 + 12_000, '7m 12s'],
      [2 * 3_600_000 + 5 * 60_000 + 9_000, '2h 5m'],
      [3 * 86_400_000 + 4 * 3_600_000 + 59_000, '3d 4h'],
      [86_400_000 + 30_000, '1d'],
      [-5, '-'],
      [Number.NaN, '-'],
    ];
    for (const [ms, text] of cases) it(`${ms} ms is ${text}`, () => expect(formatDuration(ms)).to.equal(text));
  });

  describe('formatTable', () => {
    it('aligns columns and trims the last', () => {
      expect(formatTable(['NAME', 'STATE'], [['nightly', 'online'], ['a', 'stopped']])).to.deep.equal([
        'NAME     STATE',
        'nightly  online',
        'a        stopped',
      ]);
    });
  });

  describe('errorLines', () => {
    it('is one line with the message, credentials removed', () => {
      const err = new AfterError('E_X', 'cannot reach http://admin:s3cret@127.0.0.1:1/tasks\n(ECONNREFUSED)');
      const lines = errorLines(err, false);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.equal('after: cannot reach http://127.0.0.1:1/tasks (ECONNREFUSED)');
    });
    it('adds the stack with verbose, still scrubbed', () => {
      const lines = errorLines(new Error('at http://u:pw@host/x'), true);
      expect(lines).to.have.length(2);
      expect(lines.join('\n')).not.to.contain('pw@');
      expect(lines[1]).to.contain('Error: at http://host/x');
    });
  });

  describe('instancesLines', () => {
    const instance = (fields: Partial<InstanceView>): InstanceView => ({
      worker: 'mailer', instance: 'h:1:a', host: 'h', pid: 1, started_at: '', heartbeat_at: '', interval_ms: 10_000, running: 2, held: 5, live: true, age_ms: 2_000, suspect: false, ...fields,
    });
    it('shows a THROTTLED column only when an instance reports one (its worker name has limits)', () => {
      expect(instancesLines([instance({})])[1]).to.not.contain('THROTTLED');
      const lines = instancesLines([instance({ throttled: 12 }), instance({ worker: 'other', instance: 'h:2:b' })]);
      expect(lines[1]).to.match(/HELD\s+THROTTLED/);
      expect(lines[2]).to.match(/\b5\s+12$/);
      expect(lines[3]).to.match(/\b5\s+-$/);
    });

    it('lists an instance whose heartbeat is dated ahead as suspect, not live', () => {
      const lines = instancesLines([instance({}), instance({ instance: 'fake:1', live: false, suspect: true, age_ms: 0, heartbeat_at: '2099-01-01T00:00:00Z' })]);
      expect(lines[0]).to.equal('live instances: 1');
      expect(lines.slice(0, 3).join('\n')).to.not.contain('fake:1');
      expect(lines[3]).to.match(/^suspect instances: 1 \(heartbeat dated ahead/);
      expect(lines[5]).to.match(/fake:1 .*2099-01-01T00:00:00Z$/);
    });
  });

  describe('countsTable', () => {
    it('has one row per worker, a column per status that occurs, and a total', () => {
      const lines = countsTable([
        { worker: 'b', status: 'done', count: 3 },
        { worker: 'a', status: 'waiting', count: 2 },
        { worker: 'a', status: 'done', count: 1 },
        { worker: 'a', status: 'odd', count: 1 },
      ]);
      expect(lines.map((l) => l.split(/\s+/))).to.deep.equal([
        ['WORKER', 'WAITING', 'DONE', 'ODD', 'TOTAL'],
        ['a', '2', '1', '1', '4'],
        ['b', '0', '3', '0', '3'],
      ]);
    });
  });
});
