import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { secretsFile, writeSecrets } from '../../src/cli/secrets-file';

describe('cli: secrets file of a background worker', () => {
  let home: string;
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'after-secrets-'))));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('holds the URL and database from the environment, readable by this user only', () => {
    const file = writeSecrets(home, 'nightly', { AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks', PATH: '/bin' });
    expect(file).to.equal(secretsFile(home, 'nightly'));
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks' });
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).to.equal(0o700);
  });

  it('tightens a file that existed with wider permissions', () => {
    fs.mkdirSync(path.join(home, 'secrets'), { mode: 0o755 });
    fs.writeFileSync(secretsFile(home, 'w'), '{}', { mode: 0o644 });
    writeSecrets(home, 'w', {});
    expect(fs.statSync(secretsFile(home, 'w')).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.join(home, 'secrets')).mode & 0o777).to.equal(0o700);
  });

  it('passes on what this command got through its own AFTER_SECRETS_FILE; the environment wins', () => {
    const inherited = path.join(home, 'inherited.json');
    fs.writeFileSync(inherited, JSON.stringify({ AFTER_COUCHDB_URL: 'http://u:pw@old:5984', AFTER_DB: 'old' }));
    const file = writeSecrets(home, 'w', { AFTER_SECRETS_FILE: inherited, AFTER_DB: 'new' });
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@old:5984', AFTER_DB: 'new' });
  });
});
