import { expect } from 'chai';
import { dashboardMayRequest } from '../../src/ui/dashboard-connection';
import { checkTaskId, isTaskDoc } from '../../src/ui/dashboard-data';
import { allowedHosts, checkAllowedHost, hostAllowed, parseHost, sameOrigin, tokenMatches } from '../../src/ui/request-guard';
import { AfterError } from '../../src/errors';

const PORT = 5990;

describe('dashboard: who may talk to it', () => {
  describe('Host, whatever address the dashboard binds', () => {
    const cases: Array<{ bind: string; extra?: string[]; host: string | undefined; ok: boolean }> = [
      { bind: '127.0.0.1', host: `127.0.0.1:${PORT}`, ok: true },
      { bind: '127.0.0.1', host: `localhost:${PORT}`, ok: true },
      { bind: '127.0.0.1', host: `LOCALHOST:${PORT}`, ok: true },
      { bind: '127.0.0.1', host: `[::1]:${PORT}`, ok: true },
      { bind: '127.0.0.1', host: 'localhost', ok: true },
      { bind: '127.0.0.1', host: `localhost:${PORT + 1}`, ok: false },
      { bind: '127.0.0.1', host: `rebind.evil.test:${PORT}`, ok: false },
      { bind: '127.0.0.1', host: undefined, ok: false },
      { bind: '127.0.0.1', host: '', ok: false },
      { bind: '127.0.0.1', host: `127.0.0.1:${PORT}@evil.test`, ok: false },
      { bind: '127.0.0.1', host: `evil.test/127.0.0.1:${PORT}`, ok: false },
      // Bound elsewhere on loopback: the old check let any Host through here.
      { bind: '127.0.0.2', host: `rebind.evil.test:${PORT}`, ok: false },
      { bind: '127.0.0.2', host: `127.0.0.2:${PORT}`, ok: true },
      { bind: '127.0.0.2', host: `localhost:${PORT}`, ok: true },
      // Every interface: only the loopback names and --allowed-host; never the wildcard itself.
      { bind: '0.0.0.0', host: `rebind.evil.test:${PORT}`, ok: false },
      { bind: '0.0.0.0', host: `192.168.1.20:${PORT}`, ok: false },
      { bind: '0.0.0.0', host: `0.0.0.0:${PORT}`, ok: false },
      { bind: '0.0.0.0', host: `127.0.0.1:${PORT}`, ok: true },
      { bind: '0.0.0.0', extra: ['192.168.1.20'], host: `192.168.1.20:${PORT}`, ok: true },
      { bind: '0.0.0.0', extra: ['dash.example.com'], host: 'dash.example.com', ok: true },
      { bind: '0.0.0.0', extra: ['dash.example.com'], host: 'dash.example.com.', ok: true },
      { bind: '0.0.0.0', extra: ['dash.example.com'], host: 'evil.dash.example.com', ok: false },
      { bind: '0.0.0.0', extra: ['dash.example.com:8443'], host: 'dash.example.com:8443', ok: true },
      { bind: '0.0.0.0', extra: ['dash.example.com:8443'], host: 'dash.example.com', ok: false },
      { bind: '::', host: `rebind.evil.test:${PORT}`, ok: false },
      { bind: '::', host: `[::]:${PORT}`, ok: false },
      { bind: '::', host: `[::1]:${PORT}`, ok: true },
      { bind: '::1', host: `[::1]:${PORT}`, ok: true },
      { bind: '192.168.1.20', host: `192.168.1.20:${PORT}`, ok: true },
      { bind: '192.168.1.20', host: `rebind.evil.test:${PORT}`, ok: false },
      { bind: 'dash.lan', host: `dash.lan:${PORT}`, ok: true },
    ];
    for (const c of cases) {
      const extra = c.extra ? ` --allowed-host ${c.extra.join(',')}` : '';
      it(`bound to ${c.bind}${extra}: Host ${JSON.stringify(c.host)} is ${c.ok ? 'answered' : 'refused'}`, () => {
        expect(hostAllowed(c.host, allowedHosts(c.bind, c.extra), PORT)).to.equal(c.ok);
      });
    }

    const badNames = ['0.0.0.0', '*.example.com', 'evil test', 'a:b:c', 'http://x', 'x:0', 'x:70000', ''];
    for (const name of badNames) {
      it(`--allowed-host ${JSON.stringify(name)} is a usage error`, () => {
        expect(() => checkAllowedHost(name)).to.throw(AfterError).with.property('code', 'E_USAGE');
      });
    }

    it('parses host[:port] with IPv6 in brackets', () => {
      expect(parseHost('[::1]:5990')).to.deep.equal({ name: '[::1]', port: 5990 });
      expect(parseHost('Dash.Example.com')).to.deep.equal({ name: 'dash.example.com' });
    });
  });

  describe('Origin of an action', () => {
    const cases: Array<{ origin: string | undefined; host: string; ok: boolean }> = [
      { origin: `http://127.0.0.1:${PORT}`, host: `127.0.0.1:${PORT}`, ok: true },
      { origin: 'https://dash.example.com', host: 'dash.example.com', ok: true },
      { origin: `http://localhost:${PORT}`, host: `127.0.0.1:${PORT}`, ok: false },
      { origin: undefined, host: `127.0.0.1:${PORT}`, ok: false },
      { origin: 'null', host: `127.0.0.1:${PORT}`, ok: false },
      { origin: 'http://evil.example', host: `127.0.0.1:${PORT}`, ok: false },
      { origin: `file://127.0.0.1:${PORT}`, host: `127.0.0.1:${PORT}`, ok: false },
      { origin: 'not a url', host: `127.0.0.1:${PORT}`, ok: false },
    ];
    for (const c of cases) {
      it(`Origin ${JSON.stringify(c.origin)} to Host ${c.host} is ${c.ok ? 'the page' : 'refused'}`, () => {
        expect(sameOrigin(c.origin, c.host)).to.equal(c.ok);
      });
    }
  });

  it('the token matches only itself', () => {
    expect(tokenMatches('abc', 'abc')).to.equal(true);
    expect(tokenMatches('abd', 'abc')).to.equal(false);
    expect(tokenMatches('ab', 'abc')).to.equal(false);
    expect(tokenMatches(undefined, 'abc')).to.equal(false);
    expect(tokenMatches(['abc'], 'abc')).to.equal(false);
  });

  describe('task ids and task documents', () => {
    for (const id of ['_design/after', '_all_docs', '_local/x', '_changes', '', '.', '..']) {
      it(`${JSON.stringify(id)} is refused as a task id`, () => {
        expect(() => checkTaskId(id)).to.throw(AfterError).with.property('code', 'E_RESERVED_ID');
      });
    }
    it('an ordinary id is accepted', () => expect(checkTaskId('payroll-2024')).to.equal('payroll-2024'));
    it('only documents with a worker and a job or date are tasks', () => {
      expect(isTaskDoc({ _id: 'a', worker: 'w', job: 'j' })).to.equal(true);
      expect(isTaskDoc({ _id: 'a', worker: 'w', date: '2030-01-01' })).to.equal(true);
      expect(isTaskDoc({ _id: 'a', note: 'secret' })).to.equal(false);
      expect(isTaskDoc({ _id: '_design/after', worker: 'w', job: 'j' })).to.equal(false);
      expect(isTaskDoc({ _id: 'a', worker: 1, job: 'j' })).to.equal(false);
    });
  });

  describe('requests the dashboard may make to the database', () => {
    const db = 'tasks';
    const cases: Array<{ method?: string; path: string; root?: boolean; db?: string; qs?: Record<string, string>; body?: unknown; bodyJson?: string; ok: boolean }> = [
      { path: '', ok: true },
      // The lists, counts and schedules: views of After's design documents, never the documents.
      { path: '_design/after-lists/_view/by_status', ok: true },
      { path: '_design/after-status-date/_view/status-date', ok: true },
      { path: '_design/after-lists', ok: false },
      { method: 'PUT', path: '_design/after-lists/_view/by_status', ok: false },
      { path: '_design/other/_view/all', ok: false },
      // Search by id prefix: a range that cannot reach _design/ documents.
      { path: '_all_docs', qs: { startkey: 'payroll-', endkey: 'payroll-\ufff0' }, ok: true },
      { path: '_all_docs', qs: { startkey: '', endkey: '\ufff0' }, ok: false },
      { path: '_all_docs', qs: { startkey: '_design/', endkey: '_design/\ufff0' }, ok: false },
      { path: '_all_docs', qs: { startkey: 'a', endkey: '_design/\ufff0' }, ok: false },
      // Bulk actions: new revisions of existing tasks only.
      { method: 'POST', path: '_bulk_docs', body: { docs: [{ _id: 'a', _rev: '1-x', status: 'cancel' }, { _id: 'b', _rev: '2-y', _deleted: true }] }, ok: true },
      { method: 'POST', path: '_bulk_docs', body: { docs: [{ _id: 'a', status: 'waiting' }] }, ok: false },
      { method: 'POST', path: '_bulk_docs', body: { docs: [{ _id: '_design/after', _rev: '1-x' }] }, ok: false },
      { method: 'POST', path: '_bulk_docs', body: { docs: [] }, ok: false },
      // The same, with the body already serialised (store/bulk-docs.ts sends it so): its text is what is checked.
      { method: 'POST', path: '_bulk_docs', bodyJson: '{"docs":[{"_id":"a","_rev":"1-x","status":"cancel"}]}', ok: true },
      { method: 'POST', path: '_bulk_docs', bodyJson: '{"docs":[{"_id":"_design/after","_rev":"1-x"}]}', ok: false },
      { method: 'POST', path: '_bulk_docs', body: { docs: [{ _id: 'a', _rev: '1-x' }] }, bodyJson: '{"docs":[{"_id":"a"}]}', ok: false },
      { method: 'POST', path: '_bulk_docs', bodyJson: '{"docs":[', ok: false },
      // The charts: the run figures' database, read only.
      { db: 'tasks_stats', path: '_all_docs', ok: true },
      { db: 'tasks_stats', path: '_design/after-runs/_view/by_hour', ok: true },
      { db: 'tasks_stats', method: 'PUT', path: 'runs:x', ok: false },
      { db: 'tasks_stats', path: '_design/after-runs', ok: false },
      { path: '_changes', ok: true },
      { method: 'POST', path: '_find', ok: true },
      { path: '_design/after-stats/_view/by_worker_status', ok: true },
      { db: 'tasks_control', path: '_all_docs', ok: true },
      { db: 'tasks_control', method: 'PUT', path: encodeURIComponent('request:payroll-2024:ab12'), ok: true },
      { db: 'tasks_control', method: 'DELETE', path: encodeURIComponent('request:payroll-2024:ab12'), ok: true },
      { db: 'tasks_control', method: 'PUT', path: encodeURIComponent('pause:payroll'), ok: true },
      { db: 'tasks_control', method: 'DELETE', path: encodeURIComponent('pause:payroll'), ok: true },
      { db: 'tasks_control', path: encodeURIComponent('pause:payroll'), ok: true },
      { db: 'tasks_control', method: 'POST', path: encodeURIComponent('pause:payroll'), ok: false },
      { db: 'tasks_control', method: 'PUT', path: `${encodeURIComponent('pause:payroll')}/attachment`, ok: false },
      { db: 'tasks_control', method: 'PUT', path: 'pause:payroll', ok: false },
      { db: 'tasks_control', method: 'PUT', path: encodeURIComponent('instance:payroll:x'), ok: false },
      { db: 'tasks_control', method: 'DELETE', path: encodeURIComponent('instance:payroll:x'), ok: false },
      { db: 'tasks_control', path: encodeURIComponent('instance:payroll:x'), ok: false },
      { db: 'tasks_control', path: '_changes', ok: false },
      { db: 'tasks_other', path: '_all_docs', ok: false },
      { path: '_design/after/_view/by_worker_status', ok: false },
      { path: 'payroll-2024', ok: true },
      { method: 'PUT', path: 'payroll-2024', ok: true },
      { method: 'PUT', path: encodeURIComponent('a/b'), ok: true },
      { path: '_all_docs', ok: false },
      { path: '_design/after', ok: false },
      { method: 'PUT', path: '_design/after', ok: false },
      { method: 'PUT', path: '_design%2Fafter', ok: false },
      { method: 'PUT', path: '%5Fdesign%2Fafter', ok: false },
      { path: '_local/x', ok: false },
      { path: '..', ok: false },
      { method: 'DELETE', path: 'payroll-2024', ok: false },
      { method: 'POST', path: '', ok: false },
      { method: 'POST', path: '_bulk_docs', ok: false },
      { method: 'PUT', path: '', ok: false },
      { path: '_security', ok: false },
      { root: true, path: '_all_dbs', ok: false },
      { root: true, path: '_users/_all_docs', ok: false },
      { root: true, path: 'tasks/_all_docs', ok: false },
      { root: true, path: 'tasks_control/_all_docs', ok: false },
      { root: true, method: 'PUT', path: 'tasks_control/x', ok: false },
    ];
    for (const c of cases) {
      const what = `${c.method ?? 'GET'} ${c.root ? '/' : `/${c.db ?? db}/`}${c.path}`;
      it(`${what} is ${c.ok ? 'allowed' : 'refused'}`, () => {
        expect(dashboardMayRequest(db, c)).to.equal(c.ok);
      });
    }
  });
});
