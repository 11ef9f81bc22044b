import { expect } from 'chai';
import { validateTask } from '../../src/task/validate';
import type { TaskDoc } from '../../src/types';

const base = (): TaskDoc => ({
  _id: 'task-1',
  _rev: '1-abc',
  worker: 'nightly',
  date: '2013-01-12T10:00:00Z',
  job: { name: 'generate_billing', arguments: [1, 'two'] },
});

describe('validateTask', () => {
  it('accepts a task in the long job form, status waiting by default', () => {
    const doc = base();
    const validated = validateTask(doc);
    expect(validated.ok).to.equal(true);
    if (!validated.ok) return;
    expect(validated.task).to.deep.include({
      id: 'task-1',
      worker: 'nightly',
      dateMs: Date.UTC(2013, 0, 12, 10),
      status: 'waiting',
      job: { name: 'generate_billing', arguments: [1, 'two'] },
    });
    expect(validated.task.doc).to.equal(doc);
  });

  it('accepts the short job form and leaves data in the document', () => {
    const doc: TaskDoc = { ...base(), job: 'generate_billing', data: { customer: 42 } };
    const validated = validateTask(doc);
    expect(validated.ok).to.equal(true);
    if (!validated.ok) return;
    expect(validated.task.job).to.deep.equal({ name: 'generate_billing', arguments: [] });
    expect(validated.task.doc.data).to.deep.equal({ customer: 42 });
  });

  it('parses repeat, retry and timeout', () => {
    const doc: TaskDoc = { ...base(), status: 'scheduled', repeat: 'P1D', retry: { limit: 2 }, timeout: 5000 };
    const validated = validateTask(doc);
    expect(validated.ok).to.equal(true);
    if (!validated.ok) return;
    expect(validated.task.status).to.equal('scheduled');
    expect(validated.task.repeat).to.equal('P1D');
    expect(validated.task.repeatParsed).to.include({ kind: 'interval' });
    if (validated.task.repeatParsed?.kind === 'interval') expect(validated.task.repeatParsed.every.days).to.equal(1);
    expect(validated.task.retryParsed?.limit).to.equal(2);
    expect(validated.task.timeoutMs).to.equal(5000);
  });

  it('parses priority, after (each id once) and after_failure; the defaults are 0 and "error"', () => {
    const plain = validateTask(base());
    expect(plain.ok && plain.task).to.include({ priority: 0, afterFailure: 'error' });
    expect(plain.ok && plain.task.after).to.equal(undefined);
    const validated = validateTask({ ...base(), priority: -5, after: ['import', 'fx', 'import'], after_failure: 'run' });
    expect(validated.ok).to.equal(true);
    if (!validated.ok) return;
    expect(validated.task).to.deep.include({ priority: -5, after: ['import', 'fx'], afterFailure: 'run' });
    const none = validateTask({ ...base(), after: [] });
    expect(none.ok && none.task.after).to.equal(undefined);
  });

  it('parses a jitter and a cron delay in every form: compact, ISO 8601, milliseconds, an object', () => {
    const forms: Array<[unknown, number]> = [['5m', 300_000], ['PT5M', 300_000], [300_000, 300_000], [{ minutes: 5 }, 300_000], ['1h30m', 5_400_000], [0, 0]];
    for (const [jitter, ms] of forms) {
      const validated = validateTask({ ...base(), repeat: { cron: '0 */2 * * *', jitter, delay: jitter } });
      expect(validated.ok, JSON.stringify(jitter)).to.equal(true);
      if (!validated.ok) continue;
      expect(validated.task.repeatParsed?.jitterMs ?? 0).to.equal(ms);
      expect(validated.task.repeatParsed?.kind === 'cron' ? validated.task.repeatParsed.delayMs ?? 0 : -1).to.equal(ms);
    }
  });

  it('keeps unknown fields, even __proto__ and constructor', () => {
    const doc = { ...base(), ...JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1, "extra": [1]}') } as TaskDoc;
    const validated = validateTask(doc);
    expect(validated.ok).to.equal(true);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  describe('rejects, naming the field and the value', () => {
    const longName = 'w'.repeat(201);
    const cases: { name: string; change: Record<string, unknown>; field: string; mentions?: RegExp }[] = [
      { name: 'missing worker', change: { worker: undefined }, field: 'worker' },
      { name: 'empty worker', change: { worker: '' }, field: 'worker', mentions: /empty/ },
      { name: 'numeric worker', change: { worker: 7 }, field: 'worker', mentions: /worker: 7/ },
      { name: 'worker with a newline', change: { worker: 'night\nly' }, field: 'worker', mentions: /"night\\nly"/ },
      { name: 'worker longer than 200', change: { worker: longName }, field: 'worker', mentions: /200/ },
      { name: 'worker as an object', change: { worker: { name: 'x' } }, field: 'worker' },
      { name: 'missing date', change: { date: undefined }, field: 'date' },
      { name: 'impossible date', change: { date: '2013-13-45' }, field: 'date', mentions: /^date: "2013-13-45" is not an ISO 8601 date/ },
      { name: 'basic-form date', change: { date: '20130112T1000Z' }, field: 'date' },
      { name: 'numeric date', change: { date: 1357984800000 }, field: 'date' },
      { name: 'NaN-like date', change: { date: 'NaN' }, field: 'date' },
      { name: 'missing job', change: { job: undefined }, field: 'job' },
      { name: 'null job', change: { job: null }, field: 'job' },
      { name: 'job as an array', change: { job: ['generate_billing'] }, field: 'job' },
      { name: 'empty job name', change: { job: '' }, field: 'job' },
      { name: 'job name with a control character', change: { job: 'a\u0007b' }, field: 'job', mentions: /\\u0007/ },
      { name: 'job object without a name', change: { job: { arguments: [] } }, field: 'job', mentions: /job\.name/ },
      { name: 'job name as a number', change: { job: { name: 3 } }, field: 'job' },
      { name: 'job name longer than 200', change: { job: { name: longName } }, field: 'job' },
      { name: 'job arguments not an array', change: { job: { name: 'x', arguments: { a: 1 } } }, field: 'job', mentions: /job\.arguments/ },
      { name: 'unknown status', change: { status: 'sleeping' }, field: 'status', mentions: /"sleeping"/ },
      { name: 'null status', change: { status: null }, field: 'status' },
      { name: 'status in capitals', change: { status: 'WAITING' }, field: 'status' },
      { name: 'null repeat', change: { repeat: null }, field: 'repeat' },
      { name: 'repeat as an array', change: { repeat: [1] }, field: 'repeat' },
      { name: 'repeat with an unknown key', change: { repeat: { dayz: 1 } }, field: 'repeat', mentions: /dayz/ },
      { name: 'repeat with an invalid cron', change: { repeat: { cron: '* * * *' } }, field: 'repeat', mentions: /repeat\.cron/ },
      { name: 'retry as a number', change: { retry: 3 }, field: 'retry' },
      { name: 'retry with a bad limit', change: { retry: { limit: 'many' } }, field: 'retry', mentions: /retry\.limit/ },
      { name: 'zero timeout', change: { timeout: 0 }, field: 'timeout' },
      { name: 'negative timeout', change: { timeout: -5 }, field: 'timeout' },
      { name: 'fractional timeout', change: { timeout: 1.5 }, field: 'timeout' },
      { name: 'string timeout', change: { timeout: '5000' }, field: 'timeout' },
      { name: 'timeout past setTimeout\'s limit', change: { timeout: 2_147_483_648 }, field: 'timeout' },
      { name: 'huge timeout', change: { timeout: 1e308 }, field: 'timeout' },
      { name: 'numeric _id', change: { _id: 5 }, field: '_id' },
      { name: '_id ".." (no URL can name it)', change: { _id: '..' }, field: '_id' },
      { name: '_id "."', change: { _id: '.' }, field: '_id' },
      { name: 'a priority as a string', change: { priority: 'high' }, field: 'priority', mentions: /"high"/ },
      { name: 'a fractional priority', change: { priority: 2.5 }, field: 'priority' },
      { name: 'a priority past the safe integers', change: { priority: 2 ** 60 }, field: 'priority' },
      { name: 'after as a string', change: { after: 'import' }, field: 'after', mentions: /array of task ids/ },
      { name: 'after naming a number', change: { after: ['a', 3] }, field: 'after', mentions: /^after\[1\]: 3/ },
      { name: 'after naming an empty id', change: { after: [''] }, field: 'after', mentions: /after\[0\]/ },
      { name: 'after naming a design document', change: { after: ['_design/after'] }, field: 'after' },
      { name: 'after naming the task itself', change: { after: ['task-1'] }, field: 'after', mentions: /itself/ },
      { name: 'after naming more than 100 tasks', change: { after: Array.from({ length: 101 }, (_, k) => `t${k}`) }, field: 'after', mentions: /101/ },
      { name: 'an unknown after_failure', change: { after: ['a'], after_failure: 'ignore' }, field: 'after_failure', mentions: /"ignore"/ },
      { name: 'a jitter of a month', change: { repeat: { days: 40, jitter: '1M' } }, field: 'repeat', mentions: /^repeat\.jitter: .*fixed length/ },
      { name: 'a jitter that is no duration', change: { repeat: { days: 1, jitter: 'soon' } }, field: 'repeat', mentions: /^repeat\.jitter: / },
      { name: 'a jitter as long as the interval', change: { repeat: { hours: 1, jitter: '1h' } }, field: 'repeat', mentions: /^repeat\.jitter: "1h" is not shorter .*1 h/ },
      { name: 'a jitter as long as a cron gap', change: { repeat: { cron: '*/10 * * * *', jitter: 'PT10M' } }, field: 'repeat', mentions: /^repeat\.jitter: .*10 min/ },
      { name: 'a jitter of a day on a daily repeat in a zone (a spring-forward day has 23 h)', change: { repeat: { days: 1, timezone: 'Europe/Paris', jitter: '23h' } }, field: 'repeat' },
      { name: 'a delay on an interval repeat', change: { repeat: { hours: 1, delay: '30s' } }, field: 'repeat', mentions: /^repeat\.delay: only a cron repeat/ },
      { name: 'a negative delay', change: { repeat: { cron: '0 * * * *', delay: -1 } }, field: 'repeat', mentions: /^repeat\.delay: / },
      { name: 'a delay of a year', change: { repeat: { cron: '0 * * * *', delay: 'P1Y' } }, field: 'repeat', mentions: /^repeat\.delay: / },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const validated = validateTask({ ...base(), ...c.change } as TaskDoc);
        expect(validated.ok).to.equal(false);
        if (validated.ok) return;
        expect(validated.field).to.equal(c.field);
        expect(validated.message.startsWith(c.field)).to.equal(true, validated.message);
        if (c.mentions) expect(validated.message).to.match(c.mentions);
      });
    }
  });

  describe('never throws', () => {
    const deep = (): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < 200_000; i++) value = [value];
      return value;
    };
    const cases: { name: string; doc: unknown }[] = [
      { name: 'null', doc: null },
      { name: 'an array', doc: [base()] },
      { name: 'a string', doc: 'task' },
      { name: 'an empty object', doc: {} },
      { name: 'every field null', doc: { _id: 'x', worker: null, date: null, job: null, status: null, repeat: null, retry: null, timeout: null } },
      { name: 'a 2 MB worker name', doc: { ...base(), worker: 'w'.repeat(2_000_000) } },
      { name: 'a 2 MB date', doc: { ...base(), date: '2'.repeat(2_000_000) } },
      { name: 'a 2 MB job name', doc: { ...base(), job: 'j'.repeat(2_000_000) } },
      { name: 'a deeply nested repeat', doc: { ...base(), repeat: deep() } },
      { name: 'a deeply nested retry delay', doc: { ...base(), retry: { limit: 1, delay: deep() } } },
      { name: 'a deeply nested payload', doc: { ...base(), data: deep(), job: { name: 'x', arguments: [deep()] } } },
      { name: '__proto__ everywhere', doc: JSON.parse('{"_id":"x","worker":"w","date":"2013-01-12","job":{"__proto__":{"name":"x"}},"repeat":{"__proto__":{"days":1}}}') },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const validated = validateTask(c.doc as TaskDoc);
        if (!validated.ok) {
          expect(validated.field).to.be.a('string').that.is.not.empty;
          expect(validated.message).to.be.a('string').that.is.not.empty;
          expect(validated.message.length).to.be.below(500);
        }
      });
    }
  });
});
