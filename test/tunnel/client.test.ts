// The desk's tunnel client against a scripted relay (a TLS server with the test CA that
// speaks the handshake's first messages): a relay's retryAfter is honoured, and capped.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { encodeMessage, PROTOCOL_VERSION, TUNNEL_ALPN } from '../../src/protocol/handshake.js';
import { createTunnelClient, type TunnelState } from '../../src/tunnel/client.js';
import { loadOrCreateIdentity } from '../../src/tunnel/identity.js';
import { listen, tempDir } from '../helpers/servers.js';
import { DOMAIN, makePki, type TunnelPki } from '../helpers/tunnel.js';

let pki: TunnelPki;
const dir = tempDir();
before(() => {
  pki = makePki();
});
after(() => {
  pki.cleanup();
  dir.cleanup();
});

/** A relay that challenges, then refuses every registration with `refusal`. */
async function refusingRelay(refusal: Record<string, unknown>): Promise<{ port: number; attempts: () => number; close(): void }> {
  let attempts = 0;
  const server = createServer({ cert: readFileSync(pki.relayCert), key: readFileSync(pki.relayKey), ALPNProtocols: [TUNNEL_ALPN], minVersion: 'TLSv1.3' }, (s: TLSSocket) => {
    attempts++;
    s.on('error', () => {});
    s.write(encodeMessage({ type: 'challenge', version: PROTOCOL_VERSION, relay: DOMAIN, nonce: randomBytes(32).toString('base64url') }));
    s.once('data', () => s.end(encodeMessage({ type: 'error', ...refusal } as never)));
  });
  const port = await listen(server);
  return { port, attempts: () => attempts, close: () => server.close() };
}

async function waitingAfterRefusal(refusal: Record<string, unknown>): Promise<Extract<TunnelState, { state: 'waiting' }>> {
  const relay = await refusingRelay(refusal);
  const client = createTunnelClient({
    relay: `${DOMAIN}:${relay.port}`,
    connectAddress: '127.0.0.1',
    ca: pki.caPem,
    identity: loadOrCreateIdentity(`${dir.dir}/identity`),
    secret: 'a-registration-secret-0123',
    onStream: (s) => s.destroy(),
    backoff: { baseMs: 10, maxMs: 100 },
  });
  try {
    const waiting = new Promise<Extract<TunnelState, { state: 'waiting' }>>((resolve) =>
      client.on('state', (st: TunnelState) => {
        if (st.state === 'waiting') resolve(st);
      }),
    );
    client.start();
    return await waiting;
  } finally {
    await client.stop();
    relay.close();
  }
}

test("a relay's retryAfter holds the next attempt back, longer than the back-off would", { timeout: 10_000 }, async () => {
  const st = await waitingAfterRefusal({ code: 'RATE_LIMITED', message: 'too many registrations', retryAfter: 40 });
  assert.equal(st.lastError.code, 'RATE_LIMITED');
  assert.ok(st.retryInMs >= 40_000, `retry in ${st.retryInMs} ms`);
});

test('a hostile retryAfter is capped at 15 minutes; a code that is not one is not recorded as sent', { timeout: 10_000 }, async () => {
  const st = await waitingAfterRefusal({ code: `${'X'.repeat(5000)}\n{"event":"forged"}`, message: 'go away', retryAfter: 1e12 });
  assert.equal(st.lastError.code, 'TUNNEL_PROTOCOL_ERROR');
  assert.ok(st.retryInMs <= 900_000 && st.retryInMs >= 899_000, `retry in ${st.retryInMs} ms`);
});
