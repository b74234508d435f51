// Child process for `npm run bench:control`: one of the two servers being compared.
//
//   BENCH_CONTROL_ROLE=floor  a plain `ws` server (no porthole) speaking the same JSON frames
//                             as porthole's control plane, with the least work possible: parse
//                             the request, answer `echo` with its params, answer `bench.burst`
//                             with n event frames then the response. The floor.
//   BENCH_CONTROL_ROLE=desk   `porthole serve` as a library call (startServe: config from
//                             PORTHOLE_HOME/porthole.toml, auth on, the Unix socket, the
//                             tunnel manager) with the same two methods registered through
//                             `gateway.control`. Prints its tunnel states as JSON lines.
//
// Prints `{"event":"listening","port":N}` once ready; exits on SIGTERM/SIGINT. The token
// comes from PORTHOLE_AUTH_TOKEN (environment, never argv).
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const role = process.env['BENCH_CONTROL_ROLE'];
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
let close = async (): Promise<void> => {};

/** The event payload both servers push: small, like a job-progress update. */
function tick(i: number): { i: number; state: string; progress: number } {
  return { i, state: 'running', progress: i / 1000 };
}

if (role === 'floor') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws) => {
    let seq = 0;
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { id: string; method: string; params?: { n?: number } };
      if (f.method === 'bench.burst') {
        const n = f.params?.n ?? 0;
        for (let i = 0; i < n; i++) ws.send(JSON.stringify({ type: 'event', event: 'bench.tick', payload: tick(i), seq: ++seq }));
        ws.send(JSON.stringify({ type: 'res', id: f.id, ok: true, payload: { n } }));
      } else {
        ws.send(JSON.stringify({ type: 'res', id: f.id, ok: true, payload: f.params ?? null }));
      }
    });
  });
  close = () => new Promise((resolve) => wss.close(() => resolve()));
  print({ event: 'listening', port: (wss.address() as AddressInfo).port });
} else if (role === 'desk') {
  const home = process.env['PORTHOLE_HOME'];
  if (!home) throw new Error('desk needs PORTHOLE_HOME');
  const { loadConfig } = await import('../../src/config/load.js');
  const { startServe } = await import('../../src/gateway/serve.js');
  const flags = { host: '127.0.0.1', port: 0, target: 'http://127.0.0.1:9', loopbackExempt: false };
  const loaded = loadConfig({ home, env: process.env, flags });
  const running = await startServe({ home, config: loaded.config, env: process.env, tls: { mode: 'off' } });
  const control = running.gateway.control;
  control.method('echo', (params) => params ?? null);
  control.event('bench.tick');
  control.method('bench.burst', (params) => {
    const n = (params as { n?: number } | undefined)?.n ?? 0;
    for (let i = 0; i < n; i++) control.publish('bench.tick', tick(i));
    return { n };
  });
  running.tunnel.on('state', (s) => print({ event: 'tunnel', ...s }));
  close = () => running.close();
  print({ event: 'listening', port: running.listening.port });
} else {
  throw new Error('BENCH_CONTROL_ROLE must be floor or desk');
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    void close().finally(() => process.exit(0));
  });
}
