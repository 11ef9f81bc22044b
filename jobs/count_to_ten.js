'use strict';
// A job that decides its next run, as Periodic's jobs do with `schedLater`: it runs ten times,
// `every` apart (job.arguments[0], default "1m"), then stops. The task needs no `repeat`:
//
//   {"worker": "demo", "date": "2030-01-01T09:00:00Z", "job": {"name": "count_to_ten", "arguments": ["30s"]}}
//
// `ctx.runs` is the number of this run (1 for the first); `ctx.later(delay, result)` ends the run
// as a success and asks for the next one after `delay`; a plain return ends the task (`done`).
module.exports = async function countToTen(task, ctx) {
  const [every = '1m'] = task.job.arguments;
  ctx.log.info(`run ${ctx.runs} of 10`);
  if (ctx.runs < 10) return ctx.later(every, { counted: ctx.runs });
  return { counted: ctx.runs, finished: true };
};
