// A sidecar gateway for a describe block: a real node:http app on 127.0.0.1, createGateway in
// front of it with the given porthole.toml, and two listeners — one with the front (front.ts)
// and one without (node:http's path only). Registered with before/after hooks; everything is
// closed and removed after the block.
import { writeFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { after, before } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { closeServer, listen, tempDir } from './servers.js';

export interface SidecarSuite {
  /** Set in the block's `before` hook. */
  gw: Gateway;
  app: Server;
  withFront: Listening;
  noFront: Listening;
  dir: string;
}

/**
 * `toml`: the [sections] after `version = 1`. `token`: a fixed gateway token (omit to let the
 * gateway generate one it can rotate). `setup`: more listeners on the app (e.g. 'upgrade').
 */
export function sidecarSuite(toml: string, handler: RequestListener, options: { token?: string; setup?: (app: Server) => void } = {}): SidecarSuite {
  const home = tempDir();
  const s = { dir: home.dir } as SidecarSuite;
  before(async () => {
    s.app = createServer(handler);
    options.setup?.(s.app);
    const appPort = await listen(s.app);
    writeFileSync(`${home.dir}/porthole.toml`, `version = 1\n${toml}`);
    s.gw = createGateway({
      stateDir: home.dir,
      target: `http://127.0.0.1:${appPort}`,
      ...(options.token === undefined ? {} : { token: options.token }),
      config: loadConfig({ home: home.dir, env: {}, flags: {} }).config,
    });
    s.withFront = await listenGateway(s.gw, { host: '127.0.0.1', port: 0 });
    s.noFront = await listenGateway(s.gw, { host: '127.0.0.1', port: 0, front: false });
  });
  after(async () => {
    await s.withFront?.close();
    await s.noFront?.close();
    await s.gw?.close();
    s.app?.closeAllConnections();
    if (s.app) await closeServer(s.app);
    home.cleanup();
  });
  return s;
}
