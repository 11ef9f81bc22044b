/**
 * Members-only means members-only on every route (issue 19, row 1), and no query freezes the
 * server (row 1b).
 *
 * One table: every route express-pouchdb serves × {anonymous, a member's name with a wrong
 * password, a user who is not a member, a member, the admin}, with `_security` members set and
 * with none. The same table runs against Apache CouchDB 3.4.3 (`make test-couchdb`): a row says
 * where the embedded server answers otherwise, and why. Before issue 19, `_find`, `_explain`,
 * `GET _index`, `_bulk_get` and `_bulk_docs` answered everyone on a members-only database, and
 * an anonymous continuous `_changes` crashed the embedded server.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { useSuiteDb } from '../helpers';
import { createUser, sendRaw, splitUrl, type RawAnswer } from '../helpers/raw-http';

type Who = 'anonymous' | 'wrong password' | 'non-member' | 'member' | 'admin';
type Mode = 'members' | 'open';
/** `allowed`: neither 401 nor 403 nor a 5xx (a 404 or a 409 of its own is still an answer). */
type Expected = 'allowed' | number;
type Kind = 'embedded' | 'couchdb';

interface Route {
  method: string;
  /** `who` makes each identity's document ids its own. */
  path: (who: string) => string;
  body?: (who: string) => unknown;
  headers?: Record<string, string>;
  /** A feed: only its status is read. */
  stream?: boolean;
  /** Where a server answers otherwise than the rule (members: 401 anonymous, 403 named non-members). */
  differs?: Partial<Record<Kind, { why: string; answers: Partial<Record<Mode, Partial<Record<Who, Expected>>>> }>>;
}

const WHO: readonly Who[] = ['anonymous', 'wrong password', 'non-member', 'member', 'admin'];
/** A value only the stored documents hold: no refused answer may carry it. */
const SECRET = `api-key-${randomBytes(8).toString('hex')}`;
const slug = (who: string): string => who.replace(/\s+/g, '-');

/** Design documents are the server admin's on the embedded server; CouchDB tries the write and fails with a 500. */
const INDEX_WRITE = {
  embedded: {
    why: 'only the server admin writes design documents on the embedded server',
    answers: { members: { member: 403 }, open: { anonymous: 401, 'non-member': 403, member: 403 } },
  },
  couchdb: {
    why: 'CouchDB lets a member (or anyone, with no members) try, and answers 500 error_saving_ddoc: nothing is written',
    answers: { members: { member: 500 }, open: { anonymous: 500, 'non-member': 500, member: 500 } },
  },
} as const;

/** pouchdb-security reads the members from `_local/_security` on the embedded server; on CouchDB it is an ordinary local document. */
const SECURITY_DOC_WRITE = {
  embedded: {
    why: '_local/_security holds the members on the embedded server: only its admin may write it',
    answers: { members: { member: 403 }, open: { anonymous: 401, 'non-member': 403, member: 403 } },
  },
} as const;

