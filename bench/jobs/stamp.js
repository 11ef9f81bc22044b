'use strict';
// The bench's job: notes the moment it starts, from inside the job, and returns it with the
// task's date. The bench reads both from each task's `result` once the run is recorded, so
// lateness is measured where a user would see it (job start − date), not at the worker's
// claim or at the finish write.
//
// With BENCH_STARTS_DIR set (W5), every start is also appended to a file of this process's
// own, `<dir>/starts-<pid>.txt`, one "<task id> <start ms>" line each: the task's result keeps
// only the last run, these files keep them all, so a task run twice shows up.
const fs = require('node:fs');
const path = require('node:path');

const startsFile = process.env.BENCH_STARTS_DIR ? path.join(process.env.BENCH_STARTS_DIR, `starts-${process.pid}.txt`) : undefined;

module.exports = async function stamp(task) {
  const startedAtMs = Date.now();
  if (startsFile) fs.appendFileSync(startsFile, `${task._id} ${startedAtMs}\n`);
  return { started_at_ms: startedAtMs, date: task.date };
};
