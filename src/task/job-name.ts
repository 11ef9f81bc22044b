/**
 * What may name a job. A job name comes from task data, which is untrusted, and from the
 * `commands` section of the config; both follow this one rule.
 */

/** True for a string that may name a job: no path separator, NUL, or dot-only name. */
export function isJobName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= 255 &&
    !/[/\\\0]/.test(name) &&
    name !== '.' &&
    name !== '..'
  );
}
