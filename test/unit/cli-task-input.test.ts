import { expect } from 'chai';
import { UsageError } from '../../src/errors';
import { readTaskInput } from '../../src/cli/task-commands';
import { parseRepeat, taskDocFromFlags, taskDocFromJson } from '../../src/cli/task-input';

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('cli: task add input', () => {
  describe('taskDocFromFlags', () => {
    const base = { worker: 'billing', date: '2030-01-12T10:00:00Z', job: 'generate' };

    it('builds the long job form and starts the task as waiting', () => {
      expect(taskDocFromFlags(base)).to.deep.equal({
        worker: 'billing',
        date: '2030-01-12T10:00:00Z',
        job: { name: 'generate' },
        status: 'waiting',
      });
    });

    it('parses every optional flag into its field', () => {
      const doc = taskDocFromFlags({
        ...base,
        args: '["a", 1]',
        data: '{"customer": 42}',
        repeat: '{"days": 7, "months": 1}',
        retry: '{"limit": 3, "delay": {"minutes": 1}}',
        timeout: '5000',
        id: 'invoice-42',
      });
      expect(doc).to.deep.equal({
        _id: 'invoice-42',
        worker: 'billing',
        date: '2030-01-12T10:00:00Z',
        job: { name: 'generate', arguments: ['a', 1] },
        data: { customer: 42 },
        repeat: { days: 7, months: 1 },
        retry: { limit: 3, delay: { minutes: 1 } },
        timeout: 5000,
        status: 'waiting',
      });
    });

    it('--priority, --after (commas, or the flag again), --after-failure, --jitter, --delay', () => {
      const doc = taskDocFromFlags({ ...base, priority: '-3', after: ['import-2026-11,fx-rates', 'fx-rates', 'audit'], afterFailure: 'run', cron: '0 * * * *', delay: '30s', jitter: '5m', id: 'hourly' });
      expect(doc).to.deep.include({
        priority: -3,
        after: ['import-2026-11', 'fx-rates', 'audit'],
        after_failure: 'run',
        repeat: { cron: '0 * * * *', delay: '30s', jitter: '5m' },
      });
    });

    it('--cron --delay without --date starts at the first fire time plus the delay', () => {
      const now = Date.parse('2030-01-12T10:00:10Z');
      expect(taskDocFromFlags({ worker: 'w', job: 'j', cron: '0 * * * *', delay: '30s' }, now).date).to.equal('2030-01-12T10:00:30.000Z');
      expect(taskDocFromFlags({ worker: 'w', job: 'j', cron: '0 * * * *', delay: '5s' }, now).date).to.equal('2030-01-12T11:00:05.000Z');
    });

    it('--cron --jitter without --date: the task gets an id here, and its first date its own offset', () => {
      const now = Date.parse('2030-01-12T10:00:10Z');
      const doc = taskDocFromFlags({ worker: 'w', job: 'j', cron: '0 * * * *', jitter: '10m' }, now);
      expect(doc._id).to.match(/^[0-9a-f]{32}$/);
      const date = Date.parse(String(doc.date));
      expect(date).to.be.at.least(Date.parse('2030-01-12T11:00:00Z')).and.below(Date.parse('2030-01-12T11:10:00Z'));
      const named = taskDocFromFlags({ worker: 'w', job: 'j', cron: '0 * * * *', jitter: '10m', id: 'mine' }, now);
      expect(named._id).to.equal('mine');
      expect(taskDocFromFlags({ worker: 'w', job: 'j', cron: '0 * * * *', jitter: '10m', id: 'mine' }, now).date).to.equal(named.date);
    });

    const cases: { name: string; flags: Record<string, string>; names: RegExp }[] = [
      { name: 'a missing --worker', flags: { date: base.date, job: 'x' }, names: /--worker/ },
      { name: 'a missing --date', flags: { worker: 'w', job: 'x' }, names: /--date/ },
      { name: 'a missing --job', flags: { worker: 'w', date: base.date }, names: /--job/ },
      { name: '--args that is not JSON', flags: { ...base, args: '[1,' }, names: /--args/ },
      { name: '--args that is not an array', flags: { ...base, args: '{"a": 1}' }, names: /--args/ },
      { name: '--data that is not JSON', flags: { ...base, data: 'hello' }, names: /--data/ },
      { name: '--retry that is not JSON', flags: { ...base, retry: 'limit=3' }, names: /--retry/ },
      { name: 'a --timeout that is not a number', flags: { ...base, timeout: '5s' }, names: /--timeout/ },
      { name: 'a zero --timeout', flags: { ...base, timeout: '0' }, names: /--timeout/ },
      { name: 'an empty --id', flags: { ...base, id: '' }, names: /--id/ },
      { name: 'a --priority that is not an integer', flags: { ...base, priority: 'high' }, names: /--priority/ },
      { name: 'a fractional --priority', flags: { ...base, priority: '1.5' }, names: /--priority/ },
      { name: 'an empty id in --after', flags: { ...base, after: 'a,,b' }, names: /--after/ },
      { name: 'an unknown --after-failure', flags: { ...base, after: 'a', afterFailure: 'skip' }, names: /--after-failure/ },
      { name: '--after-failure without --after', flags: { ...base, afterFailure: 'run' }, names: /--after-failure/ },
      { name: '--jitter without a repeat', flags: { ...base, jitter: '5m' }, names: /--jitter/ },
      { name: '--delay with --every', flags: { ...base, every: '1h', delay: '5m' }, names: /--delay/ },
      { name: 'a --jitter as long as the repeat', flags: { ...base, every: '1h', jitter: '1h' }, names: /jitter/ },
    ];
    for (const c of cases) {
      it(`rejects ${c.name}, naming the flag`, () => {
        expect(usageError(() => taskDocFromFlags(c.flags)).message).to.match(c.names);
      });
    }
  });

  describe('parseRepeat', () => {
    it('keeps an ISO 8601 duration as a string', () => expect(parseRepeat('P1M7D')).to.equal('P1M7D'));
    it('parses a JSON object', () => expect(parseRepeat('{"cron": "0 9 * * 1-5"}')).to.deep.equal({ cron: '0 9 * * 1-5' }));
    it('parses a JSON string', () => expect(parseRepeat('"PT1H"')).to.equal('PT1H'));
  });

  describe('taskDocFromJson', () => {
    it('keeps every field and a given status', () => {
      expect(taskDocFromJson('{"worker": "w", "status": "waiting", "custom": [1]}', '--json')).to.deep.equal({
        worker: 'w',
        status: 'waiting',
        custom: [1],
      });
    });
    it('adds status waiting when absent', () => {
      expect(taskDocFromJson('{"worker": "w"}', '--json')).to.have.property('status', 'waiting');
    });
    for (const text of ['[1]', '"text"', 'null', '{']) {
      it(`rejects ${text}, naming the source`, () => {
        expect(usageError(() => taskDocFromJson(text, 'tasks.json')).message).to.contain('tasks.json');
      });
    }
  });

  describe('readTaskInput', () => {
    it('reads stdin for --file -', () => {
      const doc = readTaskInput({ file: '-' }, () => '{"worker": "w", "date": "2030-01-01", "job": "x"}');
      expect(doc).to.include({ worker: 'w', date: '2030-01-01', job: 'x' });
    });
    it('refuses --json together with flags', () => {
      usageError(() => readTaskInput({ json: '{}', worker: 'w' }));
    });
    it('refuses --json together with --file', () => {
      usageError(() => readTaskInput({ json: '{}', file: 'x.json' }));
    });
    it('names a file that cannot be read', () => {
      expect(usageError(() => readTaskInput({ file: '/nonexistent/task.json' })).message).to.contain('/nonexistent/task.json');
    });
  });
});

