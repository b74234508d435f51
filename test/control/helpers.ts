// A real gateway (library) listening on 127.0.0.1:0 for control-plane tests, and a raw
// WebSocket peer that speaks the protocol by hand (for hostile and replay cases).
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { type Gateway, type GatewayOptions, createGateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { WebSocket } from 'ws';
import { tempDir } from '../helpers/servers.js';

export const TOKEN = `ph_${'a'.repeat(20)}${'B'.repeat(23)}`;

export interface ControlGateway {
  gateway: Gateway;
  listening: Listening;
  url: string;
  wsUrl: string;
  home: string;
  close(): Promise<void>;
}

export async function startControlGateway(
  options: { toml?: string; control?: GatewayOptions['control']; tls?: { cert: string; key: string }; token?: string | null; settings?: GatewayOptions['settings'] } = {},
): Promise<ControlGateway> {
  const tmp = tempDir('porthole-control-');
  writeFileSync(`${tmp.dir}/porthole.toml`, `version = 1\n${options.toml ?? ''}`);
  const gateway = createGateway({
    stateDir: tmp.dir,
    app: (_req, res) => res.end('app'),
    ...(options.token === null ? {} : { token: options.token ?? TOKEN }),
    control: options.control,
    settings: options.settings,
  });
  const listening = await listenGateway(gateway, { host: '127.0.0.1', port: 0, tls: options.tls });
  return {
    gateway,
    listening,
    url: listening.url,
    wsUrl: `${listening.url.replace(/^http/, 'ws')}/_porthole/ws`,
    home: tmp.dir,
    async close() {
      await gateway.close();
      await listening.close();
      tmp.cleanup();
    },
  };
}

/** A hand-driven peer: collects frames and the close. */
export interface RawPeer {
  ws: WebSocket;
  next(): Promise<Record<string, unknown>>;
  send(frame: unknown): void;
  closed: Promise<{ code: number; reason: string }>;
}

export async function rawPeer(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<RawPeer> {
  const ws = new WebSocket(url, options);
  const queue: Record<string, unknown>[] = [];
  const waiting: ((f: Record<string, unknown>) => void)[] = [];
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as Record<string, unknown>;
    const w = waiting.shift();
    if (w) w(f);
    else queue.push(f);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('error', () => {});
  await once(ws, 'open');
  return {
    ws,
    next: () => {
      const f = queue.shift();
      if (f) return Promise.resolve(f);
      return new Promise((resolve, reject) => {
        waiting.push(resolve);
        closed.then((c) => reject(new Error(`closed ${c.code} ${c.reason}`)));
      });
    },
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    closed,
  };
}

/** The challenge payload of a fresh raw peer. */
export async function challengeOf(peer: RawPeer): Promise<{ nonce: string; ts: number; bindings: string[] }> {
  const f = await peer.next();
  if (f['event'] !== 'connect.challenge') throw new Error(`expected a challenge, got ${JSON.stringify(f)}`);
  return f['payload'] as { nonce: string; ts: number; bindings: string[] };
}
