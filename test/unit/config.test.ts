import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { authenticatedUrl, scrubUrl } from '../../src/config/urls';
import { loadConfig, parseConfig } from '../../src/config/load';
import { lineAndColumn } from '../../src/config/json-file';
import { ConfigError } from '../../src/errors';

const where = { file: '/etc/after/config.json', base: '/etc/after' };

describe('config', () => {
  it('fills every default and resolves paths against the file\'s folder', () => {
    const config = parseConfig({}, where);
    expect(config.couchdb).to.deep.equal({ url: 'http://127.0.0.1:5984', db: 'tasks', username: '', password: '', validate_doc_update: false });
    expect(config.jobs).to.equal('/etc/after/jobs');
    expect(config.embedded).to.deep.equal({
      host: '127.0.0.1',
      port: 5984,
      dir: '/etc/after/data',
      allowed_hosts: [],
      cors_origins: [],
      max_document_size: 1_000_000,
      max_request_size: 64 * 1024 * 1024,
      compact_interval_ms: 300_000,
      warm_interval_ms: 1000,
    });
    expect(config.worker).to.include({ concurrency: 10, lease_ms: 30_000 });
    expect(config.stats).to.deep.equal({ record: true, retention_days: 90, flush_ms: 60_000 });
    expect(config.ui).to.deep.equal({ operator_role: 'after-operator', session_idle_ms: 1_800_000 });
    expect(config.log).to.deep.equal({ level: 'info', dir: '/etc/after/logs' });
    expect(Object.isFrozen(config.worker)).to.equal(true);
  });

  it('holds tasks to 1 MB by default, at most 8 MB, and the embedded server\'s door follows unless set', () => {
    expect(parseConfig({}, where).worker.max_task_size).to.equal(1_000_000);
    const bigger = parseConfig({ worker: { max_task_size: 4_000_000 } }, where);
    expect([bigger.worker.max_task_size, bigger.embedded.max_document_size]).to.deep.equal([4_000_000, 4_000_000]);
    const own = parseConfig({ worker: { max_task_size: 2_000_000 }, embedded: { max_document_size: 3_000_000 } }, where);
    expect([own.worker.max_task_size, own.embedded.max_document_size]).to.deep.equal([2_000_000, 3_000_000]);
    expect(() => parseConfig({ worker: { max_task_size: 8_000_001 } }, where)).to.throw(ConfigError, /worker\.max_task_size/);
  });

  it('takes a user for programs (worker.program_user, a command\'s user), null when none is given', () => {
    expect(parseConfig({}, where).worker.program_user).to.equal(null);
    const config = parseConfig({ worker: { program_user: 'after-jobs' }, commands: { backup: { argv: ['/bin/true'], user: 'backup' } } }, where);
    expect([config.worker.program_user, config.commands.backup!.user]).to.deep.equal(['after-jobs', 'backup']);
    expect(() => parseConfig({ worker: { program_user: 'no such user' } }, where)).to.throw(ConfigError, /worker\.program_user/);
    expect(() => parseConfig({ commands: { x: { argv: ['/bin/true'], user: 5 } } }, where)).to.throw(ConfigError, /commands\.x\.user/);
  });

  it('points at the embedded server when no CouchDB URL is configured', () => {
    const config = parseConfig({ embedded: { port: 15984 } }, where);
    expect(config.couchdb.url).to.equal('http://127.0.0.1:15984');
    const explicit = parseConfig({ couchdb: { url: 'http://couch.internal:5984' }, embedded: { port: 15984 } }, where);
    expect(explicit.couchdb.url).to.equal('http://couch.internal:5984');
  });

  it('lets the environment override the database, jobs and home', () => {
    const config = parseConfig(
      { couchdb: { url: 'http://db.example:5984', db: 'tasks' } },
      { ...where, env: { AFTER_COUCHDB_URL: 'https://u:p@couch.internal:6984', AFTER_DB: 'jobs_prod', AFTER_JOBS: '/srv/jobs', AFTER_HOME: '/var/lib/after' } },
    );
    expect(config.couchdb.url).to.equal('https://u:p@couch.internal:6984');
    expect(config.couchdb.db).to.equal('jobs_prod');
    expect(config.jobs).to.equal('/srv/jobs');
    expect(config.home).to.equal('/var/lib/after');
  });

  const bad: Array<{ name: string; raw: unknown; field: string; env?: Record<string, string> }> = [
    { name: 'a config that is not an object', raw: [], field: '(top level)' },
    { name: 'an unknown top-level setting', raw: { workers: {} }, field: 'workers' },
    { name: 'a typo inside a section', raw: { worker: { concurency: 3 } }, field: 'worker.concurency' },
    { name: 'a section that is not an object', raw: { couchdb: 'http://x' }, field: 'couchdb' },
    { name: 'a URL that is not http', raw: { couchdb: { url: 'ftp://x' } }, field: 'couchdb.url' },
    { name: 'a URL that does not parse', raw: { couchdb: { url: 'not a url' } }, field: 'couchdb.url' },
    { name: 'a bad AFTER_COUCHDB_URL', raw: {}, field: 'AFTER_COUCHDB_URL', env: { AFTER_COUCHDB_URL: 'localhost:5984' } },
    { name: 'a database name CouchDB refuses', raw: { couchdb: { db: 'Tasks' } }, field: 'couchdb.db' },
    { name: 'a port out of range', raw: { embedded: { port: 70000 } }, field: 'embedded.port' },
    { name: 'an allowed host with a path', raw: { embedded: { allowed_hosts: ['after.lan/x'] } }, field: 'embedded.allowed_hosts[0]' },
    { name: 'allowed hosts that are not a list', raw: { embedded: { allowed_hosts: 'after.lan' } }, field: 'embedded.allowed_hosts' },
    { name: 'a CORS origin with a path', raw: { embedded: { cors_origins: ['https://app.example.com/page'] } }, field: 'embedded.cors_origins[0]' },
    { name: 'a CORS origin "*"', raw: { embedded: { cors_origins: ['*'] } }, field: 'embedded.cors_origins[0]' },
    { name: 'a compaction every 10 ms', raw: { embedded: { compact_interval_ms: 10 } }, field: 'embedded.compact_interval_ms' },
    { name: 'run figures written every 10 ms', raw: { stats: { flush_ms: 10 } }, field: 'stats.flush_ms' },
    { name: 'an unknown dashboard setting', raw: { ui: { login: true } }, field: 'ui' },
    { name: 'a document size limit of 0', raw: { embedded: { max_document_size: 0 } }, field: 'embedded.max_document_size' },
    { name: 'a concurrency of zero', raw: { worker: { concurrency: 0 } }, field: 'worker.concurrency' },
    { name: 'a fractional lease', raw: { worker: { lease_ms: 1500.5 } }, field: 'worker.lease_ms' },
    { name: 'a lease given as a string', raw: { worker: { lease_ms: '30s' } }, field: 'worker.lease_ms' },
    { name: 'an unknown log level', raw: { log: { level: 'loud' } }, field: 'log.level' },
    { name: 'a jobs folder that is not a string', raw: { jobs: 42 }, field: 'jobs' },
    { name: 'a negative program timeout', raw: { worker: { program_timeout_ms: -1 } }, field: 'worker.program_timeout_ms' },
    { name: 'commands that are not an object', raw: { commands: [] }, field: 'commands' },
    { name: 'a command name with a slash', raw: { commands: { 'a/b': { argv: ['/bin/true'] } } }, field: 'commands.a/b' },
    { name: 'a command without argv', raw: { commands: { backup: {} } }, field: 'commands.backup.argv' },
    { name: 'a command with an empty argv', raw: { commands: { backup: { argv: [] } } }, field: 'commands.backup.argv' },
    { name: 'a command argv given as a string', raw: { commands: { backup: { argv: '/bin/backup --full' } } }, field: 'commands.backup.argv' },
    { name: 'a non-string argv entry', raw: { commands: { backup: { argv: ['/bin/backup', 3] } } }, field: 'commands.backup.argv[1]' },
    { name: 'an empty program', raw: { commands: { backup: { argv: [''] } } }, field: 'commands.backup.argv[0]' },
    { name: 'an unknown arguments mode', raw: { commands: { backup: { argv: ['/bin/true'], arguments: 'any' } } }, field: 'commands.backup.arguments' },
    { name: 'an unknown stdin mode', raw: { commands: { backup: { argv: ['/bin/true'], stdin: 'json' } } }, field: 'commands.backup.stdin' },
    { name: 'a timeout in an unknown unit', raw: { commands: { backup: { argv: ['/bin/true'], timeout: '1 hour' } } }, field: 'commands.backup.timeout' },
    { name: 'a timeout of zero', raw: { commands: { backup: { argv: ['/bin/true'], timeout: 0 } } }, field: 'commands.backup.timeout' },
    { name: 'a timeout past setTimeout\'s limit', raw: { commands: { backup: { argv: ['/bin/true'], timeout: '30d' } } }, field: 'commands.backup.timeout' },
    { name: 'an env value that is not a string', raw: { commands: { backup: { argv: ['/bin/true'], env: { N: 1 } } } }, field: 'commands.backup.env.N' },
    { name: 'a credential in a command env', raw: { commands: { backup: { argv: ['/bin/true'], env: { AFTER_COUCHDB_URL: 'http://u:p@x' } } } }, field: 'commands.backup.env.AFTER_COUCHDB_URL' },
    { name: 'a typo in a command', raw: { commands: { backup: { argv: ['/bin/true'], timout: '1h' } } }, field: 'commands.backup.timout' },
    { name: 'limits that are not an object', raw: { limits: [] }, field: 'limits' },
    { name: 'a limit with neither rate nor concurrency', raw: { limits: { mailer: {} } }, field: 'limits.mailer' },
    { name: 'a rate without a period', raw: { limits: { mailer: { rate: '100' } } }, field: 'limits.mailer.rate' },
    { name: 'a rate given as a number', raw: { limits: { mailer: { rate: 100 } } }, field: 'limits.mailer.rate' },
    { name: 'a rate in an unknown unit', raw: { limits: { mailer: { rate: '100/fortnight' } } }, field: 'limits.mailer.rate' },
    { name: 'a rate of zero', raw: { limits: { mailer: { rate: '0/s' } } }, field: 'limits.mailer.rate' },
    { name: 'a rate period shorter than a second', raw: { limits: { mailer: { rate: '5/ms' } } }, field: 'limits.mailer.rate' },
    { name: 'a concurrency of zero', raw: { limits: { 'mailer/send_email': { concurrency: 0 } } }, field: 'limits.mailer/send_email.concurrency' },
    { name: 'a typo in a limit', raw: { limits: { mailer: { rate: '5/s', concurency: 2 } } }, field: 'limits.mailer.concurency' },
    { name: 'a limit key ending in a slash', raw: { limits: { 'mailer/': { rate: '5/s' } } }, field: 'limits."mailer/"' },
  ];
  for (const c of bad) {
    it(`rejects ${c.name}, naming the file and the field`, () => {
      let caught: unknown;
      try {
        parseConfig(c.raw, { ...where, env: c.env ?? {} });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(ConfigError);
      const message = (caught as ConfigError).message;
      expect(message).to.include(where.file).and.include(c.field);
      expect(message).to.not.include('\n');
    });
  }

  it('reports a malformed file as one line naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-config-'));
    try {
      fs.writeFileSync(path.join(dir, 'config.json'), '{"worker": {"concurrency": 3,}}');
      expect(() => loadConfig({}, dir)).to.throw(ConfigError, path.join(dir, 'config.json'));
      expect(() => loadConfig({ AFTER_CONFIG: 'missing.json' }, dir)).to.throw(ConfigError, /missing\.json/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('never echoes a secret', () => {
    const SECRET = 's3cr3t-Pa55';
    /** Where the error must point: the first character of the offending token. */
    const syntax: Array<{ name: string; text: string; line: number; column: number }> = [
      { name: 'an unquoted password', text: `{\n  "couchdb": {\n    "password": ${SECRET}\n  }\n}\n`, line: 3, column: 17 },
      { name: 'a password in single quotes', text: `{"couchdb": {"password": '${SECRET}'}}`, line: 1, column: 26 },
      { name: 'an unterminated password string', text: `{"couchdb": {"password": "${SECRET}}}`, line: 1, column: 26 },
      { name: 'a raw newline inside the password', text: `{"couchdb": {\n"password": "${SECRET}\nrest"}}`, line: 2, column: 13 },
      { name: 'a trailing comma after the password', text: `{"couchdb": {"password": "${SECRET}",}}`, line: 1, column: 40 },
      { name: 'a missing comma after a URL with credentials', text: `{"couchdb": {"url": "http://admin:${SECRET}@db:5984" "db": "t"}}`, line: 1, column: 56 },
      { name: 'a comment quoting the password', text: `// admin / ${SECRET}\n{}`, line: 1, column: 1 },
      { name: 'text after the object', text: `{}\n${SECRET}`, line: 2, column: 1 },
      { name: 'a non-ASCII line before the error', text: `{"comment": "héllo ✓", "couchdb": {"password": ${SECRET}}}`, line: 1, column: 48 },
      { name: 'CRLF line ends', text: `{\r\n"couchdb": {\r\n"password": ${SECRET}}}`, line: 3, column: 13 },
    ];
    for (const c of syntax) {
      it(`a syntax error (${c.name}) names the file, line ${c.line} and column ${c.column}, and quotes nothing`, () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-config-'));
        try {
          const file = path.join(dir, 'config.json');
          fs.writeFileSync(file, c.text);
          let caught: unknown;
          try {
            loadConfig({}, dir);
          } catch (err) {
            caught = err;
          }
          expect(caught).to.be.instanceOf(ConfigError);
          expect((caught as ConfigError).code).to.equal('E_CONFIG');
          const message = (caught as ConfigError).message;
          expect(message).to.include(file).and.include(`line ${c.line}, column ${c.column}`);
          expect(message).not.to.include(SECRET.slice(0, 4));
          expect(message).not.to.include('\n');
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }

    const values: Array<{ name: string; raw?: unknown; env?: Record<string, string>; field: string }> = [
      { name: 'a numeric password', raw: { couchdb: { password: 31415926 } }, field: 'couchdb.password' },
      { name: 'a password in an array', raw: { couchdb: { password: [SECRET] } }, field: 'couchdb.password' },
      { name: 'a password in an object', raw: { couchdb: { password: { value: SECRET } } }, field: 'couchdb.password' },
      { name: 'a user name in an object', raw: { couchdb: { username: { name: SECRET } } }, field: 'couchdb.username' },
      { name: 'a URL in an object', raw: { couchdb: { url: { href: `http://admin:${SECRET}@db:5984` } } }, field: 'couchdb.url' },
      { name: 'a URL with credentials and the wrong scheme', raw: { couchdb: { url: `ftp://admin:${SECRET}@db` } }, field: 'couchdb.url' },
      { name: 'a URL with credentials that does not parse', raw: { couchdb: { url: `http://admin:${SECRET}@db:port` } }, field: 'couchdb.url' },
      { name: 'an AFTER_COUCHDB_URL with credentials and no scheme', env: { AFTER_COUCHDB_URL: `admin:${SECRET}@db:5984` }, field: 'AFTER_COUCHDB_URL' },
      { name: 'a section holding a URL with credentials', raw: { couchdb: `http://admin:${SECRET}@db:5984` }, field: 'couchdb' },
    ];
    for (const c of values) {
      it(`${c.name} is described by its type or form only`, () => {
        let caught: unknown;
        try {
          parseConfig(c.raw ?? {}, { ...where, env: c.env ?? {} });
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ConfigError);
        const message = (caught as ConfigError).message;
        expect(message).to.include(c.field);
        expect(message).not.to.include(SECRET.slice(0, 4));
        expect(message).not.to.include('31415926');
      });
    }

    it('a malformed AFTER_SECRETS_FILE is reported by line and column, not by its text', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-config-'));
      try {
        const file = path.join(dir, 'secrets.json');
        fs.writeFileSync(file, `{"AFTER_COUCHDB_URL": "http://admin:${SECRET}@db:5984" "AFTER_DB": "t"}`);
        expect(() => loadConfig({ AFTER_SECRETS_FILE: file }, dir))
          .to.throw(ConfigError, /line 1, column 58/)
          .with.property('message')
          .that.does.not.include(SECRET.slice(0, 4));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    const positions: Array<[string, number, { line: number; column: number }]> = [
      ['', 0, { line: 1, column: 1 }],
      ['abc', 2, { line: 1, column: 3 }],
      ['a\nbc', 3, { line: 2, column: 2 }],
      ['a\n\nb', 3, { line: 3, column: 1 }],
      ['✓😀x', 3, { line: 1, column: 3 }],
    ];
    for (const [text, offset, expected] of positions) {
      it(`lineAndColumn(${JSON.stringify(text)}, ${offset}) is line ${expected.line}, column ${expected.column}`, () => {
        expect(lineAndColumn(text, offset)).to.deep.equal(expected);
      });
    }
  });

  it('leaves exec off and webhook on, with a one-hour limit for programs, unless told otherwise', () => {
    const config = parseConfig({}, where);
    expect(config.builtins).to.deep.equal({ exec: false, webhook: true });
    expect(config.worker.program_timeout_ms).to.equal(3_600_000);
    expect(config.commands).to.deep.equal({});
    expect(parseConfig({ builtins: { exec: true } }, where).builtins.exec).to.equal(true);
  });

  it('reads commands: defaults, durations, paths relative to the config file', () => {
    const config = parseConfig(
      {
        commands: {
          backup: { argv: ['/usr/local/bin/backup', '--full'], stdin: 'data', timeout: '1h' },
          report: { argv: ['bin/report'], arguments: 'append', stdin: 'task', timeout: '1h30m', env: { MODE: 'x' }, cwd: 'work' },
          quick: { argv: ['printf', 'hi'], timeout: 1500 },
        },
      },
      where,
    );
    expect(config.commands.backup).to.deep.equal({
      argv: ['/usr/local/bin/backup', '--full'],
      arguments: 'none',
      stdin: 'data',
      timeout_ms: 3_600_000,
      env: {},
      cwd: null,
      user: null,
    });
    expect(config.commands.report).to.deep.equal({
      argv: ['/etc/after/bin/report'],
      arguments: 'append',
      stdin: 'task',
      timeout_ms: 5_400_000,
      env: { MODE: 'x' },
      cwd: '/etc/after/work',
      user: null,
    });
    expect(config.commands.quick).to.include({ timeout_ms: 1500 });
    expect(config.commands.quick!.argv).to.deep.equal(['printf', 'hi']);
    expect(Object.isFrozen(config.commands.backup!.argv)).to.equal(true);
  });

  it('reads limits: rates as count per period, concurrency, none by default', () => {
    expect(parseConfig({}, where).limits).to.deep.equal({});
    const config = parseConfig(
      { limits: { mailer: { rate: '100/min' }, 'mailer/send_email': { rate: '5/s', concurrency: 2 }, reports: { rate: '20 / 10s' }, slow: { concurrency: 1, comment: 'one at a time' } } },
      where,
    );
    expect(config.limits).to.deep.equal({
      mailer: { rate: { count: 100, period_ms: 60_000 }, concurrency: null },
      'mailer/send_email': { rate: { count: 5, period_ms: 1000 }, concurrency: 2 },
      reports: { rate: { count: 20, period_ms: 10_000 }, concurrency: null },
      slow: { rate: null, concurrency: 1 },
    });
    expect(parseConfig({ limits: { a: { rate: '3/hour' }, b: { rate: '1/day' }, c: { rate: '7/2h' } } }, where).limits).to.deep.include({
      a: { rate: { count: 3, period_ms: 3_600_000 }, concurrency: null },
      b: { rate: { count: 1, period_ms: 86_400_000 }, concurrency: null },
      c: { rate: { count: 7, period_ms: 7_200_000 }, concurrency: null },
    });
  });

  it('merges credentials for nano and scrubs them for printing', () => {
    const url = authenticatedUrl({ url: 'http://127.0.0.1:5984', username: 'admin', password: 's3cr:t@' });
    expect(url).to.equal('http://admin:s3cr%3At%40@127.0.0.1:5984');
    expect(scrubUrl(url)).to.equal('http://127.0.0.1:5984');
    expect(scrubUrl('http://127.0.0.1:5984/')).to.equal('http://127.0.0.1:5984');
  });
});
