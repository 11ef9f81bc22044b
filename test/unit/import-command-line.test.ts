import { expect } from 'chai';
import { splitCommand } from '../../src/import/command-line';

describe('splitCommand (crontab command → argv, no shell)', () => {
  const splits: Array<[string, string[]]> = [
    ['/usr/bin/backup', ['/usr/bin/backup']],
    ['/usr/bin/env  echo   hello', ['/usr/bin/env', 'echo', 'hello']],
    [`report --title "two words" 'single $quoted'`, ['report', '--title', 'two words', 'single $quoted']],
    ['echo a\\ b', ['echo', 'a b']],
    ['echo "say \\"hi\\""', ['echo', 'say "hi"']],
    ['echo x=1', ['echo', 'x=1']],
    ['echo ""', ['echo', '']],
  ];
  for (const [command, argv] of splits) {
    it(`splits ${command}`, () => expect(splitCommand(command)).to.deep.equal({ ok: true, argv }));
  }

  const shellOnly: Array<[string, RegExp]> = [
    ['ls | wc -l', /pipe/],
    ['cd /tmp && ls', /&/],
    ['a; b', /separator/],
    ['run > out.log', /redirection/],
    ['echo $HOME', /variable/],
    ['echo "$HOME"', /variable/],
    ['echo `date`', /substitution/],
    ['rm /tmp/*.tmp', /glob/],
    ['~/bin/job', /home/],
    ['LANG=C sort file', /assignment/],
    ['job # comment', /comment/],
  ];
  for (const [command, why] of shellOnly) {
    it(`refuses ${command} without a shell`, () => {
      const result = splitCommand(command);
      expect(result.ok).to.equal(false);
      if (!result.ok) expect(result.reason).to.match(/^needs a shell/).and.match(why);
    });
  }

  it('reports broken quoting as such, not as needing a shell', () => {
    for (const command of [`echo 'open`, 'echo "open', 'echo \\']) {
      const result = splitCommand(command);
      expect(result.ok, command).to.equal(false);
      if (!result.ok) expect(result.reason).to.not.match(/needs a shell/);
    }
  });
});
