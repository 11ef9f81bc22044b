import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { credentialSocketPath, receiveCredentials, sendCredentials } from '../../src/cli/credential-socket';
import { secretsFile, secretsToHand, takeSecrets } from '../../src/cli/secrets-file';
import { silentLogger } from '../../src/log';

describe('cli: the credentials a background worker is handed', () => {
  let home: string;
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'after-secrets-'))));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('are the URL and database from the environment, or from this command\'s own AFTER_SECRETS_FILE (the environment wins)', () => {
    expect(secretsToHand({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks', PATH: '/bin' })).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks' });
    const inherited = path.join(home, 'inherited.json');
    fs.writeFileSync(inherited, JSON.stringify({ AFTER_COUCHDB_URL: 'http://u:pw@old:5984', AFTER_DB: 'old' }));
    expect(secretsToHand({ AFTER_SECRETS_FILE: inherited, AFTER_DB: 'new' })).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@old:5984', AFTER_DB: 'new' });
    expect(secretsToHand({ PATH: '/bin' })).to.deep.equal({});
  });

  it('travel through a socket only this user may use, which is gone once they are taken: no file holds them', async () => {
    const socket = credentialSocketPath(home, 'nightly');
    const never = new Promise<never>(() => undefined);
    const receiving = receiveCredentials(socket, { worker: 'nightly', log: silentLogger(), stopRequested: never });
    expect(await sendCredentials(socket, { AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks' }, 5000)).to.equal(true);
    expect(await receiving).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984', AFTER_DB: 'tasks' });
    expect(fs.readdirSync(path.dirname(socket))).to.deep.equal([]);
    expect(fs.statSync(path.dirname(socket)).mode & 0o777).to.equal(0o700);
  });

  it('are sent once the worker listens (the command tries until then), and refused when what is sent holds none', async () => {
    const socket = credentialSocketPath(home, 'w');
    const never = new Promise<never>(() => undefined);
    const sending = sendCredentials(socket, { AFTER_COUCHDB_URL: 'http://u:pw@db:5984' }, 5000);
    const receiving = receiveCredentials(socket, { worker: 'w', log: silentLogger(), stopRequested: never });
    expect(fs.statSync(socket).mode & 0o777).to.equal(0o600);
    expect(await sendCredentials(socket, {}, 1000)).to.equal(false);
    expect(await sending).to.equal(true);
    expect(await receiving).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984' });
  });

  it('stop being waited for when the worker is asked to stop, and no one takes them then', async () => {
    const socket = credentialSocketPath(home, 'w');
    let stop: () => void = () => undefined;
    const stopRequested = new Promise<void>((resolve) => (stop = resolve));
    const receiving = receiveCredentials(socket, { worker: 'w', log: silentLogger(), stopRequested });
    stop();
    expect(await receiving).to.equal(undefined);
    expect(fs.existsSync(socket)).to.equal(false);
    expect(await sendCredentials(socket, { AFTER_DB: 'x' }, 300)).to.equal(false);
  });

  it('refuse an AFTER_HOME too long for a Unix socket, in one line', () => {
    expect(() => credentialSocketPath(`/${'h'.repeat(120)}`, 'w')).to.throw(/longer than a Unix socket path may be/);
  });
});

describe('cli: the secrets file of a worker an older After started', () => {
  let home: string;
  beforeEach(() => (home = fs.mkdtempSync(path.join(os.tmpdir(), 'after-custody-'))));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('is read and removed at start, and never written back, even when the process exits on a signal', () => {
    const file = secretsFile(home, 'w');
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, JSON.stringify({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984' }), { mode: 0o600 });
    const script = `
      const { takeSecrets } = require(${JSON.stringify(require.resolve('../../src/cli/secrets-file'))});
      const { silentLogger } = require(${JSON.stringify(require.resolve('../../src/log'))});
      takeSecrets(process.argv[1], { worker: 'w', log: silentLogger(), stopRequested: new Promise(() => {}) })
        .then((values) => { process.stdout.write(JSON.stringify(values)); process.kill(process.pid, 'SIGTERM'); });
      process.on('SIGTERM', () => process.exit(0));
    `;
    const result = require('node:child_process').spawnSync(process.execPath, ['-e', script, file], { encoding: 'utf8' }) as { status: number; stdout: string; stderr: string };
    expect(result.status, result.stderr).to.equal(0);
    expect(JSON.parse(result.stdout)).to.deep.equal({ AFTER_COUCHDB_URL: 'http://u:pw@db:5984' });
    expect(fs.readdirSync(path.dirname(file))).to.deep.equal([]);
  });

  it('missing, says how to hand them over now and waits for a stop', async () => {
    let stop: () => void = () => undefined;
    const stopRequested = new Promise<void>((resolve) => (stop = resolve));
    const taking = takeSecrets(secretsFile(home, 'w'), { worker: 'w', log: silentLogger(), stopRequested });
    stop();
    expect(await taking).to.equal(undefined);
  });
});
