/**
 * listTasks reads one `_find` per status at once. A task whose status changes between those
 * reads (a user's `cancel`, then the worker's `canceled`) is found under both statuses; the
 * list shows it once, as its later revision. The database here answers each status's `_find`
 * as it would have at the moment it was read.
 */
import { expect } from 'chai';
import type { Connection, RequestOptions, Response } from '../../src/store/connection';
import { listTasks } from '../../src/store/for-operators/task-queries';
import type { TaskDoc } from '../../src/types';

const asCanceled: TaskDoc = { _id: 'later', _rev: '4-b', worker: 'mailer', date: '2031-01-01T09:00:00Z', job: 'send', status: 'canceled' };
const asCancel: TaskDoc = { ...asCanceled, _rev: '3-a', status: 'cancel' };
const other: TaskDoc = { _id: 'first', _rev: '1-c', worker: 'mailer', date: '2030-01-01T09:00:00Z', job: 'send', status: 'waiting' };

/** Each status's `_find` answered from `byStatus`. */
function connectionAnswering(byStatus: Record<string, TaskDoc[]>): Connection {
  return {
    dbName: 'tasks',
    displayUrl: 'http://127.0.0.1:5984',
    clock: undefined as never,
    async request<T>(options: RequestOptions): Promise<Response<T>> {
      const status = (options.body as { selector: { status: string } }).selector.status;
      return { status: 200, body: { docs: byStatus[status] ?? [] } as T, headers: {} };
    },
    close() {},
  };
}

describe('listTasks', () => {
  it('lists a task whose status changed between the reads of two statuses once, as its later revision', async () => {
    for (const byStatus of [
      { cancel: [asCancel], canceled: [asCanceled], waiting: [other] },
      { canceled: [asCanceled], cancel: [asCancel], waiting: [other] },
    ]) {
      const listed = await listTasks(connectionAnswering(byStatus), { worker: 'mailer' });
      expect(listed.map((t) => `${t._id} ${t.status}`)).to.deep.equal(['first waiting', 'later canceled']);
    }
  });
});
