/**
 * The tasks database's `validate_doc_update`: the database itself refuses a task document
 * that is clearly invalid, with a 403 `{"error": "forbidden", "reason": "<field>: ..."}`, so
 * whoever writes it with curl learns why at once instead of finding the task in `error` later.
 *
 * Its rules are a strict subset of the worker's `validateTask` (src/task/validate.ts): it never
 * refuses a document the worker would run (a property test holds it to that), so the worker's
 * own writes always pass, and anything it lets through is still caught by the worker, which
 * sets the task to `error`. It leaves alone:
 * - deletions and design documents (CouchDB runs the function on both; pouchdb-server skips
 *   design documents itself);
 * - documents whose status is `cancel`, `canceled`, `done` or `error`: a cancel only asks the
 *   worker to stop, and the final statuses are what the worker writes on a task that got in
 *   invalid (before `after init`), which must never be refused;
 * - unknown fields, at any level the worker does not read.
 * It does not parse cron patterns or time zone names (the worker does, with croner and ICU).
 *
 * The function is sent as its source text (Function.prototype.toString of the compiled
 * JavaScript) and runs in CouchDB's SpiderMonkey and in pouchdb-server's `couchdb-eval`
 * (`new Function("return " + source)` in Node). So it is written in ES5: `var`, function
 * expressions, no arrow functions, template strings, `let`/`const`, optional chaining, `??`,
 * `includes`/`startsWith`/`Object.hasOwn`/`Number.isInteger` or RegExp flags; it reads only
 * its parameters (nothing from this module); it looks keys up with hasOwnProperty, never in an
 * object literal, so a key like `constructor` or `__proto__` finds nothing; and it throws only
 * `{forbidden}` (any other throw is a 500 on both servers). It never walks user payloads, so
 * their size and depth cost nothing.
 */

