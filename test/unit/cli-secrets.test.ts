import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { secretsFile, takeSecretsIntoCustody, waitingMarker, writeSecrets } from '../../src/cli/secrets-file';
import { silentLogger } from '../../src/log';

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

describe('cli: a background worker keeps its secrets file', () => {
  let home: string;
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'after-custody-'))));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('reads it and removes it at start', async () => {
    const file = writeSecrets(home, 'w', { AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks' });
    const never = new Promise<never>(() => undefined);
    const custody = await takeSecretsIntoCustody(file, { worker: 'w', log: silentLogger(), stopRequested: never });
    custody!.release();
    expect(custody!.values).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks' });
    expect(fs.existsSync(file)).to.equal(false);
  });

  it('waits for a missing file, marked as waiting, and takes it when it comes', async () => {
    const file = secretsFile(home, 'w');
    const never = new Promise<never>(() => undefined);
    const taking = takeSecretsIntoCustody(file, { worker: 'w', log: silentLogger(), stopRequested: never });
    await waitUntil(() => fs.existsSync(waitingMarker(file)));
    writeSecrets(home, 'w', { AFTER_COUCHDB_URL: 'http://u:pw@db:5984' });
    const custody = await taking;
    custody!.release();
    expect(custody!.values).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984' });
    expect(fs.existsSync(file)).to.equal(false);
    expect(fs.existsSync(waitingMarker(file))).to.equal(false);
  });

  it('stops waiting when asked to stop', async () => {
    const file = secretsFile(home, 'w');
    let stop: () => void = () => undefined;
    const stopRequested = new Promise<void>((resolve) => (stop = resolve));
    const taking = takeSecretsIntoCustody(file, { worker: 'w', log: silentLogger(), stopRequested });
    await waitUntil(() => fs.existsSync(waitingMarker(file)));
    stop();
    expect(await taking).to.equal(undefined);
    expect(fs.existsSync(waitingMarker(file))).to.equal(false);
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
