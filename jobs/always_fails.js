'use strict';
/**
 * always_fails — an example job that fails, to show the error path:
 *
 *   {"worker": "manobi", "date": "2013-01-12", "job": "always_fails",
 *    "retry": {"limit": 2, "delay": {"seconds": 10}}}
 *
 * It throws an Error with a `code`. The worker stores `{message, code}` in the task's `error`
 * field; with `retry` it runs again after the delay, and after the last failure the task's
 * status becomes "error".
 */
module.exports = async function alwaysFails(task) {
  const err = new Error(`always_fails: task ${task._id} failed on purpose`);
  err.code = 'E_ALWAYS_FAILS';
  throw err;
};
