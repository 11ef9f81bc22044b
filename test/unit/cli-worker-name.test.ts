import { expect } from 'chai';
import { UsageError } from '../../src/errors';
import { checkWorkerName, pm2ProcessName, workerOfProcess } from '../../src/cli/worker-name';

describe('cli: worker names', () => {
  for (const name of ['nightly', 'billing-eu.1', 'A_b', '9', 'x'.repeat(64)]) {
    it(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}... (${name.length})` : name)}`, () => {
      expect(checkWorkerName(name)).to.equal(name);
    });
  }
  for (const name of ['', '../etc', 'a/b', '.hidden', '-flag', 'has space', 'x'.repeat(65), 'é', 'a\nb']) {
    it(`rejects ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}... (${name.length})` : name)}`, () => {
      expect(() => checkWorkerName(name)).to.throw(UsageError);
    });
  }
  it('maps worker names to pm2 process names and back, ignoring other processes', () => {
    expect(pm2ProcessName('nightly')).to.equal('after-nightly');
    expect(workerOfProcess('after-nightly')).to.equal('nightly');
    expect(workerOfProcess('my-app')).to.equal(null);
    expect(workerOfProcess('after-')).to.equal(null);
    expect(workerOfProcess(undefined)).to.equal(null);
  });
});
