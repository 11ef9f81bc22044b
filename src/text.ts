/**
 * Text from task documents (`_id`, `worker`, `job`, error messages...) is written by anyone
 * who can write a task. Printed raw, an ESC sequence in it can clear the operator's screen,
 * retitle the terminal or write the clipboard (OSC 52), a C1 CSI (U+009B) does the same on
 * terminals that honour 8-bit controls, and a newline can forge a whole log line
 * (`info task payroll done`). `printable` shows such characters as visible escapes instead, so
 * the text stays readable and can no longer act on the terminal or the log.
 */

/**
 * What is escaped: C0 controls (U+0000-U+001F, newline and tab included), DEL, the C1 controls
 * (U+0080-U+009F: CSI, OSC, NEL...), the Unicode line and paragraph separators (some viewers
 * break lines at them) and the bidirectional controls (they reorder what a line shows, as in
 * "Trojan Source", CVE-2021-42574).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same set without C0: JSON.stringify has escaped those inside strings already, and outside strings its newlines are the indentation. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = {
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

function escapeOne(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every control character shown as an escape (`\x1b`, `\n`, `\u202e`), fit for one
 * line of a terminal or a log. Backslashes are left as they are, so an ordinary id prints (and
 * copies back into a command) unchanged.
 */
export function printable(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/** Any value as printable text: strings as they are (escaped), anything else as JSON. */
export function printableValue(value: unknown): string {
  if (typeof value === 'string') return printable(value);
  if (value === undefined) return 'undefined';
  return printable(JSON.stringify(value) ?? String(value));
}

/**
 * Text that may span lines on purpose (a `--verbose` stack, several joined lines): each line
 * made printable, the line breaks kept. The last line of defence of every CLI output.
 */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but leaves DEL, C1 controls, the
 * line separators and the bidi controls raw; this escapes them as `\u00XX` too. The output
 * is still JSON and parses to the same value.
 */
export function terminalJson(value: unknown, indent?: number): string {
  const json = JSON.stringify(value, null, indent) ?? 'null';
  return json.replace(UNSAFE_IN_JSON, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
