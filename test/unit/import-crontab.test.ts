import { expect } from 'chai';
import { parseCrontab } from '../../src/import/crontab';
import { parseNdjson } from '../../src/import/ndjson';

const NOW = Date.parse('2030-03-10T12:34:56Z');

describe('parseCrontab', () => {
  const cases: Array<{ name: string; line: string; cron?: string; date?: string; argv?: string[]; rejected?: RegExp; shell?: boolean }> = [
    { name: 'five fields', line: '*/15 * * * * /bin/job a', cron: '*/15 * * * *', date: '2030-03-10T12:45:00.000Z', argv: ['/bin/job', 'a'] },
    { name: '@hourly', line: '@hourly /bin/job', cron: '0 * * * *', date: '2030-03-10T13:00:00.000Z' },
    { name: '@daily', line: '@daily /bin/job', cron: '0 0 * * *', date: '2030-03-11T00:00:00.000Z' },
    { name: '@midnight', line: '@midnight /bin/job', cron: '0 0 * * *' },
    { name: '@weekly (Sunday)', line: '@weekly /bin/job', cron: '0 0 * * 0', date: '2030-03-17T00:00:00.000Z' },
    { name: '@monthly', line: '@monthly /bin/job', cron: '0 0 1 * *', date: '2030-04-01T00:00:00.000Z' },
    { name: '@yearly', line: '@yearly /bin/job', cron: '0 0 1 1 *', date: '2031-01-01T00:00:00.000Z' },
    { name: '@annually', line: '@annually /bin/job', cron: '0 0 1 1 *' },
    { name: '@reboot', line: '@reboot /bin/job', rejected: /@reboot/ },
    { name: 'an unknown nickname', line: '@fortnightly /bin/job', rejected: /unknown schedule/ },
    { name: 'too few fields', line: '* * * /bin/job', rejected: /five time fields|valid cron/ },
    { name: 'a bad field', line: '0 25 * * * /bin/job', rejected: /not a valid cron expression/ },
    { name: 'no command', line: '@daily', rejected: /no command/ },
    { name: "cron's % stdin marker", line: '0 0 * * * mail -s hi %body', rejected: /%/ },
    { name: 'an escaped %', line: '0 0 * * * date +\\%F', argv: ['date', '+%F'] },
    { name: 'a pipe', line: '0 0 * * * a | b', rejected: /needs a shell.*--shell/ },
    { name: 'a pipe with --shell', line: '0 0 * * * a | b', shell: true, argv: ['/bin/sh', '-c', 'a | b'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const parsed = parseCrontab(c.line, { worker: 'w', nowMs: NOW, shell: c.shell });
      if (c.rejected) {
        expect(parsed.candidates).to.have.length(0);
        expect(parsed.rejected[0]!.reason).to.match(c.rejected);
        return;
      }
      expect(parsed.rejected).to.deep.equal([]);
      const doc = parsed.candidates[0]!.doc;
      if (c.cron) expect(doc.repeat).to.deep.equal({ cron: c.cron, timezone: 'UTC' });
      if (c.date) expect(doc.date).to.equal(c.date);
      if (c.argv) expect(doc.job).to.deep.equal({ name: 'exec', arguments: c.argv });
    });
  }

  it('skips comments and environment lines; CRON_TZ sets the zone of the lines after it', () => {
    const text = ['# comment', '', 'PATH=/usr/bin', '0 9 * * * /bin/a', 'CRON_TZ=America/New_York', '0 9 * * * /bin/b'].join('\n');
    const parsed = parseCrontab(text, { worker: 'w', nowMs: NOW });
    expect(parsed.rejected).to.deep.equal([]);
    expect(parsed.candidates.map((c) => c.line)).to.deep.equal([4, 6]);
    expect(parsed.candidates[1]!.doc.repeat).to.deep.equal({ cron: '0 9 * * *', timezone: 'America/New_York' });
    // 9:00 in New York on 2030-03-10 (EDT began that morning) is 13:00 UTC.
    expect(parsed.candidates[1]!.doc.date).to.equal('2030-03-10T13:00:00.000Z');
  });

  it('rejects the lines under a CRON_TZ that is no zone', () => {
    const parsed = parseCrontab('CRON_TZ=Mars/Olympus\n0 9 * * * /bin/a', { worker: 'w', nowMs: NOW });
    expect(parsed.candidates).to.have.length(0);
    expect(parsed.rejected[0]).to.deep.include({ line: 2 });
    expect(parsed.rejected[0]!.reason).to.contain('CRON_TZ on line 1');
  });

  it('gives a line the same id every time, and another worker or command another id', () => {
    const id = (line: string, worker = 'w'): string => parseCrontab(line, { worker, nowMs: NOW }).candidates[0]!.doc._id;
    expect(id('@daily /bin/a')).to.equal(id('@daily /bin/a'));
    expect(parseCrontab('@daily /bin/a', { worker: 'w', nowMs: NOW + 86_400_000 }).candidates[0]!.doc._id).to.equal(id('@daily /bin/a'));
    expect(id('@daily /bin/a', 'other')).to.not.equal(id('@daily /bin/a'));
    expect(id('@daily /bin/b')).to.not.equal(id('@daily /bin/a'));
  });
});

describe('parseNdjson', () => {
  it('keeps a chosen _id, drops a _rev, fills worker and status, and hashes an id for the rest', () => {
    const text = [
      '{"_id":"mine","_rev":"2-x","worker":"a","date":"2040-01-01","job":"j"}',
      '{"date":"2040-01-01","job":"j"}',
      '{"date":"2040-01-01","job":"j"}',
    ].join('\n');
    const parsed = parseNdjson(text, { worker: 'fallback' });
    expect(parsed.rejected).to.deep.equal([]);
    const [mine, second, third] = parsed.candidates.map((c) => c.doc);
    expect(mine).to.deep.include({ _id: 'mine', worker: 'a', status: 'waiting' });
    expect(mine).to.not.have.property('_rev');
    expect(second!.worker).to.equal('fallback');
    expect(second!._id).to.match(/^import-[0-9a-f]{20}$/);
    expect(third!._id, 'the same line, the same id').to.equal(second!._id);
  });

  it('rejects each bad line with its line number and reason', () => {
    const parsed = parseNdjson(['[1]', '{"worker":"w","date":"soon","job":"j"}', '{oops', '{"_id":"_design/x","worker":"w","date":"2040-01-01","job":"j"}'].join('\n'));
    expect(parsed.candidates).to.have.length(0);
    expect(parsed.rejected.map((r) => r.line)).to.deep.equal([1, 2, 3, 4]);
    expect(parsed.rejected[1]!.reason).to.match(/^date:/);
  });
});
