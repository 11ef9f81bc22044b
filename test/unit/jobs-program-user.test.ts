/**
 * Whom the programs of commands and `exec` run as (src/jobs/program-user.ts): another user when
 * the worker is root, never a user a worker that is not root cannot become.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createExecJob } from '../../src/jobs/builtins/exec';
import { chooseProgramUser, lookUpUser, type ProgramUser } from '../../src/jobs/program-user';
import { runJob } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';

const users: Record<string, ProgramUser> = {
  nobody: { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' },
  jobs: { name: 'jobs', uid: 1001, gid: 1001, home: '/home/jobs' },
  root: { name: 'root', uid: 0, gid: 0, home: '/root' },
};
const look = (name: string): ProgramUser | undefined => users[name];

describe('the user programs run as', () => {
  const cases: Array<[name: string, configured: string | null, workerUid: number | undefined, expected: string | undefined | RegExp]> = [
    ['a root worker, nothing configured: nobody', null, 0, 'nobody'],
    ['a root worker, a user configured: that user', 'jobs', 0, 'jobs'],
    ['a root worker told "root": itself', 'root', 0, undefined],
    ['a worker that is not root, nothing configured: itself', null, 1001, undefined],
    ['a worker that is not root, configured as itself: itself', 'jobs', 1001, undefined],
    ['a worker that is not root, another user configured: a problem', 'nobody', 1001, /needs the worker to run as root/],
    ['a user that does not exist: a problem', 'ghost', 0, /there is no user "ghost"/],
    ['no POSIX users (Windows), nothing configured: itself', null, undefined, undefined],
  ];
  for (const [name, configured, workerUid, expected] of cases) {
    it(name, () => {
      const choice = chooseProgramUser(configured, 'worker.program_user', workerUid, look);
      if (expected instanceof RegExp) {
        expect(choice.ok).to.equal(false);
        expect((choice as { problem: string }).problem).to.match(/^worker\.program_user: /).and.match(expected);
      } else {
        expect(choice).to.deep.equal({ ok: true, user: expected === undefined ? undefined : users[expected] });
      }
    });
  }

  it('reads users from a passwd file, by name or uid', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'after-passwd-'));
    const passwd = path.join(dir, 'passwd');
    fs.writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
    try {
      expect(lookUpUser('nobody', passwd)).to.deep.equal(users.nobody);
      expect(lookUpUser('0', passwd)).to.deep.equal(users.root);
      expect(lookUpUser('ghost', passwd)).to.equal(undefined);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs exec\'s program as that user, with its HOME, when the worker is root', async function () {
    if (process.getuid?.() !== 0 || lookUpUser('nobody') === undefined) this.skip();
    const nobody = lookUpUser('nobody')!;
    const exec = createExecJob({ user: nobody });
    const doc = { _id: 't', worker: 'w', date: '2030-01-01', job: { name: 'exec', arguments: ['/bin/sh', '-c', 'echo "$(id -u):$(id -g):$(id -G):$HOME"'] } };
    const outcome = await runJob(exec, doc, { signal: new AbortController().signal, log: silentLogger() });
    expect(outcome).to.have.property('kind', 'success');
    expect((outcome as { result: { stdout: string } }).result.stdout.trim()).to.equal(`${nobody.uid}:${nobody.gid}:${nobody.gid}:${nobody.home}`);
  });
});
