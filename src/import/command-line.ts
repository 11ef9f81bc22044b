/**
 * A crontab command as an argument array, without a shell. The `exec` job never runs a shell
 * (task data is never pasted into a command line), so a command is imported as-is only when
 * splitting it needs nothing a shell would do: plain words, '...' and "..." quoting, backslash
 * escapes. Anything else (pipes, redirections, `;`, `&&`, variables, globs, `~`, subshells,
 * a leading VAR=value) is reported with the character that needs a shell; `after import --shell`
 * then imports the line as `["/bin/sh", "-c", command]` instead.
 */

export type SplitResult = { ok: true; argv: string[] } | { ok: false; reason: string };

/** Characters that mean something to a shell wherever they stand unquoted. */
const SHELL_OPERATORS: Record<string, string> = {
  '|': 'a pipe (|)',
  '&': 'a background or && operator (&)',
  ';': 'a command separator (;)',
  '<': 'a redirection (<)',
  '>': 'a redirection (>)',
  '(': 'a subshell (()',
  ')': 'a subshell ())',
  '$': 'a variable or substitution ($)',
  '`': 'a command substitution (`)',
  '*': 'a glob (*)',
  '?': 'a glob (?)',
  '[': 'a glob ([)',
  '{': 'a brace expansion ({)',
  '}': 'a brace expansion (})',
};

export function splitCommand(command: string): SplitResult {
  const argv: string[] = [];
  let word = '';
  let inWord = false;
  const needsShell = (what: string): SplitResult => ({ ok: false, reason: `needs a shell: ${what}` });
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
      continue;
    }
    if (!inWord) {
      if (c === '#') return needsShell('a comment (#)');
      if (c === '~') return needsShell('a home directory (~)');
    }
    if (c === '\\') {
      if (i + 1 >= command.length) return { ok: false, reason: 'ends with a lone backslash' };
      word += command[++i];
      inWord = true;
      continue;
    }
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end === -1) return { ok: false, reason: "has an unterminated ' quote" };
      word += command.slice(i + 1, end);
      i = end;
      inWord = true;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        const d = command[j]!;
        if (d === '$' || d === '`') return needsShell(SHELL_OPERATORS[d]!);
        if (d === '\\' && j + 1 < command.length && '"\\$`'.includes(command[j + 1]!)) j++;
        word += command[j];
      }
      if (j >= command.length) return { ok: false, reason: 'has an unterminated " quote' };
      i = j;
      inWord = true;
      continue;
    }
    const operator = SHELL_OPERATORS[c];
    if (operator) return needsShell(operator);
    if (c === '=' && argv.length === 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(word)) {
      return needsShell(`a variable assignment (${word}=...)`);
    }
    word += c;
    inWord = true;
  }
  if (inWord) argv.push(word);
  if (argv.length === 0) return { ok: false, reason: 'has no command' };
  return { ok: true, argv };
}
