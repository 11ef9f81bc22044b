/**
 * `GET /metrics` in the Prometheus text format, on its own small node:http server. The port is
 * bound before the worker starts (see worker-sidecars.ts), so a port already taken fails
 * `after start` at once instead of leaving a worker running that nobody can scrape.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { AfterError, toError } from '../errors';

export interface MetricsServer {
  /** `http://host:port/metrics` */
  readonly url: string;
  /** Serve this registry from now on (before: an empty 200, so a scrape never fails). */
  use(registry: Registry): void;
  close(): Promise<void>;
}

export async function startMetricsServer(options: { port: number; host?: string }): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  let registry: Registry | undefined;
  const server = http.createServer((req, res) => {
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
