// Embedding porthole in a Fastify 5 app: Fastify's serverFactory hands us its routing
// function, porthole wraps it, and the node:http server only ever calls porthole.
// Run: node --import tsx examples/fastify.ts
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { type Gateway, createGateway } from 'porthole';

const HOST = '127.0.0.1';

export interface Running {
  url: string;
  gateway: Gateway;
  close(): Promise<void>;
}

export async function start({ port, stateDir }: { port: number; stateDir?: string }): Promise<Running> {
  let gateway: Gateway | undefined;
  const fastify = Fastify({
    serverFactory: (handler) => {
      gateway = createGateway({
        // This app's own state (token, sessions); appName maps to ~/.config/fastify-example/porthole.
        ...(stateDir !== undefined ? { stateDir } : { appName: 'fastify-example' }),
        app: handler,
        settings: { host: HOST },
      });
      const server = http.createServer(gateway.handleRequest);
      server.on('upgrade', gateway.handleUpgrade);
      server.on('checkContinue', gateway.handleCheckContinue);
      return server;
    },
  });
  // serverFactory runs inside Fastify(): from here on the gateway exists.
  if (!gateway) throw new Error('fastify did not call serverFactory');
  const gw: Gateway = gateway;

  fastify.get('/api/hello', async (request) => {
    // Verified (HMAC, freshness) by the gateway's own key; undefined if absent or forged.
    const identity = gw.identityOf(request.raw);
    return { hello: identity?.sub ?? 'nobody', identity: identity ?? null };
  });

  // listen() awaits fastify.ready() (plugins, routes) before the server accepts anything.
  await fastify.listen({ port, host: HOST });
  const url = `http://${HOST}:${(fastify.server.address() as AddressInfo).port}`;

  return {
    url,
    gateway: gw,
    async close() {
      await fastify.close();
      await gw.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const running = await start({ port: 7070 });
  console.log(`fastify behind porthole: ${running.url}/api/hello`);
  process.once('SIGINT', () => void running.close());
}
