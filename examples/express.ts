// Embedding porthole in an Express 5 app: porthole's handlers own the node:http server,
// Express gets only the requests porthole let through, and a `ws` WebSocketServer gets
// the authenticated upgrades. Run: node --import tsx examples/express.ts
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { type Gateway, createGateway } from 'porthole';
import { WebSocketServer } from 'ws';

const HOST = '127.0.0.1';

export interface Running {
  url: string;
  gateway: Gateway;
  close(): Promise<void>;
}

export async function start({ port, stateDir }: { port: number; stateDir?: string }): Promise<Running> {
  const app = express();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });

  const gateway = createGateway({
    // This app's own state (token, sessions); appName maps to ~/.config/express-example/porthole.
    ...(stateDir !== undefined ? { stateDir } : { appName: 'express-example' }),
    app,
    onUpgrade: (req, socket, head) => {
      // porthole has authenticated the upgrade already; routing it is the app's job.
      if (req.url?.split('?')[0] !== '/ws') {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    // The address the server below binds: a Host naming it counts as local.
    settings: { host: HOST },
  });

  app.get('/api/hello', (req, res) => {
    // Verified (HMAC, freshness) by the gateway's own key; undefined if absent or forged.
    const identity = gateway.identityOf(req);
    res.json({ hello: identity?.sub ?? 'nobody', identity: identity ?? null });
  });

  app.get('/events', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    const tick = () => res.write(`data: ${JSON.stringify({ now: new Date().toISOString() })}\n\n`);
    tick();
    const timer = setInterval(tick, 1000);
    req.on('close', () => clearInterval(timer));
  });

  const server = http.createServer(gateway.handleRequest);
  server.on('upgrade', gateway.handleUpgrade);
  server.on('checkContinue', gateway.handleCheckContinue); // 100 Continue only once authorised
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const url = `http://${HOST}:${(server.address() as AddressInfo).port}`;

  return {
    url,
    gateway,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // SSE streams and keep-alive sockets
      await closed;
      await gateway.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const running = await start({ port: 7070 });
  console.log(`express behind porthole: ${running.url}/api/hello`);
  process.once('SIGINT', () => void running.close());
}
