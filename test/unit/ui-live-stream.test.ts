import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import type * as http from 'node:http';
import { liveStreams } from '../../src/ui/live-stream';

/** A response that keeps what is written to it, and the request it answers. */
function client() {
  const frames: string[] = [];
  const req = new EventEmitter() as unknown as http.IncomingMessage;
  const res = { writeHead() {}, write: (text: string) => frames.push(text), end() {} } as unknown as http.ServerResponse;
  return { req, res, events: () => frames.filter((f) => f.startsWith('event: tasks')).map((f) => JSON.parse(f.split('data: ')[1]!) as { changes: number; tasks: Array<{ id: string; n: number }> }) };
}

describe('dashboard live stream: a burst of changes becomes a few events', () => {
  it('sends one event per window with the count and each changed task once, as it is last', async () => {
    const live = liveStreams(30);
    const page = client();
    live.open(page.req, page.res);
    for (let n = 0; n < 3000; n++) live.changed(`t${n % 1000}`, { id: `t${n % 1000}`, n });
    await new Promise((resolve) => setTimeout(resolve, 60));
    const events = page.events();
    expect(events).to.have.length(1);
    expect(events[0]!.changes).to.equal(3000);
    expect(events[0]!.tasks).to.have.length(50);
    expect(events[0]!.tasks[49], 'the newest last, as it was last written').to.deep.equal({ id: 't999', n: 2999 });
    live.close();
  });
});
