'use strict';
// The bench's job: notes the moment it starts, from inside the job, and returns it with the
// task's date. The bench reads both from each task's `result` once the run is recorded, so
// lateness is measured where a user would see it (job start − date), not at the worker's
// claim or at the finish write.
module.exports = async function stamp(task) {
  return { started_at_ms: Date.now(), date: task.date };
};
