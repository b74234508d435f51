// 1,000 concurrent control sessions in one gateway: all authenticate (at most 50 handshakes
// in flight, under the pre-auth cap), all receive one published event and answer a request,
// and the whole run stays within a time and memory bound. Waits on acknowledgements only.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type ControlClient } from '../../src/client/index.js';
import { startControlGateway, TOKEN, type ControlGateway } from './helpers.js';

const SESSIONS = 1000;
const WINDOW = 50;

let g: ControlGateway;
before(async () => {
  g = await startControlGateway({ control: { maxPendingPerClient: WINDOW } });
});
after(() => g.close());

test('1,000 concurrent sessions: handshake, one event each, one request each', { timeout: 90_000 }, async () => {
  const started = Date.now();
  const rssBefore = process.memoryUsage().rss;
  const clients: ControlClient[] = [];
  try {
    let next = 0;
    // WINDOW workers, each opening sessions one after another: never more than WINDOW unauthenticated.
    await Promise.all(
      Array.from({ length: WINDOW }, async () => {
        while (next < SESSIONS) {
          next++;
          clients.push(await connect({ url: g.url, token: TOKEN, env: {}, reconnect: false }));
        }
      }),
    );
    assert.equal(clients.length, SESSIONS);
    assert.equal(g.gateway.control.size, SESSIONS);

    const received = clients.map((c) => new Promise((resolve) => c.on('fanout', resolve)));
    assert.equal(g.gateway.control.publish('fanout', { n: 42 }), SESSIONS);
    const payloads = await Promise.all(received);
    assert.ok(payloads.every((p) => (p as { n: number }).n === 42));

    const answers = await Promise.all(clients.map((c) => c.request('health')));
    assert.equal(answers.length, SESSIONS);

    const elapsed = Date.now() - started;
    const grown = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    // Both ends live in this process: ~2,000 sockets. Generous bounds that still catch a leak per message.
    assert.ok(elapsed < 60_000, `took ${elapsed} ms`);
    assert.ok(grown < 600, `rss grew ${grown.toFixed(0)} MiB`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  // Every session is gone on the server too (bounded wait on the server's own count).
  const end = Date.now() + 10_000;
  while (g.gateway.control.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(g.gateway.control.size, 0);
});
