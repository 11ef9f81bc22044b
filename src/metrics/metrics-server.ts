/**
 * `GET /metrics` in the Prometheus text format, on its own small node:http server. The port is
 * bound before the worker starts (see worker-sidecars.ts), so a port already taken fails
 * `after start` at once instead of leaving a worker running that nobody can scrape.
 *
 * The metrics name workers and jobs, so a web page must not read them: a page that rebinds its
 * own DNS name to 127.0.0.1 makes the browser send its requests here as same-origin, and only
 * its name in `Host` gives it away. Like the dashboard (ui/request-guard.ts), the endpoint
 * answers only a `Host` naming it by a loopback name, the address it binds, or a name given
 * with `--metrics-allowed-host`; anything else gets 421.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { AfterError, toError } from '../errors';
import { allowedHosts, hostAllowed } from '../ui/request-guard';

export interface MetricsServer {
  /** `http://host:port/metrics` */
  readonly url: string;
  /** Serve this registry from now on (before: an empty 200, so a scrape never fails). */
  use(registry: Registry): void;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** More `Host` names (`name` or `name:port`) a scraper may use, beside the loopback names and the bound address. @default [] */
  allowedHosts?: readonly string[];
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const allowed = allowedHosts(host, options.allowedHosts ?? []);
  let boundPort = options.port;
  let registry: Registry | undefined;
  const server = http.createServer((req, res) => {
    if (!hostAllowed(req.headers.host, allowed, boundPort)) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('this metrics endpoint answers only under the names it was given (after start --metrics-allowed-host)\n');
      return;
    }
    const pathname = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n');
      return;
    }
    if (!registry) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end();
      return;
    }
    const current = registry;
    current.metrics().then(
      (text) => res.writeHead(200, { 'content-type': current.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${toError(err).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new AfterError('E_PORT_TAKEN', `metrics port ${host}:${options.port} is already in use; choose another with --metrics-port`)
          : new AfterError('E_METRICS', `cannot serve metrics on ${host}:${options.port}: ${err.message}`),
      );
    });
    server.listen({ port: options.port, host }, resolve);
  });
  const address = server.address() as AddressInfo;
  boundPort = address.port;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/metrics`,
    use(next) {
      registry = next;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
