import { expect } from 'chai';
import { pbkdf2Sync } from 'node:crypto';
import { membershipRefusal, userFromDocument, type Requester, type SecurityObject } from '../../src/embedded/database-access';
import { selectorFromQuery, selectorProblem } from '../../src/embedded/query-rules';

describe('embedded server: who may use a database (CouchDB 3 rules)', () => {
  const anonymous: Requester = { kind: 'anonymous' };
  const app: Requester = { kind: 'user', name: 'app', roles: [] };
  const ops: Requester = { kind: 'user', name: 'carol', roles: ['ops'] };
  const stranger: Requester = { kind: 'user', name: 'mallory', roles: ['guests'] };
  const admin: Requester = { kind: 'admin', name: 'after-admin' };
  const members: SecurityObject = { admins: { names: ['dba'], roles: [] }, members: { names: ['app'], roles: ['ops'] } };
  const dba: Requester = { kind: 'user', name: 'dba', roles: [] };
  const cases: Array<[name: string, requester: Requester, security: SecurityObject | null, status: number | null]> = [
    ['anyone, when no members are set', anonymous, {}, null],
    ['anyone, with empty member lists', stranger, { admins: { names: [], roles: [] }, members: { names: [], roles: [] } }, null],
    ['anyone, when there is no _security at all', anonymous, null, null],
    ['a member by name', app, members, null],
    ['a member by role', ops, members, null],
    ['a database admin (named under admins)', dba, members, null],
    ['the server admin', admin, members, null],
    ['the server admin, even where only _admin is a member', admin, { members: { roles: ['_admin'] } }, null],
    ['not anonymous, on a members-only database: 401', anonymous, members, 401],
    ['not a named user who is no member: 403', stranger, members, 403],
    ['not a user, where only _admin is a member', app, { members: { roles: ['_admin'] } }, 403],
    ['not a user whose name is a role of the members', { kind: 'user', name: 'ops', roles: [] }, members, 403],
    ['not by malformed lists, which list nobody', stranger, { members: { names: 'mallory', roles: [7, null] } }, null],
    ['not by malformed lists beside a valid one', stranger, { members: { names: ['app', 7], roles: 'guests' } }, 403],
  ];
  for (const [name, requester, security, status] of cases) {
    it(`${status === null ? 'lets in' : 'refuses'} ${name}`, () => {
      const refusal = membershipRefusal(requester, security);
      expect(refusal?.status ?? null).to.equal(status);
      if (refusal) expect(refusal.error).to.equal(status === 401 ? 'unauthorized' : 'forbidden');
    });
  }
});

describe('embedded server: a user\'s password, checked as pouchdb-auth checks it', () => {
  const salt = '0123456789abcdef0123456789abcdef';
  const doc = { name: 'app', roles: ['ops', 7], password_scheme: 'pbkdf2', iterations: 10, salt, derived_key: pbkdf2Sync('s3cret', salt, 10, 20, 'sha1').toString('hex') };

  it('gives the user and their roles for the right password', () => {
    expect(userFromDocument(doc, 'app', 's3cret')).to.deep.equal({ kind: 'user', name: 'app', roles: ['ops'] });
  });

  it('gives no one for a wrong password, another name, no document or a scheme it does not know', () => {
    expect(userFromDocument(doc, 'app', 's3cret!')).to.equal(null);
    expect(userFromDocument(doc, 'other', 's3cret')).to.equal(null);
    expect(userFromDocument(null, 'app', 's3cret')).to.equal(null);
    expect(userFromDocument({ ...doc, password_scheme: 'simple' }, 'app', 's3cret')).to.equal(null);
    expect(userFromDocument({ ...doc, iterations: 1e9 }, 'app', 's3cret')).to.equal(null);
    expect(userFromDocument({ ...doc, derived_key: 'zz' }, 'app', 's3cret')).to.equal(null);
  });

  it('computes the key pouchdb-auth computes for a user it created', async () => {
    const auth = require('pouchdb-auth/lib/utils') as { hashPassword(password: string, salt: string, iterations: number): Promise<string> };
    const theirs = { ...doc, derived_key: await auth.hashPassword('pw', salt, 10) };
    expect(userFromDocument(theirs, 'app', 'pw')).to.not.equal(null);
  });
});

describe('embedded server: Mango selectors a non-admin may send', () => {
  const cases: Array<[name: string, selector: unknown, refused: boolean]> = [
    ['an equality', { worker: 'w' }, false],
    ['a range and $in, as After queries', { worker: 'w', status: { $in: ['waiting', 'scheduled'] }, date: { $lte: '2026' } }, false],
    ['no selector', undefined, false],
    ['$regex on a field', { s: { $regex: '^(a+)+$' } }, true],
    ['$regex under $or', { $or: [{ a: 1 }, { s: { $regex: 'x' } }] }, true],
    ['$regex under $not and $elemMatch', { list: { $elemMatch: { $not: { $regex: 'x' } } } }, true],
    ['$regex deep in an array', { $and: [[[[{ s: { $regex: 'x' } }]]]] }, true],
    ['a field named like the operator\'s value', { $regexp: 'x', name: '$regex' }, false],
  ];
  for (const [name, selector, refused] of cases) {
    it(`${refused ? 'refuses' : 'takes'} ${name}`, () => {
      const problem = selectorProblem(selector);
      expect(problem !== null).to.equal(refused);
      if (problem) expect(problem).to.match(/^\$regex is refused/);
    });
  }

  it('walks a deeply nested selector without overflowing the stack', () => {
    let selector: unknown = { s: { $regex: 'x' } };
    for (let i = 0; i < 100_000; i++) selector = { $and: [selector] };
    expect(selectorProblem(selector)).to.match(/\$regex/);
  });

  it('reads a `selector` query parameter as express-pouchdb does', () => {
    expect(selectorFromQuery('{"s":{"$regex":"x"}}')).to.deep.equal({ s: { $regex: 'x' } });
    expect(selectorFromQuery('not json')).to.equal('not json');
    expect(selectorFromQuery(null)).to.equal(undefined);
  });
});
