// Console events (src/gateway/api/events.ts) on a real gateway's control plane, received by
// the real client: a burst of changes is one event carrying the latest state, an unchanged
// overview is not sent again unless forced, and events stop once closed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type ControlClient } from '../../src/client/index.js';
import { createConsoleEvents } from '../../src/gateway/api/events.js';
import { type ControlGateway, startControlGateway, TOKEN } from '../control/helpers.js';

let g: ControlGateway;
let client: ControlClient;
const seen: { event: string; payload: Record<string, unknown> }[] = [];

before(async () => {
  g = await startControlGateway();
  client = await connect({ url: g.url, token: TOKEN, env: {}, reconnect: false });
  client.on('*', (payload, event) => seen.push({ event, payload: payload as Record<string, unknown> }));
});
after(async () => {
  await client?.close();
  await g?.close();
});

/** Resolves when an event `name` passing `accept` has been seen (bounded). */
async function waitFor(name: string, accept: (p: Record<string, unknown>) => boolean, timeoutMs = 5_000): Promise<void> {
  if (seen.some((s) => s.event === name && accept(s.payload))) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${name} within ${timeoutMs} ms`));
    }, timeoutMs);
    // Checked on `seen` once every handler of the event has run (the '*' one records it).
    const off = client.on(name, () =>
      queueMicrotask(() => {
        if (!seen.some((s) => s.event === name && accept(s.payload))) return;
        clearTimeout(timer);
        off();
        resolve();
      }),
    );
  });
}

test('bursts are coalesced, repeats dropped, forced sends go out, nothing after close', async () => {
  let n = 0;
  let overview = 'first';
  let exposureCalls = 0;
  let called: () => void = () => {};
  const events = createConsoleEvents({
    control: g.gateway.control,
    tunnelStatus: () => ({ n }),
    exposure: async () => {
      exposureCalls++;
      called();
      return { overview };
    },
    delayMs: 20,
  });
  // The names are declared at once (listed in the hello of clients connecting from now on).
  const late = await connect({ url: g.url, token: TOKEN, env: {}, reconnect: false });
  assert.ok(late.hello.events.includes('tunnel.state') && late.hello.events.includes('exposure.changed'));
  await late.close();

  for (let i = 1; i <= 10; i++) {
    n = i;
    events.tunnelChanged();
  }
  await waitFor('tunnel.state', (p) => p['n'] === 10);
  await waitFor('exposure.changed', (p) => p['overview'] === 'first');
  assert.equal(exposureCalls, 1);

  // Unchanged: computed, not sent. Then a forced send of the same overview does go out.
  const computed = new Promise<void>((r) => (called = r));
  events.exposureChanged();
  await computed;
  events.exposureChanged(true);
  await waitFor('exposure.changed', () => seen.filter((s) => s.event === 'exposure.changed').length === 2);
  overview = 'second';
  events.exposureChanged();
  await waitFor('exposure.changed', (p) => p['overview'] === 'second');

  assert.deepEqual(
    seen.map((s) => [s.event, JSON.stringify(s.payload)]),
    [
      ['tunnel.state', '{"n":10}'],
      ['exposure.changed', '{"overview":"first"}'],
      ['exposure.changed', '{"overview":"first"}'],
      ['exposure.changed', '{"overview":"second"}'],
    ],
  );

  // Closed: triggers do nothing (the timer would long have fired; a fresh publish proves order).
  events.close();
  n = 11;
  events.tunnelChanged();
  events.exposureChanged(true);
  g.gateway.control.publish('sentinel', { done: true });
  await waitFor('sentinel', () => true);
  assert.equal(seen.length, 5);
});
