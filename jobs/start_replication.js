'use strict';
/**
 * start_replication — an example job in the original EventEmitter form.
 *
 * The README's first example schedules it:
 *
 *   {"worker": "manobi", "date": "2013-01-12",
 *    "job": {"name": "start_replication", "arguments": [2, 3, "test"]}}
 *
 * Arguments: [source, target, label]. `source` and `target` name two databases (a name, or a
 * number such as a shard or node id); `label` names the replication.
 *
 * This example needs no other service, so it does not replicate: it checks its arguments and
 * reports the plan of the replication it would start, with task.emit('done', plan). A real
 * one would POST {"source": ..., "target": ..., "create_target": true} to CouchDB's
 * /_replicate (or write a document to /_replicator), then emit 'done' with the replication id
 * CouchDB answers, or 'error' with CouchDB's reason.
 *
 * The form: `task` is an EventEmitter that also carries the task document's fields
 * (`task._id`, `task.job`, ...). Call task.emit('done', result) or task.emit('error', err)
 * exactly once; only the first call counts. `task.signal` is aborted if the run times out or
 * the task is canceled.
 */

function isEndpoint(value) {
  return (typeof value === 'string' && value.trim() !== '') || (Number.isInteger(value) && value >= 0);
}

module.exports = function startReplication(task) {
  const [source, target, label] = (task.job && task.job.arguments) || [];

  if (!isEndpoint(source) || !isEndpoint(target)) {
    task.emit('error', new Error('start_replication: arguments must be [source, target, label]; source and target are database names or non-negative integers'));
    return;
  }
  if (source === target) {
    task.emit('error', new Error(`start_replication: source and target are both ${JSON.stringify(source)}`));
    return;
  }
  if (label !== undefined && typeof label !== 'string') {
    task.emit('error', new Error('start_replication: the label (third argument) must be a string'));
    return;
  }

  task.emit('done', {
    planned: true,
    replicated: false,
    replication: { source, target, label: label || `${source}-to-${target}` },
    note: 'example job: a real start_replication would POST this to CouchDB /_replicate',
  });
};
