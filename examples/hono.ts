// Embedding porthole in a Hono 4 app on Node: @hono/node-server's getRequestListener turns
// app.fetch into a node:http handler, porthole sits in front of it, and porthole's own
// listener (listenGateway: header timeouts, size limits, JSON errors) serves both.
// Run: node --import tsx examples/hono.ts
import { pathToFileURL } from 'node:url';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { type Gateway, createGateway, listenGateway } from 'porthole';

const HOST = '127.0.0.1';

export interface Running {
  url: string;
  gateway: Gateway;
  close(): Promise<void>;
}

export async function start({ port, stateDir }: { port: number; stateDir?: string }): Promise<Running> {
  const app = new Hono();
  const gateway = createGateway({
    // This app's own state (token, sessions); appName maps to ~/.config/hono-example/porthole.
    ...(stateDir !== undefined ? { stateDir } : { appName: 'hono-example' }),
    app: getRequestListener(app.fetch),
    settings: { host: HOST },
  });

  app.get('/api/hello', (c) => {
    // Verified (HMAC, freshness) by the gateway's own key; undefined if absent or forged.
    const identity = gateway.identityOf(c.req.header('x-porthole-identity'));
    return c.json({ hello: identity?.sub ?? 'nobody', identity: identity ?? null });
  });

  const listening = await listenGateway(gateway, { host: HOST, port });
  return {
    url: listening.url,
    gateway,
    async close() {
      await listening.close();
      await gateway.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const running = await start({ port: 7070 });
  console.log(`hono behind porthole: ${running.url}/api/hello`);
  process.once('SIGINT', () => void running.close());
}
