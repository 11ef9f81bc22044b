/**
 * The `webhook` built-in job: POSTs the task document as JSON to a URL, so a job can live in
 * any service that speaks HTTP.
 *
 *   {"job": {"name": "webhook", "arguments": ["http://127.0.0.1:8080/hook"]}}
 *   {"job": {"name": "webhook", "arguments": [{"url": "https://...", "headers": {...}, "timeout_ms": 5000}]}}
 *
 * The URL comes from task data, which is untrusted: only http and https are accepted, and
 * redirects are never followed (a 3xx is a failure naming where it pointed), so a task cannot
 * walk the worker to another scheme or host through a redirect. Credentials in the URL are
 * sent as Basic auth and never appear in a message or log.
 */
import { AfterError, TaskInvalidError } from '../../errors';
import { scrubSecrets } from '../../log';
import { jobArguments, type JobContext, type JobTask } from '../run-job';

/** How long a webhook may take, answer body included, unless the task says otherwise. */
export const WEBHOOK_TIMEOUT_MS = 30_000;
/** Bytes of the answer body kept in the result. */
export const WEBHOOK_BODY_LIMIT = 64 * 1024;
/** Characters of a failed answer's body quoted in the failure message. */
const FAILED_BODY_CHARS = 200;

export interface WebhookTarget {
  /** Without credentials: safe to print. */
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

export interface WebhookResult {
  status: number;
  /** The answer's text, or its parsed value when it is JSON (and not truncated). */
  body: unknown;
  /** Present when the body passed WEBHOOK_BODY_LIMIT: `body` holds its first bytes as text. */
  body_truncated?: true;
}

export async function webhookJob(_task: JobTask, ctx: JobContext): Promise<WebhookResult> {
  const target = webhookTarget(jobArguments(ctx.doc));
  const where = `POST ${target.url}`;
  const timeout = AbortSignal.timeout(target.timeoutMs);
  const signal = AbortSignal.any([ctx.signal, timeout]);
  try {
    const response = await fetch(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-after-task-id': ctx.doc._id, ...target.headers },
      body: JSON.stringify(ctx.doc),
      redirect: 'manual',
      signal,
    });
    const { text, truncated } = await readBounded(response, WEBHOOK_BODY_LIMIT);
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location');
      const to = location ? ` to ${scrubSecrets(location)}` : '';
      throw new AfterError('E_WEBHOOK', `webhook: ${where} answered ${response.status}${to}; redirects are not followed`);
    }
    if (!response.ok) {
      throw new AfterError('E_WEBHOOK', `webhook: ${where} answered ${response.status}${bodyExcerpt(text)}`);
    }
    const result: WebhookResult = { status: response.status, body: answerBody(text, truncated, response) };
    if (truncated) result.body_truncated = true;
    return result;
  } catch (err) {
    if (err instanceof AfterError) throw err;
    // The run's own cancel or timeout: runJob has already recorded why; pass the reason on.
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (timeout.aborted) {
      throw new AfterError('E_TIMEOUT', `webhook: ${where} got no complete answer within ${target.timeoutMs} ms`);
    }
    throw new AfterError('E_WEBHOOK', `webhook: ${where} failed: ${networkReason(err)}`);
  }
}

/** The first argument, checked: a URL string, or `{url, headers?, timeout_ms?}`. */
export function webhookTarget(args: unknown[]): WebhookTarget {
  const first = args[0];
  const options: Record<string, unknown> =
    typeof first === 'string' ? { url: first } : typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
  if (typeof options.url !== 'string') {
    throw new TaskInvalidError(
      'job.arguments',
      'webhook: job.arguments[0] must be the URL to POST to, or {"url": ..., "headers": {...}}',
    );
  }
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TaskInvalidError('job.arguments', `webhook: ${JSON.stringify(scrubSecrets(options.url))} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TaskInvalidError('job.arguments', `webhook: only http and https URLs are allowed, not ${url.protocol}`);
  }

  const headers: Record<string, string> = {};
  if (options.headers !== undefined) {
    if (typeof options.headers !== 'object' || options.headers === null || Array.isArray(options.headers)) {
      throw new TaskInvalidError('job.arguments', 'webhook: headers must be an object of strings');
    }
    for (const [name, value] of Object.entries(options.headers)) {
      if (typeof value !== 'string') {
        throw new TaskInvalidError('job.arguments', `webhook: header ${JSON.stringify(name)} must be a string`);
      }
      headers[name.toLowerCase()] = value;
    }
  }
  // fetch refuses a URL with credentials: send them the way a browser would, as Basic auth.
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    headers.authorization ??= `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }

  let timeoutMs = WEBHOOK_TIMEOUT_MS;
  if (options.timeout_ms !== undefined) {
    if (typeof options.timeout_ms !== 'number' || !Number.isFinite(options.timeout_ms) || options.timeout_ms <= 0) {
      throw new TaskInvalidError('job.arguments', 'webhook: timeout_ms must be a positive number of milliseconds');
    }
    timeoutMs = options.timeout_ms;
  }
  return { url: url.href, headers, timeoutMs };
}

/** Reads at most `limit` bytes of the body, then drops the rest of it. */
async function readBounded(response: Response, limit: number): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
    const room = limit - size;
    if (value.length > room) {
      chunks.push(value.subarray(0, room));
      await reader.cancel();
      return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(value);
    size += value.length;
  }
}

function answerBody(text: string, truncated: boolean, response: Response): unknown {
  const type = response.headers.get('content-type') ?? '';
  if (truncated || !/\bjson\b/i.test(type) || text.trim() === '') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function bodyExcerpt(text: string): string {
  const oneLine = text.trim().replace(/\s*[\r\n]+\s*/g, ' ');
  if (oneLine === '') return '';
  return `: ${oneLine.length > FAILED_BODY_CHARS ? `${oneLine.slice(0, FAILED_BODY_CHARS)}…` : oneLine}`;
}

/** fetch says "fetch failed"; the reason (ECONNREFUSED, a TLS error...) is in its cause. */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return scrubSecrets(cause.message);
  return scrubSecrets(err instanceof Error ? err.message : String(err));
}