const ROUTES: Route[] = [
  { method: 'GET', path: () => '' },
  { method: 'POST', path: () => '', body: (who) => ({ _id: `${slug(who)}-post`, worker: 'w' }) },
  { method: 'GET', path: () => '/secret-task' },
  { method: 'HEAD', path: () => '/secret-task' },
  { method: 'PUT', path: (who) => `/${slug(who)}-put`, body: () => ({ worker: 'w' }) },
  { method: 'DELETE', path: () => '/no-such-task?rev=1-a' },
  { method: 'COPY', path: () => '/secret-task', headers: { destination: 'copy-target' } },
  { method: 'GET', path: () => '/_all_docs?include_docs=true' },
  { method: 'POST', path: () => '/_all_docs?include_docs=true', body: () => ({ keys: ['secret-task'] }) },
  { method: 'POST', path: () => '/_find', body: () => ({ selector: { worker: 'w' }, limit: 10 }) },
  { method: 'POST', path: () => '/_explain', body: () => ({ selector: { worker: 'w' } }) },
  { method: 'GET', path: () => '/_index' },
  { method: 'POST', path: () => '/_index', body: (who) => ({ index: { fields: [`f-${slug(who)}`] }, ddoc: `idx-${slug(who)}` }), differs: INDEX_WRITE },
  { method: 'POST', path: () => '/_bulk_get', body: () => ({ docs: [{ id: 'secret-task' }] }) },
  { method: 'POST', path: () => '/_bulk_docs', body: (who) => ({ docs: [{ _id: `${slug(who)}-bulk`, worker: 'w' }] }) },
  { method: 'GET', path: () => '/_changes?include_docs=true' },
  { method: 'GET', path: () => '/_changes?feed=longpoll&include_docs=true' },
  { method: 'GET', path: () => '/_changes?feed=continuous&include_docs=true', stream: true },
  { method: 'GET', path: () => '/_changes?feed=eventsource&include_docs=true', stream: true },
  { method: 'POST', path: () => '/_changes?filter=_doc_ids&include_docs=true', body: () => ({ doc_ids: ['secret-task'] }) },
  { method: 'POST', path: () => '/_revs_diff', body: () => ({ 'secret-task': ['1-0123456789abcdef0123456789abcdef'] }) },
  { method: 'POST', path: () => '/_missing_revs', body: () => ({ 'secret-task': ['1-0123456789abcdef0123456789abcdef'] }) },
  { method: 'GET', path: () => '/_local/checkpoint' },
  { method: 'PUT', path: (who) => `/_local/${slug(who)}-checkpoint`, body: () => ({ seq: 1 }) },
  { method: 'DELETE', path: () => '/_local/no-such-checkpoint' },
  { method: 'PUT', path: () => '/_local/_security', body: () => ({ security: {} }), differs: SECURITY_DOC_WRITE },
  { method: 'GET', path: () => '/secret-task/notes.txt' },
  { method: 'PUT', path: (who) => `/${slug(who)}-attachment/notes.txt`, body: () => 'a note', headers: { 'content-type': 'text/plain' } },
  { method: 'DELETE', path: () => '/secret-task/notes.txt?rev=1-0123456789abcdef0123456789abcdef' },
  { method: 'GET', path: () => '/_design/check' },
  { method: 'GET', path: () => '/_design/check/_info' },
  { method: 'GET', path: () => '/_design/check/_view/ids?include_docs=true' },
  { method: 'POST', path: () => '/_design/check/_view/ids?include_docs=true', body: () => ({ keys: ['secret-task'] }) },
  { method: 'GET', path: () => '/_design_docs' },
  { method: 'GET', path: () => '/_local_docs' },
  { method: 'GET', path: () => '/_security' },
  { method: 'POST', path: () => '/_ensure_full_commit', body: () => ({}) },
];

function expectedAnswer(route: Route, kind: Kind, mode: Mode, who: Who): Expected {
  if (who === 'wrong password') return 401;
  const differs = route.differs?.[kind]?.answers[mode]?.[who];
  if (differs !== undefined) return differs;
  if (who === 'admin' || who === 'member' || mode === 'open') return 'allowed';
  return who === 'anonymous' ? 401 : 403;
}

