/**
 * The connection (src/store/connection.ts) against a small HTTP server standing in for CouchDB:
 * what one response sets, the next request of the same connection carries.
 */
import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config/load';
import { openConnection } from '../../src/store/connection';

describe('store: connection', () => {
  let server: http.Server;
  const cookies: Array<string | undefined> = [];

  before(async () => {
    server = http.createServer((req, res) => {
      cookies.push(req.headers.cookie);
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
      if (req.method === 'POST' && req.url === '/_session') {
        // As CouchDB sets it (nano keeps a cookie only with its Expires).
        headers['set-cookie'] = `AuthSession=abc123; Version=1; Expires=${new Date(Date.now() + 600_000).toUTCString()}; Max-Age=600; Path=/; HttpOnly`;
      }
      res.writeHead(200, headers).end(JSON.stringify({ ok: true, name: 'ann', roles: [] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(() => server.close());

  it("keeps CouchDB's AuthSession cookie from POST /_session for every later request (the dashboard's sign-in)", async () => {
    const { port } = server.address() as AddressInfo;
    const config = parseConfig({ couchdb: { url: `http://127.0.0.1:${port}`, db: 'tasks' } }, { file: '(test)', base: process.cwd() });
    const conn = openConnection(config);
    try {
      await conn.request({ method: 'POST', root: true, path: '_session', body: { name: 'ann', password: 'pw' } });
      await conn.request({ path: '' });
      await conn.request({ path: '_all_docs' });
    } finally {
      conn.close();
    }
    expect(cookies).to.deep.equal([undefined, 'AuthSession=abc123', 'AuthSession=abc123']);
  });
});