describe('task add schedule flags', () => {
  const now = Date.UTC(2026, 10, 23, 10, 15, 30);
  const base = { worker: 'w', job: 'j' };

  it('turns --cron with --tz into a cron repeat starting at its first fire time', () => {
    const doc = taskDocFromFlags({ ...base, cron: '0 9 * * 1-5', tz: 'Europe/Paris' }, now);
    expect(doc.repeat).to.deep.equal({ cron: '0 9 * * 1-5', timezone: 'Europe/Paris' });
    expect(doc.date).to.equal('2026-11-24T08:00:00.000Z');
  });

  it('turns --every into a duration repeat', () => {
    const doc = taskDocFromFlags({ ...base, date: '2026-12-01', every: '1M7d' }, now);
    expect(doc.repeat).to.deep.equal({ months: 1, days: 7 });
  });

  for (const bad of [
    { name: '--cron and --every together', flags: { cron: '* * * * *', every: '1d' } },
    { name: '--tz alone', flags: { date: '2026-12-01', tz: 'Europe/Paris' } },
    { name: 'an invalid cron', flags: { cron: '0 25 * * *' } },
    { name: 'an unknown zone', flags: { cron: '0 9 * * *', tz: 'Mars/Olympus' } },
    { name: '--repeat with --every', flags: { date: '2026-12-01', every: '1d', repeat: 'P1D' } },
  ]) {
    it(`refuses ${bad.name} with a usage error`, () => {
      expect(() => taskDocFromFlags({ ...base, ...bad.flags }, now)).to.throw(UsageError);
    });
  }
});
