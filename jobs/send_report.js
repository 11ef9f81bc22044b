'use strict';
/**
 * send_report — an example job in the modern form: an async function that returns its result
 * and throws on failure.
 *
 *   {"worker": "reports", "date": "2030-01-01T08:00:00Z", "repeat": {"days": 1},
 *    "job": {"name": "send_report", "arguments": ["ops@example.com", "daily"]}}
 *
 * Arguments: [recipient, period] — period is "daily" (default) or "weekly".
 *
 * This example needs no other service: it builds the report's subject and text and returns
 * them as its result (stored in the task's `result`). A real one would query its data for the
 * period and hand the text to a mail service, passing ctx.signal to every request (fetch,
 * database clients) so a timeout or a cancel stops it.
 */

const PERIOD_DAYS = { daily: 1, weekly: 7 };

module.exports = async function sendReport(task, ctx) {
  const [recipient, period = 'daily'] = (task.job && task.job.arguments) || [];
  if (typeof recipient !== 'string' || !recipient.includes('@')) {
    throw new Error('send_report: the first argument must be the e-mail address to send the report to');
  }
  const days = PERIOD_DAYS[period];
  if (!days) throw new Error(`send_report: period must be "daily" or "weekly", not ${JSON.stringify(period)}`);

  // Stop at once if the run was canceled or timed out while waiting for its turn.
  ctx.signal.throwIfAborted();

  const end = new Date(typeof task.date === 'string' ? task.date : Date.now());
  const start = new Date(end.getTime() - days * 24 * 60 * 60 * 1000);
  const subject = `${period} report ${start.toISOString().slice(0, 10)} – ${end.toISOString().slice(0, 10)}`;
  ctx.log.info(`send_report: would send "${subject}" to ${recipient}`);

  return {
    sent: false,
    to: recipient,
    subject,
    text: `Report for ${task._id}, covering ${days} day(s) up to ${end.toISOString()}.`,
    note: 'example job: a real send_report would mail this text',
  };
};
