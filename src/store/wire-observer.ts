/**
 * What nano does not tell: nano 11's promise API resolves with the parsed body only, so the
 * status (a 202 from a cluster is not a 201), the `Date` header (the database clock) and the
 * bytes of a response still arriving (the `_changes` heartbeat) are invisible through it. It
 * also resolves with `''` when a body is cut off mid-way (an abort, a dropped socket).
 *
 * nano passes `agentOptions` to fetch as its undici dispatcher. The one `dispatcherFor(record)`
 * gives forwards the request to the process's global dispatcher and watches the response on the
 * way: its status, headers, byte arrival and socket failure are written to `record`. One
 * dispatcher per request (connection.ts makes a nano for each, a few microseconds) carries the
 * record there; AsyncLocalStorage would too, but it turns on Node's promise hooks, a cost on
 * every promise of the process.
 */

/** One exchange as seen on the wire. */
export interface WireRecord {
  status?: number;
  /** Response headers, names lowercased. */
  headers: Record<string, string>;
  /** The socket error or abort that ended the exchange before its body was complete. */
  failure?: Error;
  /** Called when the status line and headers arrive. */
  onHeaders?(status: number): void;
  /** Called for every chunk of the body (heartbeat newlines included). */
  onBytes?(count: number): void;
  /**
   * Set once the request is under way: aborts it at the dispatcher, which closes its socket.
   * Needed because an abort through fetch's signal does not always end a body being read (seen:
   * nano's `response.text()` of a longpoll `_changes` that had sent its headers stayed pending
   * after the abort, and its socket kept the process alive).
   */
  abortDispatch?(reason: Error): void;
}

/** A `Date` header and the local times its request left and its response arrived. */
export interface ServerDateSample {
  dateMs: number;
  sentAt: number;
  receivedAt: number;
  /**
   * How much older than its second the `Date` header may be: 1000 for Apache CouchDB, whose
   * HTTP layer (mochiweb) stamps responses from a date it refreshes once a second (measured: 258
   * of 400 headers older than their second allows, by up to 650 ms); 0 for a server that reads
   * its clock for each response (pouchdb-server). @default 0
   */
  staleMs?: number;
}

/** What a server's `Server` header says of its `Date` headers (ServerDateSample.staleMs). */
export function dateHeaderStaleMs(server: string | undefined): number {
  return server !== undefined && server.startsWith('CouchDB/') ? 1000 : 0;
}

type Handler = Record<string | symbol, unknown>;
interface Dispatcher {
  dispatch(options: unknown, handler: Handler): boolean;
}

// undici's own cross-version key for the global dispatcher (what setGlobalDispatcher sets
// and Node's fetch uses), so proxies or agents a program installs keep working.
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

export class WireObserver {
  constructor(private readonly onServerDate: (sample: ServerDateSample) => void) {}

  /** Give this to nano as `agentOptions` for one request: `record` watches it. */
  dispatcherFor(record: WireRecord): Dispatcher {
    return { dispatch: (options, handler) => this.dispatch(options, handler, record) };
  }

  private dispatch(options: unknown, handler: Handler, record: WireRecord): boolean {
    const inner = (globalThis as Record<symbol, Dispatcher | undefined>)[GLOBAL_DISPATCHER];
    if (!inner) throw new Error('no global HTTP dispatcher (Node.js fetch is not initialised)');
    const sentAt = Date.now();
    const seeHeaders = (status: number, headers: Record<string, string>): void => {
      const receivedAt = Date.now();
      const dateMs = headers.date ? Date.parse(headers.date) : NaN;
      if (Number.isFinite(dateMs)) this.onServerDate({ dateMs, sentAt, receivedAt, staleMs: dateHeaderStaleMs(headers.server) });
      record.status = status;
      record.headers = headers;
      record.onHeaders?.(status);
    };
    const watched = new Proxy(handler, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (typeof value !== 'function') return value;
        switch (property) {
          // undici ≤ 6: onConnect(abort); undici ≥ 7: onRequestStart(controller)
          case 'onConnect':
            return (abort: (reason?: Error) => void, ...rest: unknown[]) => {
              record.abortDispatch = (reason) => abort(reason);
              return value.call(target, abort, ...rest);
            };
          case 'onRequestStart':
            return (controller: { abort(reason?: Error): void }, ...rest: unknown[]) => {
              record.abortDispatch = (reason) => controller.abort(reason);
              return value.call(target, controller, ...rest);
            };
          // undici ≤ 6 handler API (Node 20, 22)
          case 'onHeaders':
            return (status: number, rawHeaders: unknown[], ...rest: unknown[]) => {
              seeHeaders(status, rawHeaderObject(rawHeaders));
              return value.call(target, status, rawHeaders, ...rest);
            };
          // undici ≥ 7 handler API
          case 'onResponseStart':
            return (controller: unknown, status: number, headers: Record<string, unknown>, ...rest: unknown[]) => {
              seeHeaders(status, headerObject(headers));
              return value.call(target, controller, status, headers, ...rest);
            };
          case 'onData':
          case 'onResponseData':
            return (...args: unknown[]) => {
              const chunk = args[args.length - 1] as { length?: number } | undefined;
              record.onBytes?.(chunk?.length ?? 0);
              return value.apply(target, args);
            };
          case 'onError':
          case 'onResponseError':
            return (...args: unknown[]) => {
              const error = args[args.length - 1];
              record.failure = error instanceof Error ? error : new Error(String(error));
              return value.apply(target, args);
            };
          default:
            return value.bind(target);
        }
      },
    });
    return inner.dispatch(options, watched);
  }
}

/** undici ≤ 6 gives headers as a flat [name, value, name, value...] list of Buffers. */
function rawHeaderObject(raw: unknown[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    headers[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
  }
  return headers;
}

function headerObject(headers: Record<string, unknown>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    result[name.toLowerCase()] = Array.isArray(value) ? value.map(String).join(', ') : String(value);
  }
  return result;
}
