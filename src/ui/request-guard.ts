/**
 * Who may talk to the dashboard, decided per request from its `Host`, `Origin` and token
 * headers. Pure functions, so the rules are tested as tables (test/unit/ui-request-guard.test.ts).
 *
 * - Host: DNS rebinding points a name the attacker owns at the dashboard's address; the
 *   browser then treats the dashboard as the attacker's own origin and lets the attacker's page
 *   read it and post to it. The only trace is the attacker's name in `Host`, so every request
 *   (whatever address the dashboard binds: 127.0.0.2, 0.0.0.0, a LAN address) must name the
 *   dashboard by a name it was told about: the loopback names, the address it binds, or an
 *   `--allowed-host`.
 * - Origin and token: an action also needs the page's own `Origin` and the per-process token
 *   the page reads from index.html and sends back in a header. A cross-site page can neither
 *   read the token (same-origin policy) nor send a custom header without a CORS preflight the
 *   dashboard never grants; a server-side caller (a webhook task aimed at the dashboard) sends
 *   neither.
 */
import { timingSafeEqual } from 'node:crypto';
import { UsageError } from '../errors';

/** A host as `Host` carries it: a lowercase name (IPv6 in brackets) and maybe a port. */
export interface HostName {
  name: string;
  port?: number;
}

export interface AllowedHosts {
  /** Answered at the dashboard's own port, or with no port (a reverse proxy on port 80). */
  local: readonly string[];
  /** `--allowed-host` names: with a port, at that port only; without one, at any port. */
  extra: readonly HostName[];
}

/** The names a browser on this machine uses for the loopback interface. */
export const LOOPBACK_NAMES: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];
/** Bind addresses that mean "every interface": no name of their own. */
const WILDCARDS = ['0.0.0.0', '[::]', '[::0]', ''];

const HOST_FORM = /^(\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)\.?(?::(\d{1,5}))?$/;

/** Parse a `Host` header or an `--allowed-host` value; undefined when it is not a host[:port]. */
export function parseHost(value: string): HostName | undefined {
  const match = HOST_FORM.exec(value.trim().toLowerCase());
  if (!match) return undefined;
  const name = match[1]!;
  if (match[2] === undefined) return { name };
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { name, port } : undefined;
}

/** A bind address as `Host` would name it (`::1` → `[::1]`). */
function hostNameOf(bindHost: string): string {
  const lower = bindHost.trim().toLowerCase().replace(/\.$/, '');
  return lower.includes(':') && !lower.startsWith('[') ? `[${lower}]` : lower;
}

/** The loopback names, the bound address (unless it is a wildcard) and the `--allowed-host` names. */
export function allowedHosts(bindHost: string, extra: readonly string[] = []): AllowedHosts {
  const bound = hostNameOf(bindHost);
  const local = WILDCARDS.includes(bound) || LOOPBACK_NAMES.includes(bound) ? [...LOOPBACK_NAMES] : [...LOOPBACK_NAMES, bound];
  return { local, extra: extra.map(checkAllowedHost) };
}

/** `--allowed-host NAME[:PORT]`, checked; a wildcard or a malformed name is a usage error. */
export function checkAllowedHost(value: string): HostName {
  const parsed = parseHost(value);
  if (!parsed || WILDCARDS.includes(parsed.name) || parsed.name.includes('*')) {
    throw new UsageError(`--allowed-host must be a host name or address, optionally with :port (e.g. dash.example.com or 192.168.1.20:5990), got ${JSON.stringify(value)}`);
  }
  return parsed;
}

/** Whether a request's `Host` names the dashboard (listening on `boundPort`) by an allowed name. */
export function hostAllowed(header: string | undefined, allowed: AllowedHosts, boundPort: number): boolean {
  if (header === undefined) return false;
  const host = parseHost(header);
  if (!host) return false;
  if (allowed.local.includes(host.name) && (host.port === undefined || host.port === boundPort)) return true;
  return allowed.extra.some((entry) => entry.name === host.name && (entry.port === undefined || entry.port === host.port));
}

/**
 * Whether `Origin` is the page the request is addressed to: `http(s)://<Host>`. No Origin (a
 * script, a webhook), `null` (a sandboxed frame, a file: page) or another site: no.
 */
export function sameOrigin(origin: string | undefined, hostHeader: string | undefined): boolean {
  if (origin === undefined || hostHeader === undefined || origin === 'null') return false;
  let originUrl: URL;
  let hostUrl: URL;
  try {
    originUrl = new URL(origin);
    if (originUrl.protocol !== 'http:' && originUrl.protocol !== 'https:') return false;
    hostUrl = new URL(`${originUrl.protocol}//${hostHeader}`);
  } catch {
    return false;
  }
  return originUrl.host === hostUrl.host;
}

/** The action token header, compared in constant time. */
export function tokenMatches(given: string | string[] | undefined, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
