/**
 * Reading a JSON file a user wrote (config.json, a secrets file) with errors that point at the
 * line and column and never quote the file: it may hold a password.
 */
import { parse as parseJsonc, ParseErrorCode, type ParseError } from 'jsonc-parser';
import { ConfigError } from '../errors';

/** What each syntax error means, in words that quote nothing from the file. */
const JSON_PROBLEMS: Partial<Record<ParseErrorCode, string>> = {
  [ParseErrorCode.InvalidSymbol]: 'unexpected character; text values must be in double quotes',
  [ParseErrorCode.InvalidNumberFormat]: 'malformed number',
  [ParseErrorCode.UnexpectedEndOfNumber]: 'malformed number',
  [ParseErrorCode.PropertyNameExpected]: 'a property name in double quotes was expected; is there a trailing comma?',
  [ParseErrorCode.ValueExpected]: 'a value was expected',
  [ParseErrorCode.ColonExpected]: "':' was expected",
  [ParseErrorCode.CommaExpected]: "',' was expected",
  [ParseErrorCode.CloseBraceExpected]: "'}' was expected",
  [ParseErrorCode.CloseBracketExpected]: "']' was expected",
  [ParseErrorCode.EndOfFileExpected]: 'more text after the end of the JSON value',
  [ParseErrorCode.InvalidCommentToken]: 'comments are not allowed in JSON',
  [ParseErrorCode.UnexpectedEndOfComment]: 'comments are not allowed in JSON',
  [ParseErrorCode.UnexpectedEndOfString]: 'a string is not closed',
  [ParseErrorCode.InvalidUnicode]: 'malformed \\u escape in a string',
  [ParseErrorCode.InvalidEscapeCharacter]: 'unknown escape sequence in a string',
  [ParseErrorCode.InvalidCharacter]: 'control character inside a string',
};

/**
 * JSON.parse, with a syntax error reported as `<what> is not valid JSON at line L, column C:
 * <problem>`. V8's message quotes the source around the error (`..."password": s3cr3t}"`),
 * so it is never used: jsonc-parser (strict mode: no comments, no trailing commas) finds the
 * offset of the first error and what was expected there.
 */
export function parseJsonFile(text: string, what: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const errors: ParseError[] = [];
    parseJsonc(body, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
    const first = errors[0];
    // Both parsers follow RFC 8259; should jsonc-parser find nothing, V8's position (never its text) still helps.
    const offset = first?.offset ?? Number(/at position (\d+)/.exec((err as Error).message)?.[1] ?? NaN);
    const problem = first === undefined ? '' : `: ${JSON_PROBLEMS[first.error] ?? 'syntax error'}`;
    if (Number.isNaN(offset)) throw new ConfigError(`${what} is not valid JSON${problem}`);
    const { line, column } = lineAndColumn(body, offset);
    throw new ConfigError(`${what} is not valid JSON at line ${line}, column ${column}${problem}`);
  }
}

/** 1-based line and column of a UTF-16 offset; a column counts characters, as editors do. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf('\n') + 1;
  const line = before.split('\n').length;
  return { line, column: Array.from(before.slice(lineStart)).length + 1 };
}
