// Starts the benchmark targets and checks each answers as expected before any load:
// the bare app, the sidecar (`porthole serve`, auth on, no loopback exemption), nginx,
// Caddy, and the embedded gateway. Porthole targets must also refuse a request without
// the bearer, which proves every measured request really authenticated.
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCaddy, startNginx } from './peers.js';
import { type ProcessSet, readFirstLine } from './procs.js';
import type { TargetId } from './report.js';
import { HELLO } from './app.js';

const READY_TIMEOUT_MS = 20_000;
const ROOT = new URL('../../', import.meta.url).pathname;

export interface RunningTarget {
  id: TargetId;
  port: number;
}

export interface StartContext {
  procs: ProcessSet;
  dir: string;
  bearer: string;
  sidecarNodeArgs: string[];
  portholeBin: string | undefined;
  portholeBinB?: string | undefined;
  portholeModule: string | undefined;
  appWorkUs: number;
}

/** Starts what `wanted` needs (the bare app always: the proxies forward to it), in a fixed order. */
export async function startTargets(ctx: StartContext, wanted: readonly TargetId[]): Promise<RunningTarget[]> {
  const app = await startApp(ctx, 'bare');
  const out: RunningTarget[] = [];
  for (const id of wanted) {
    let port: number;
    if (id === 'direct') port = app;
    else if (id === 'sidecar') port = await startSidecar(ctx, app, ctx.portholeBin, 'sidecar');
    else if (id === 'sidecar-b') port = await startSidecar(ctx, app, ctx.portholeBinB, 'sidecar-b');
    else if (id === 'nginx') port = (await startNginx(ctx.procs, ctx.dir, app)).port;
    else if (id === 'caddy') port = (await startCaddy(ctx.procs, ctx.dir, app)).port;
    else if (id === 'express') port = await startApp(ctx, 'bare', 'express');
    else if (id === 'embedded-express') port = await startApp(ctx, 'embedded', 'express');
    else if (id === 'floor') port = await startApp(ctx, 'floor');
    else port = await startApp(ctx, 'embedded');
    await verify(id, port, ctx.bearer);
    out.push({ id, port });
  }
  return out;
}

/** The app in its own process, alone or behind createGateway (run through tsx, as an embedding app would be). */
async function startApp(ctx: StartContext, mode: 'bare' | 'embedded' | 'floor', framework: 'node' | 'express' = 'node'): Promise<number> {
  const stateDir = join(ctx.dir, `embedded-${framework}-state`);
  mkdirSync(stateDir, { recursive: true });
  const proc = ctx.procs.spawn(
    `${mode === 'bare' ? 'app' : mode}${framework === 'express' ? '-express' : ''}`,
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/lib/app-process.ts')],
    {
      cwd: ROOT,
      env: {
        ...childEnv(),
        BENCH_APP_MODE: mode,
        BENCH_APP_FRAMEWORK: framework,
        BENCH_BEARER: ctx.bearer,
        BENCH_STATE_DIR: stateDir,
        BENCH_APP_WORK_US: String(ctx.appWorkUs),
        ...(ctx.portholeModule ? { BENCH_PORTHOLE_MODULE: ctx.portholeModule } : {}),
      },
      pipeStdout: true,
    },
  );
  return JSON.parse(await readFirstLine(proc, READY_TIMEOUT_MS)).port;
}

/** `porthole serve --json` from dist (as users run it); ready on its first JSON line, the 'listening' event. */
async function startSidecar(ctx: StartContext, appPort: number, portholeBin: string | undefined, name: string): Promise<number> {
  const bin = portholeBin ?? join(ROOT, 'bin/porthole.js');
  const args = [
    ...ctx.sidecarNodeArgs,
    bin,
    'serve',
    '--target',
    `http://127.0.0.1:${appPort}`,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--json',
    '--no-loopback-exempt',
  ];
  const proc = ctx.procs.spawn(name, process.execPath, args, {
    cwd: ROOT,
    // The token through the environment, never argv.
    env: { ...childEnv(), PORTHOLE_HOME: join(ctx.dir, `${name}-home`), PORTHOLE_AUTH_TOKEN: ctx.bearer },
    pipeStdout: true,
  });
  const event = JSON.parse(await readFirstLine(proc, READY_TIMEOUT_MS)) as { event?: string; port?: number };
  if (event.event !== 'listening' || typeof event.port !== 'number') {
    throw new Error(`porthole serve: unexpected first event ${JSON.stringify(event)}`);
  }
  return event.port;
}

/** Our environment without porthole's own variables or NODE_OPTIONS (they would change what is measured). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PORTHOLE_') && !k.startsWith('BENCH_') && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return env;
}

async function verify(id: TargetId, port: number, bearer: string): Promise<void> {
  const ok = await get(port, '/', bearer);
  if (ok.status !== 200 || !ok.body.equals(HELLO)) {
    throw new Error(`${id}: GET / with the bearer answered ${ok.status} ${JSON.stringify(ok.body.toString().slice(0, 200))}`);
  }
  const small = await get(port, '/stream?bytes=100000', bearer);
  if (small.status !== 200 || small.body.length !== 100_000) {
    throw new Error(`${id}: GET /stream answered ${small.status} with ${small.body.length} bytes`);
  }
  if (id === 'sidecar' || id === 'sidecar-b' || id === 'embedded' || id === 'embedded-express' || id === 'floor') {
    const anon = await get(port, '/', undefined);
    if (anon.status !== 401) throw new Error(`${id}: auth is not on (GET / without the bearer answered ${anon.status})`);
  }
}

function get(port: number, path: string, bearer: string | undefined): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path, agent: false, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.once('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} on port ${port} timed out`)));
    req.once('error', reject);
  });
}