describe('database access: _security members on every route (issue 19, row 1)', function () {
  this.timeout(240_000);
  const removeUsers: Array<() => Promise<void>> = [];
  // Before useSuiteDb: the users live in the server's _users and go while the server still runs.
  after(async () => {
    for (const remove of removeUsers) await remove();
  });
  const db = useSuiteDb({ init: false });
  const run = randomBytes(4).toString('hex');
  const memberRole = `after-test-members-${run}`;
  let origin: string;
  let admin: [string, string];
  let intruders = 0;

  const users = {
    member: { name: `app-${run}`, password: `member-${run}` },
    nonMember: { name: `other-${run}`, password: `other-${run}` },
  };

  /** Credentials for each identity; a wrong password comes from a fresh member's name each time (CouchDB locks a name out after 5). */
  async function credentialsOf(who: Who): Promise<readonly [string, string] | undefined> {
    switch (who) {
      case 'anonymous':
        return undefined;
      case 'wrong password': {
        const name = `intruder-${run}-${++intruders}`;
        removeUsers.push(await createUser(db, { name, password: 'the-right-one', roles: [memberRole] }));
        return [name, 'a-wrong-one'];
      }
      case 'non-member':
        return [users.nonMember.name, users.nonMember.password];
      case 'member':
        return [users.member.name, users.member.password];
      case 'admin':
        return admin;
    }
  }

  const asAdmin = (method: string, path: string, body?: unknown): Promise<RawAnswer> =>
    sendRaw(origin, method, `/${db.dbName}${path}`, { auth: admin, ...(body !== undefined && { body }) });

  const setMembers = async (mode: Mode): Promise<void> => {
    const members = mode === 'members' ? { names: [users.member.name], roles: [memberRole] } : { names: [], roles: [] };
    const set = await asAdmin('PUT', '/_security', { admins: { names: [], roles: [] }, members });
    expect(set.status, JSON.stringify(set.body)).to.equal(200);
  };

  before(async () => {
    const split = splitUrl(db.adminUrl);
    origin = split.origin;
    admin = split.auth!;
    expect((await asAdmin('PUT', '')).status).to.be.oneOf([201, 202]);
    removeUsers.push(await createUser(db, { ...users.member, roles: [] }));
    removeUsers.push(await createUser(db, { ...users.nonMember, roles: [] }));
    const task = await asAdmin('PUT', '/secret-task', { worker: 'w', job: 'webhook', data: { api_key: SECRET } });
    expect(task.status).to.be.oneOf([201, 202]);
    const attached = await sendRaw(origin, 'PUT', `/${db.dbName}/secret-task/notes.txt?rev=${task.body.rev}`, { auth: admin, body: SECRET, headers: { 'content-type': 'text/plain' } });
    expect(attached.status).to.be.oneOf([201, 202]);
    expect((await asAdmin('PUT', '/_local/checkpoint', { seq: SECRET })).status).to.be.oneOf([201, 202]);
    const view = await asAdmin('PUT', '/_design/check', { views: { ids: { map: 'function (doc) { emit(doc._id, null); }' } } });
    expect(view.status).to.be.oneOf([201, 202]);
  });

  for (const mode of ['members', 'open'] as const) {
    describe(mode === 'members' ? 'with _security members set' : 'with no members', () => {
      before(() => setMembers(mode));

      for (const route of ROUTES) {
        const label = `${route.method} /<db>${route.path('<who>')}`;
        it(`${label} answers each requester as CouchDB does${route.differs ? ' (see the row for where servers differ)' : ''}`, async function () {
          const differs = route.differs?.[db.kind as Kind];
          const seen: string[] = [];
          for (const who of WHO) {
            const auth = await credentialsOf(who);
            const answer = await sendRaw(origin, route.method, `/${db.dbName}${route.path(who)}`, {
              ...(auth && { auth }),
              ...(route.body && { body: route.body(who) }),
              ...(route.headers && { headers: route.method === 'COPY' ? { destination: `${slug(who)}-copy` } : route.headers }),
              ...(route.stream && { stream: true }),
            });
            const expected = expectedAnswer(route, db.kind as Kind, mode, who);
            seen.push(`${who}: ${answer.status}`);
            const context = `${label} as ${who} (${mode}${differs ? `; ${differs.why}` : ''}): ${JSON.stringify(answer.body)?.slice(0, 200)}; seen ${seen.join(', ')}`;
            if (expected === 'allowed') {
              expect(answer.status, context).to.not.be.oneOf([401, 403]);
              expect(answer.status, context).to.be.below(500);
              continue;
            }
            expect(answer.status, context).to.equal(expected);
            if ((expected === 401 || expected === 403) && route.method !== 'HEAD') {
              expect(answer.body?.error, context).to.equal(expected === 401 ? 'unauthorized' : 'forbidden');
              expect(JSON.stringify(answer.body), context).to.not.include(SECRET);
            }
          }
        });
      }

      it('stored nothing that a refused requester sent, and kept the members', async () => {
        const all = await asAdmin('GET', '/_all_docs');
        const ids: string[] = all.body.rows.map((row: { id: string }) => row.id);
        const refused = mode === 'members' ? ['anonymous', 'wrong-password', 'non-member'] : ['wrong-password'];
        expect(ids.filter((id) => refused.some((who) => id.startsWith(`${who}-`)))).to.deep.equal([]);
        const indexes = await asAdmin('GET', '/_index');
        const indexOwners = indexes.body.indexes.map((index: { ddoc: string | null }) => index.ddoc).filter(Boolean);
        expect(indexOwners).to.deep.equal(['_design/idx-admin']);
        const security = await asAdmin('GET', '/_security');
        expect(security.body.members.names).to.deep.equal(mode === 'members' ? [users.member.name] : []);
        if (mode === 'members') expect((await sendRaw(origin, 'GET', `/${db.dbName}/secret-task`)).status).to.equal(401);
      });
    });
  }
});

