/**
 * An HTTP proxy of a test in front of a database server: it counts the requests that pass,
 * and stages the outages a shared server cannot (go down, come back, freeze, thaw).
 *
 *   const proxy = await TestProxy.start(db.url);
 *   const store = await createStore(configFor(proxy.via(db.url), db.dbName), ...);
 *   await proxy.goDown(); ...; await proxy.comeBack();
 *   await proxy.close();
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import { freePort } from './ports';

/**
 * Forwards every request to `upstream` and can play an outage: refuse every connection
 * (goDown), or accept and forward nothing (freeze), as a hung network does.
 */
export class TestProxy {
  private readonly requests: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly upstreams = new Set<http.ClientRequest>();
  private readonly heldWhileFrozen: Array<() => void> = [];
  private frozen = false;
  private server: http.Server;

  private constructor(private readonly upstream: URL, private readonly port: number) {
    this.server = this.createServer();
  }

  static async start(upstreamUrl: string): Promise<TestProxy> {
    const proxy = new TestProxy(new URL(upstreamUrl), await freePort());
    await proxy.listen();
    return proxy;
  }

  /** The proxy's own URL, without credentials. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `serverUrl` (credentials and all) reached through this proxy: only its host changes. */
  via(serverUrl: string): string {
    const proxied = new URL(serverUrl);
    proxied.host = new URL(this.url).host;
    return proxied.toString().replace(/\/+$/, '');
  }

  /** How many `method` requests had a path containing `pathPart`. */
  count(method: string, pathPart: string): number {
    return this.requests.filter((r) => r.startsWith(`${method} `) && r.includes(pathPart)).length;
  }

  /** Connections are refused and those open are cut, as when the server stops. */
  async goDown(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const upstream of this.upstreams) upstream.destroy();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listening again on the same port after goDown(). */
  async comeBack(): Promise<void> {
    this.server = this.createServer();
    await this.listen();
  }

  /** Connections are accepted, and nothing goes either way until thaw(). */
  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const release of this.heldWhileFrozen.splice(0)) release();
  }

  /** Release what is frozen and stop listening. */
  async close(): Promise<void> {
    this.thaw();
    await this.goDown();
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private createServer(): http.Server {
    const server = http.createServer((req, res) => this.forward(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return server;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push(`${req.method} ${req.url}`);
    const upstream = http.request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: this.upstream.host } },
      (answer) => {
        const send = (write: () => void): void => (this.frozen ? void this.heldWhileFrozen.push(write) : write());
        send(() => res.writeHead(answer.statusCode ?? 502, answer.headers));
        answer.on('data', (chunk: Buffer) => send(() => res.write(chunk)));
        answer.on('end', () => send(() => res.end()));
        answer.on('error', () => res.destroy());
      },
    );
    this.upstreams.add(upstream);
    upstream.on('close', () => this.upstreams.delete(upstream));
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    const start = (): void => void req.pipe(upstream);
    if (this.frozen) this.heldWhileFrozen.push(start);
    else start();
  }
}