/** The function itself. Call it as the database does: (newDoc, oldDoc, userCtx, secObj). */
export function validateTaskDocUpdate(newDoc: any, _oldDoc?: any, _userCtx?: any, _secObj?: any): void {
  var STATUSES = ['waiting', 'scheduled', 'running', 'done', 'error', 'reschedule', 'cancel', 'canceled', 'paused'];
  var UNCHECKED_STATUSES = ['cancel', 'canceled', 'done', 'error'];
  var CALENDAR_UNITS = ['years', 'year', 'y', 'months', 'month', 'M', 'weeks', 'week', 'w', 'days', 'day', 'd'];
  var TIME_UNITS = ['hours', 'hour', 'h', 'minutes', 'minute', 'm', 'seconds', 'second', 's', 'milliseconds', 'millisecond', 'ms'];
  var REPEAT_OPTIONS = ['limit', 'until', 'timezone', 'misfire', 'jitter'];
  var AFTER_FAILURES = ['error', 'run'];
  var MAX_DEPENDENCIES = 100;
  var RETRY_KEYS = ['limit', 'delay', 'backoff'];
  var MAX_NAME_LENGTH = 200;
  var MAX_TIMEOUT_MS = 2147483647;
  var MAX_SAFE_INTEGER = 9007199254740991;
  var CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
  var EXTENDED_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;
  var ISO_DURATION =
    /^P(?:(\d{1,9})Y)?(?:(\d{1,9})M)?(?:(\d{1,9})W)?(?:(\d{1,9})D)?(?:T(?:(\d{1,12}(?:[.,]\d{1,9})?)H)?(?:(\d{1,12}(?:[.,]\d{1,9})?)M)?(?:(\d{1,12}(?:[.,]\d{1,9})?)S)?)?$/;

  function has(object: any, key: string): boolean {
    return Object.prototype.hasOwnProperty.call(object, key);
  }
  function isIn(list: string[], value: any): boolean {
    return typeof value === 'string' && list.indexOf(value) >= 0;
  }
  function isObject(value: any): boolean {
    return typeof value === 'object' && value !== null && Object.prototype.toString.call(value) !== '[object Array]';
  }
  function isArray(value: any): boolean {
    return Object.prototype.toString.call(value) === '[object Array]';
  }
  function isWholeNumber(value: any, min: number, max: number): boolean {
    return typeof value === 'number' && isFinite(value) && Math.floor(value) === value && value >= min && value <= max;
  }
  /** A value as it may appear in a reason: short, quoted, never a user's whole payload. */
  function show(value: any): string {
    if (value === undefined) return 'a missing value';
    if (value === null) return 'null';
    if (typeof value === 'string') return value.length > 80 ? JSON.stringify(value.substring(0, 80)) + '...' : JSON.stringify(value);
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return isArray(value) ? 'an array' : 'an object';
  }
  function refuse(field: string, reason: string): never {
    throw { forbidden: field + ': ' + reason };
  }

  function checkName(value: any, field: string): void {
    if (value === undefined) refuse(field, 'is missing');
    if (typeof value !== 'string') refuse(field, show(value) + ' is not a string');
    if (value.length === 0) refuse(field, 'is empty');
    if (value.length > MAX_NAME_LENGTH) refuse(field, show(value) + ' is longer than ' + MAX_NAME_LENGTH + ' characters');
    if (CONTROL_CHARACTER.test(value)) refuse(field, show(value) + ' contains a control character');
  }

  function daysInMonth(year: number, month: number): number {
    if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
    return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  }

  /** The extended ISO 8601 form the worker accepts (src/task/dates.ts), years 0001-9999. */
  function checkDate(value: any, field: string): void {
    var expected = ' is not an ISO 8601 date (expected e.g. 2013-01-12T10:00:00Z)';
    if (value === undefined) refuse(field, 'is missing (expected an ISO 8601 date, e.g. 2013-01-12T10:00:00Z)');
    if (typeof value !== 'string' || value.length > 64) refuse(field, show(value) + expected);
    var match = EXTENDED_DATE.exec(value);
    if (!match) refuse(field, show(value) + expected);
    var year = Number(match![1]);
    var month = Number(match![2]);
    var day = Number(match![3]);
    var inCalendar =
      year >= 1 &&
      month >= 1 &&
      month <= 12 &&
      day >= 1 &&
      day <= daysInMonth(year, month) &&
      Number(match![4] || 0) <= 23 &&
      Number(match![5] || 0) <= 59 &&
      Number(match![6] || 0) <= 59;
    if (!inCalendar) refuse(field, show(value) + ' is not a date on the calendar');
    var zone = match![8];
    if (zone && zone !== 'Z') {
      var digits = zone.substring(1).replace(':', '');
      var minutes = digits.length > 2 ? Number(digits.substring(2)) : 0;
      if (minutes > 59 || Number(digits.substring(0, 2)) * 60 + minutes > 14 * 60) {
        refuse(field, show(value) + ' has a zone offset outside -14:00...+14:00');
      }
    }
  }

  /** A duration: an ISO 8601 string, an object of moment.js unit keys, or (if allowed) milliseconds. */
  function checkDuration(value: any, field: string, allowZero: boolean, allowNumber: boolean, ignoreKeys: string[]): void {
    var zeroLength = ' has zero length (a repeat of zero length would run forever)';
    if (typeof value === 'number' && allowNumber) {
      if (!isFinite(value) || value < 0) refuse(field, show(value) + ' is not a non-negative number of milliseconds');
      if (value === 0 && !allowZero) refuse(field, show(value) + zeroLength);
      return;
    }
    if (typeof value === 'string') {
      var match = value.length <= 100 ? ISO_DURATION.exec(value) : null;
      if (!match || value === 'P' || value.charAt(value.length - 1) === 'T') {
        refuse(field, show(value) + ' is not an ISO 8601 duration (expected e.g. "P1D", "PT2H", "P1M7D")');
      }
      var total = 0;
      for (var i = 1; i < match!.length; i++) if (match![i]) total += Number(match![i].replace(',', '.'));
      if (total === 0 && !allowZero) refuse(field, show(value) + zeroLength);
      return;
    }
    if (!isObject(value)) refuse(field, show(value) + ' is not a duration (expected e.g. {"days": 1} or "P1D")');
    var keys = Object.keys(value);
    var positive = false;
    for (var k = 0; k < keys.length; k++) {
      var key = keys[k];
      if (ignoreKeys.indexOf(key) >= 0) continue;
      var calendar = CALENDAR_UNITS.indexOf(key) >= 0;
      if (!calendar && TIME_UNITS.indexOf(key) < 0) refuse(field, 'unknown duration key ' + show(key));
      var amount = value[key];
      if (typeof amount !== 'number' || !isFinite(amount) || amount < 0) {
        refuse(field + '.' + key, show(amount) + ' is not a non-negative number');
      }
      if (calendar && Math.floor(amount) !== amount) refuse(field + '.' + key, show(amount) + ' is not a whole number');
      if (amount > 0) positive = true;
    }
    if (!positive && !allowZero) refuse(field, 'has zero length (a repeat of zero length would run forever)');
  }

  function checkJob(value: any): void {
    if (typeof value === 'string') return checkName(value, 'job');
    if (value === undefined) refuse('job', 'is missing (expected {"name": "...", "arguments": [...]} or a job name)');
    if (!isObject(value)) refuse('job', show(value) + ' is not a job (expected {"name": "...", "arguments": [...]} or a job name)');
    checkName(has(value, 'name') ? value.name : undefined, 'job.name');
    if (has(value, 'arguments') && !isArray(value.arguments)) refuse('job.arguments', show(value.arguments) + ' is not an array');
  }

  function checkRepeat(value: any): void {
    if (typeof value === 'string') return checkDuration(value, 'repeat', false, false, []);
    if (!isObject(value)) refuse('repeat', show(value) + ' is not a repeat (expected e.g. {"days": 1}, "P1D" or {"cron": "0 9 * * 1-5"})');
    if (has(value, 'limit') && !isWholeNumber(value.limit, 1, MAX_SAFE_INTEGER)) {
      refuse('repeat.limit', show(value.limit) + ' is not a positive integer (the total number of runs)');
    }
    if (has(value, 'until')) checkDate(value.until, 'repeat.until');
    if (has(value, 'misfire') && !isIn(['run_once', 'skip'], value.misfire)) {
      refuse('repeat.misfire', show(value.misfire) + ' is not "run_once" or "skip"');
    }
    if (has(value, 'timezone') && (typeof value.timezone !== 'string' || value.timezone.length === 0)) {
      refuse('repeat.timezone', show(value.timezone) + ' is not a time zone name');
    }
    // The worker reads the forms of a jitter and a delay (and their sizes); here only their type.
    if (has(value, 'jitter')) checkFixedDurationType(value.jitter, 'repeat.jitter');
    if (has(value, 'cron') && has(value, 'delay')) checkFixedDurationType(value.delay, 'repeat.delay');
    if (has(value, 'cron')) {
      if (typeof value.cron !== 'string' || value.cron.length === 0) refuse('repeat.cron', show(value.cron) + ' is not a cron pattern');
      return;
    }
    checkDuration(value, 'repeat', false, false, REPEAT_OPTIONS);
  }

  function checkFixedDurationType(value: any, field: string): void {
    var isNumber = typeof value === 'number' && isFinite(value) && value >= 0;
    if (!isNumber && typeof value !== 'string' && !isObject(value)) {
      refuse(field, show(value) + ' is not a duration (expected e.g. "5m", "PT30S" or a number of milliseconds)');
    }
  }

  function checkAfter(value: any): void {
    if (!isArray(value)) refuse('after', show(value) + ' is not an array of task ids');
    if (value.length > MAX_DEPENDENCIES) refuse('after', 'names ' + value.length + ' tasks, more than ' + MAX_DEPENDENCIES);
    for (var i = 0; i < value.length; i++) {
      if (typeof value[i] !== 'string' || value[i].length === 0) refuse('after[' + i + ']', show(value[i]) + ' is not a task id');
    }
  }

  function checkRetry(value: any): void {
    if (!isObject(value)) refuse('retry', show(value) + ' is not a retry (expected e.g. {"limit": 3, "delay": "PT1M", "backoff": 2})');
    var keys = Object.keys(value);
    for (var k = 0; k < keys.length; k++) {
      if (RETRY_KEYS.indexOf(keys[k]) < 0) refuse('retry', 'unknown key ' + show(keys[k]) + ' (expected limit, delay, backoff)');
    }
    if (!has(value, 'limit') || !isWholeNumber(value.limit, 0, MAX_SAFE_INTEGER)) {
      refuse('retry.limit', show(value.limit) + ' is not an integer >= 0 (the number of retries)');
    }
    if (has(value, 'delay')) checkDuration(value.delay, 'retry.delay', true, true, []);
    if (has(value, 'backoff') && (typeof value.backoff !== 'number' || !isFinite(value.backoff) || value.backoff < 1)) {
      refuse('retry.backoff', show(value.backoff) + ' is not a number >= 1');
    }
  }

  if (newDoc._deleted === true) return;
  if (typeof newDoc._id === 'string' && newDoc._id.indexOf('_design/') === 0) return;

  var status = has(newDoc, 'status') ? newDoc.status : undefined;
  if (status !== undefined && !isIn(STATUSES, status)) refuse('status', show(status) + ' is not one of ' + STATUSES.join(', '));
  if (isIn(UNCHECKED_STATUSES, status)) return;

  checkName(has(newDoc, 'worker') ? newDoc.worker : undefined, 'worker');
  checkDate(has(newDoc, 'date') ? newDoc.date : undefined, 'date');
  checkJob(has(newDoc, 'job') ? newDoc.job : undefined);
  if (has(newDoc, 'repeat')) checkRepeat(newDoc.repeat);
  if (has(newDoc, 'retry')) checkRetry(newDoc.retry);
  if (has(newDoc, 'timeout') && !isWholeNumber(newDoc.timeout, 1, MAX_TIMEOUT_MS)) {
    refuse('timeout', show(newDoc.timeout) + ' is not a whole number of milliseconds from 1 to ' + MAX_TIMEOUT_MS);
  }
  if (has(newDoc, 'priority') && !isWholeNumber(newDoc.priority, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)) {
    refuse('priority', show(newDoc.priority) + ' is not an integer');
  }
  if (has(newDoc, 'after')) checkAfter(newDoc.after);
  if (has(newDoc, 'after_failure') && !isIn(AFTER_FAILURES, newDoc.after_failure)) {
    refuse('after_failure', show(newDoc.after_failure) + ' is not "error" or "run"');
  }
}

/**
 * The source text stored as `_design/after-validate`'s `validate_doc_update`: the function made
 * anonymous, since CouchDB 3.4's couchjs refuses a named function ("Expression does not eval
 * to a function"). It starts with `function`: pouchdb-server evaluates `"return " + source`,
 * so a leading line comment would make it return nothing.
 */
export const VALIDATE_DOC_UPDATE_SOURCE: string = validateTaskDocUpdate
  .toString()
  .replace(/^function validateTaskDocUpdate\s*\(/, 'function (');
