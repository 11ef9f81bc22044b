import { expect } from 'chai';
import { parseRepeat } from '../../src/task/repeat';
import { repeatInWords } from '../../src/task/repeat-words';

describe('a repeat in words (the dashboard\'s schedules)', () => {
  const cases: Array<{ repeat: unknown; words: string }> = [
    { repeat: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris', jitter: '5m' }, words: 'weekdays at 09:00 Europe/Paris, jitter 5 min' },
    { repeat: { cron: '30 2 * * *' }, words: 'every day at 02:30 UTC' },
    { repeat: { cron: '*/15 * * * *' }, words: 'every 15 minutes' },
    { repeat: { cron: '5 * * * *' }, words: 'every hour at :05' },
    { repeat: { cron: '0 */6 * * *' }, words: 'every 6 hours at :00' },
    { repeat: { cron: '0 8,20 * * *', timezone: 'America/New_York' }, words: 'every day at 08:00 and 20:00 America/New_York' },
    { repeat: { cron: '0 10 * * 0,6' }, words: 'weekends at 10:00 UTC' },
    { repeat: { cron: '0 7 * * 1' }, words: 'every Monday at 07:00 UTC' },
    { repeat: { cron: '0 0 1 * *' }, words: 'on day 1 of every month at 00:00 UTC' },
    { repeat: { cron: '0 12 25 12 *' }, words: 'every December 25 at 12:00 UTC' },
    { repeat: { cron: '0 9 * * 1-5', delay: '30s' }, words: 'weekdays at 09:00 UTC, delay 30 s' },
    { repeat: { cron: '0 9 1-7 * 1' }, words: 'cron "0 9 1-7 * 1" (UTC)' },
    { repeat: { days: 1 }, words: 'every day' },
    { repeat: { hours: 2, limit: 5 }, words: 'every 2 hours, 5 times at most' },
    { repeat: 'P1M7D', words: 'every month 7 days' },
    { repeat: { minutes: 30, until: '2030-01-01T00:00:00Z' }, words: 'every 30 minutes, until 2030-01-01T00:00:00Z' },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.repeat)} → ${c.words}`, () => {
      const parsed = parseRepeat(c.repeat);
      if (!parsed.ok) throw new Error(parsed.message);
      expect(repeatInWords(parsed.repeat)).to.equal(c.words);
    });
  }
});