describe('database access: a pathological $regex does not freeze the server (issue 19, row 1b)', function () {
  this.timeout(60_000);
  const db = useSuiteDb({ init: false });
  let origin: string;
  let admin: [string, string];
  // 27 "a" and a character that fails `$`: a backtracking engine tries 2^27 ways.
  const evilString = `${'a'.repeat(27)}!`;
  const evilFind = { selector: { s: { $regex: '^(a+)+$' } } };

  before(async () => {
    const split = splitUrl(db.adminUrl);
    origin = split.origin;
    admin = split.auth!;
    expect((await sendRaw(origin, 'PUT', `/${db.dbName}`, { auth: admin })).status).to.be.oneOf([201, 202]);
    expect((await sendRaw(origin, 'PUT', `/${db.dbName}/evil`, { auth: admin, body: { s: evilString } })).status).to.be.oneOf([201, 202]);
    // A database open to everyone, as the quick start leaves it.
    await sendRaw(origin, 'PUT', `/${db.dbName}/_security`, { auth: admin, body: { admins: { names: [], roles: [] }, members: { names: [], roles: [] } } });
  });

  it('answers GET / within 100 ms all the while a non-admin\'s $regex query is in flight', async () => {
    // On CouchDB the anonymous query runs (Erlang's re, with a match limit) beside other
    // requests; on the embedded server it is refused at once with a reason. Before issue 19 it
    // ran on the embedded server's one thread for seconds, and every request waited.
    let answered = false;
    const query = sendRaw(origin, 'POST', `/${db.dbName}/_find`, { body: evilFind }).finally(() => (answered = true));
    // One GET / after another (each waits for the last), every 20 ms, until the query has
    // answered and a few more have gone through.
    const welcomes: RawAnswer[] = [];
    while (!answered || welcomes.length < 5) {
      welcomes.push(await sendRaw(origin, 'GET', '/'));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const found = await query;
    const slowest = Math.max(...welcomes.map((answer) => answer.ms));
    expect(welcomes.every((answer) => answer.status === 200)).to.equal(true);
    expect(slowest, `the slowest of ${welcomes.length} GET / took ${slowest} ms beside the $regex query (${found.status} in ${found.ms} ms)`).to.be.at.most(100);
    if (db.kind === 'embedded') {
      expect(found.status).to.equal(400);
      expect(found.body.reason).to.match(/\$regex/);
    } else {
      expect(found.status).to.equal(200);
      expect(found.body.docs).to.deep.equal([]);
    }
  });

  it('refuses $regex to non-admins wherever a selector goes on the embedded server (_find, _explain, _changes), and takes it from the admin', async function () {
    if (db.kind !== 'embedded') this.skip();
    const nested = { selector: { $or: [{ x: 1 }, { $not: { s: { $regex: 'a' } } }] } };
    const selectorParam = encodeURIComponent(JSON.stringify(evilFind.selector));
    const attempts = [
      await sendRaw(origin, 'POST', `/${db.dbName}/_find`, { body: evilFind }),
      await sendRaw(origin, 'POST', `/${db.dbName}/_find`, { body: nested }),
      await sendRaw(origin, 'POST', `/${db.dbName}/_explain`, { body: evilFind }),
      await sendRaw(origin, 'GET', `/${db.dbName}/_changes?selector=${selectorParam}`),
      await sendRaw(origin, 'POST', `/${db.dbName}/_changes?selector=${selectorParam}`, { body: {} }),
    ];
    for (const answer of attempts) {
      expect(answer.status, JSON.stringify(answer.body)).to.equal(400);
      expect(answer.body.reason).to.match(/\$regex is refused/);
    }
    // The admin's own query (nothing pathological in it) still runs.
    const adminFind = await sendRaw(origin, 'POST', `/${db.dbName}/_find`, { auth: admin, body: { selector: { s: { $regex: '^a+!$' } } } });
    expect(adminFind.status).to.equal(200);
    expect(adminFind.body.docs.map((doc: { _id: string }) => doc._id)).to.deep.equal(['evil']);
  });
});
