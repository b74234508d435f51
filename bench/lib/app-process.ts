// Child process for the benchmark: the app alone (`bare`) or the same app behind an
// embedded gateway (`embedded`, createGateway from src with auth on and no loopback
// exemption). Prints one JSON line `{"port":N}` once listening; exits on SIGTERM/SIGINT.
//
// Inputs come from the environment, never argv (the bearer is a secret):
//   BENCH_APP_MODE   bare | embedded | floor (a minimal token check, no gateway: see minimalTokenCheck)
//   BENCH_APP_FRAMEWORK  node (default: the raw handler) | express (the same routes in an
//                    Express 5 app: what a typical embedding app costs per request)
//   BENCH_BEARER     the gateway token (embedded, floor)
//   BENCH_STATE_DIR  porthole's state directory (embedded)
//   BENCH_PORTHOLE_MODULE  porthole's entry module (embedded; default this checkout's src/index.ts),
//                    e.g. a patched copy's dist/index.js to measure a change before applying it
import { timingSafeEqual } from 'node:crypto';
import http, { type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { appHandler, HELLO } from './app.js';

const mode = process.env['BENCH_APP_MODE'];
const framework = process.env['BENCH_APP_FRAMEWORK'] ?? 'node';
if (framework !== 'node' && framework !== 'express') throw new Error(`BENCH_APP_FRAMEWORK must be node or express, not ${framework}`);
const app: RequestListener = framework === 'express' ? await expressApp() : appHandler;
let listener: RequestListener = app;
let close = async (): Promise<void> => {};

if (mode === 'embedded') {
  const token = process.env['BENCH_BEARER'];
  const stateDir = process.env['BENCH_STATE_DIR'];
  if (!token || !stateDir) throw new Error('embedded mode needs BENCH_BEARER and BENCH_STATE_DIR');
  const entry = process.env['BENCH_PORTHOLE_MODULE'];
  const porthole: typeof import('../../src/index.js') = await import(
    entry ? pathToFileURL(entry).href : '../../src/index.js'
  );
  const gateway = porthole.createGateway({
    stateDir,
    app,
    token,
    settings: { host: '127.0.0.1', loopbackExempt: false },
  });
  listener = gateway.handleRequest;
  close = () => gateway.close();
} else if (mode === 'floor') {
  listener = minimalTokenCheck(app);
} else if (mode !== 'bare') {
  throw new Error(`BENCH_APP_MODE must be bare, embedded or floor, not ${String(mode)}`);
}

// The same server options in both modes, so the only difference is the gateway.
const server = http.createServer({ keepAliveTimeout: 5_000 }, listener);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

const stop = (): void => {
  server.close();
  server.closeAllConnections();
  void close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

/**
 * The floor (`floor`): the least any token gateway in the app's process must do per request —
 * read the bearer, compare it in constant time, remove it and tell the app who is asking. No
 * Host allowlist, origin check, ban table, ingress classification or revocation tracking: not
 * a gateway, a yardstick for what the 95% goal leaves room for (docs/performance.md §9).
 */
function minimalTokenCheck(next: RequestListener): RequestListener {
  const token = Buffer.from(process.env['BENCH_BEARER'] ?? '');
  if (token.length === 0) throw new Error('floor mode needs BENCH_BEARER');
  const scratch = Buffer.alloc(token.length);
  return (req, res) => {
    const h = req.headers;
    const auth = h.authorization;
    let ok = false;
    if (h.host !== undefined && auth?.startsWith('Bearer ')) {
      scratch.fill(0);
      const n = scratch.write(auth.slice(7));
      ok = timingSafeEqual(scratch, token) && n === token.length;
    }
    if (!ok) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized\n');
      return;
    }
    delete h.authorization;
    h['x-porthole-identity'] = 'v=1; sub=owner; cred=token; scope=admin';
    next(req, res);
  };
}

/** The bench app's two routes as an Express 5 app would write them. */
async function expressApp(): Promise<RequestListener> {
  const { default: express } = await import('express');
  const e = express();
  e.get('/stream', (req, res) => appHandler(req, res));
  e.use((_req, res) => {
    res.type('text/plain').send(HELLO);
  });
  return e as unknown as RequestListener;
}
