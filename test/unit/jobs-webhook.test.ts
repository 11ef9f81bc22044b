import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WEBHOOK_BODY_LIMIT, webhookJob, type WebhookResult } from '../../src/jobs/builtins/webhook';
import { runJob } from '../../src/jobs/run-job';
import { silentLogger } from '../../src/log';
import type { RunOutcome, TaskDoc } from '../../src/types';

interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** A local HTTP server on a free loopback port; each test sets what it answers. */
class HookServer {
  readonly received: ReceivedRequest[] = [];
  /** Requests whose connection closed before an answer was sent. */
  abandoned = 0;
  handler: Handler = (_req, res) => res.end();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.on('close', () => {
        if (!res.writableEnded) this.abandoned += 1;
      });
      this.handler(req, res, body);
    });
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  url(pathname = '/hook'): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${pathname}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function hookDoc(args: unknown[]): TaskDoc {
  return { _id: 'hook-task', worker: 'w', date: '2030-01-01', job: { name: 'webhook', arguments: args }, customer: 7 };
}

function runHook(args: unknown[], options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RunOutcome> {
  return runJob(webhookJob, hookDoc(args), {
    signal: options.signal ?? new AbortController().signal,
    log: silentLogger(),
    timeoutMs: options.timeoutMs,
  });
}

function success(outcome: RunOutcome): WebhookResult {
  expect(outcome, JSON.stringify(outcome)).to.have.property('kind', 'success');
  return (outcome as { result: WebhookResult }).result;
}

function failure(outcome: RunOutcome): { message: string; code?: string } {
  expect(outcome, JSON.stringify(outcome)).to.have.property('kind', 'failure');
  return (outcome as { error: { message: string; code?: string } }).error;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('webhook built-in job', () => {
  let server: HookServer;
  beforeEach(async () => {
    server = new HookServer();
    await server.start();
  });
  afterEach(async () => {
    await server.stop();
  });

  it('POSTs the task document as JSON and returns a JSON answer parsed', async () => {
    server.handler = (_req, res) => {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end('{"accepted":true}');
    };
    const result = success(await runHook([server.url()]));
    expect(result).to.deep.equal({ status: 200, body: { accepted: true } });

    const [request] = server.received;
    expect(request!.method).to.equal('POST');
    expect(request!.url).to.equal('/hook');
    expect(request!.headers['content-type']).to.equal('application/json');
    expect(request!.headers['x-after-task-id']).to.equal('hook-task');
    expect(JSON.parse(request!.body)).to.deep.equal(hookDoc([server.url()]));
  });

  it('returns a text answer as text', async () => {
    server.handler = (_req, res) => {
      res.statusCode = 202;
      res.setHeader('content-type', 'text/plain');
      res.end('42');
    };
    expect(success(await runHook([server.url()]))).to.deep.equal({ status: 202, body: '42' });
  });

  it('sends the headers of the object form', async () => {
    server.handler = (_req, res) => res.end();
    success(await runHook([{ url: server.url(), headers: { 'X-Token': 'abc' } }]));
    expect(server.received[0]!.headers['x-token']).to.equal('abc');
  });

  it('sends URL credentials as Basic auth and never shows them in a failure', async () => {
    server.handler = (_req, res) => {
      res.statusCode = 500;
      res.end('boom');
    };
    const url = server.url().replace('http://', 'http://hookuser:s3cret@');
    const error = failure(await runHook([url]));
    expect(server.received[0]!.headers.authorization).to.equal(`Basic ${Buffer.from('hookuser:s3cret').toString('base64')}`);
    expect(error.message).to.not.include('s3cret');
  });

  it('fails on a non-2xx answer, naming the URL and the status', async () => {
    server.handler = (_req, res) => {
      res.statusCode = 500;
      res.end('database unavailable');
    };
    const error = failure(await runHook([server.url()]));
    expect(error.code).to.equal('E_WEBHOOK');
    expect(error.message).to.include(server.url()).and.include('500');
  });

  it('does not follow a redirect, to another scheme or even the same server', async () => {
    server.handler = (req, res) => {
      res.statusCode = 302;
      res.setHeader('location', req.url === '/hook' ? 'file:///etc/passwd' : '/hook');
      res.end();
    };
    expect(failure(await runHook([server.url()])).code).to.equal('E_WEBHOOK');
    expect(failure(await runHook([server.url('/elsewhere')])).code).to.equal('E_WEBHOOK');
    expect(server.received.map((request) => request.url)).to.deep.equal(['/hook', '/elsewhere']);
  });

  it('keeps 64 KiB of a large answer, marked truncated', async () => {
    server.handler = (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(`"${'x'.repeat(200_000)}"`);
    };
    const result = success(await runHook([server.url()]));
    expect(result.body).to.be.a('string').with.length(WEBHOOK_BODY_LIMIT);
    expect(result.body_truncated).to.equal(true);
  });

  it("fails with E_TIMEOUT when the server never answers within the webhook's timeout_ms", async () => {
    server.handler = () => undefined;
    const started = Date.now();
    const error = failure(await runHook([{ url: server.url(), timeout_ms: 200 }]));
    expect(error.code).to.equal('E_TIMEOUT');
    expect(Date.now() - started).to.be.below(2000);
  });

  it("ends at the task's timeout and drops the request", async () => {
    server.handler = () => undefined;
    const error = failure(await runHook([server.url()], { timeoutMs: 200 }));
    expect(error.code).to.equal('E_TIMEOUT');
    await until(() => server.abandoned === 1, 'the server to see the request dropped');
  });

  it('fails when nothing listens, naming the reason', async () => {
    const url = server.url();
    await server.stop();
    const error = failure(await runHook([url]));
    expect(error.code).to.equal('E_WEBHOOK');
    expect(error.message).to.include('ECONNREFUSED');
    server = new HookServer();
    await server.start();
  });

  const badTargets: Array<[string, unknown[]]> = [
    ['no URL', []],
    ['a number', [42]],
    ['text that is not a URL', ['not a url']],
    ['a file URL', ['file:///etc/passwd']],
    ['an ftp URL', ['ftp://127.0.0.1/x']],
    ['a javascript URL', ['javascript:alert(1)']],
    ['headers that are not strings', [{ url: 'http://127.0.0.1:1/x', headers: { a: 1 } }]],
    ['a negative timeout', [{ url: 'http://127.0.0.1:1/x', timeout_ms: -1 }]],
  ];
  for (const [label, args] of badTargets) {
    it(`fails a task with ${label} as invalid, sending nothing`, async () => {
      expect(failure(await runHook(args)).code).to.equal('E_TASK_INVALID');
      expect(server.received).to.deep.equal([]);
    });
  }
});
