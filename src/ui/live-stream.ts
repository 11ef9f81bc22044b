/**
 * The dashboard's live updates: Server-Sent Events fed by the database's `_changes`, coalesced.
 * A burst of workers' writes (3,000 tasks claimed and finished in two seconds is 6,000 changes)
 * becomes one event every half second carrying how many tasks changed and the last few of them,
 * so the page redraws a few times a second however busy the database is, and its main thread is
 * never flooded. A task that changed several times in a window is sent once, as it is last.
 */
import type * as http from 'node:http';

/** How often changes are sent. */
export const LIVE_WINDOW_MS = 500;
/** Tasks sent per window at most (the newest); the count says how many changed. */
export const LIVE_TASKS_PER_WINDOW = 50;
/** A comment line on every stream this often, so proxies and the browser keep it open. */
const PING_MS = 15_000;

export interface LiveStreams {
  open(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** A changed task (its summary), sent with the next window. */
  changed(id: string, summary: unknown): void;
  /** The feed reconnected: changes may have been missed, the pages read again. */
  resync(): void;
  close(): void;
}

export function liveStreams(windowMs = LIVE_WINDOW_MS): LiveStreams {
  /** Each open stream, with its ping timer. */
  const streams = new Map<http.ServerResponse, NodeJS.Timeout>();
  const pending = new Map<string, unknown>();
  let changes = 0;
  let timer: NodeJS.Timeout | undefined;

  const send = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams.keys()) res.write(frame);
  };
  const flush = (): void => {
    timer = undefined;
    if (changes === 0) return;
    const tasks = [...pending.values()].slice(-LIVE_TASKS_PER_WINDOW);
    send('tasks', { changes, tasks });
    pending.clear();
    changes = 0;
  };

  return {
    open(req, res) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      // Tell EventSource to reconnect quickly after the server restarts.
      res.write('retry: 2000\n\nevent: hello\ndata: {}\n\n');
      streams.set(res, setInterval(() => res.write(': ping\n\n'), PING_MS));
      req.on('close', () => {
        clearInterval(streams.get(res));
        streams.delete(res);
      });
    },
    changed(id, summary) {
      pending.delete(id);
      pending.set(id, summary);
      changes++;
      timer ??= setTimeout(flush, windowMs);
    },
    resync: () => send('resync', {}),
    close() {
      if (timer) clearTimeout(timer);
      for (const [res, ping] of streams) {
        clearInterval(ping);
        res.end();
      }
      streams.clear();
    },
  };
}
