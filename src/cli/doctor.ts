// `porthole doctor [--json] [--config FILE]`: checks what usually goes wrong before anyone
// asks — the state directory's permissions, the configuration, the token and where it
// lives, the running gateway and its exposure conflicts, the port, the target, the
// certificates, the relay (a real TLS handshake with porthole's ALPN) and the tools the
// configuration needs. Read-only: it never creates a token, a directory or a file. Exit
// code 1 when any check fails, else 0 (warnings included).
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { LoadedConfig } from '../config/types.js';
import { isPortholeError } from '../errors.js';
import { parseTarget } from '../gateway/target.js';
import { TUNNEL_ALPN } from '../protocol/handshake.js';
import type { StatePaths } from '../secrets/paths.js';
import { openSecretStore, resolveToken } from '../secrets/store.js';
import { readCertificateFiles } from '../tunnel/certificate.js';
import { parseHostPort } from '../util/host-port.js';
import { type CliContext, homePaths } from './context.js';
import { loadCliConfig } from './load.js';
import { callGateway } from './socket-client.js';

export type CheckStatus = 'ok' | 'info' | 'warn' | 'fail';

export interface Check {
  id: string;
  status: CheckStatus;
  summary: string;
  fix?: string;
}

/** A certificate closer to expiry than this is a warning. */
const EXPIRY_WARN_MS = 14 * 24 * 3600_000;
const NETWORK_TIMEOUT_MS = 5_000;

export async function doctorCommand(ctx: CliContext, opts: { json?: boolean; config?: string }): Promise<number> {
  const paths = homePaths(ctx);
  const checks: Check[] = [];
  const add = (c: Check | Check[]) => void checks.push(...(Array.isArray(c) ? c : [c]));

  add(checkHome(paths));
  let loaded: LoadedConfig | undefined;
  try {
    loaded = loadCliConfig(ctx, paths, opts.config, {});
    add({ id: 'config', status: 'ok', summary: loaded.file ? `${loaded.file} parses` : 'no porthole.toml: defaults, environment and flags only' });
  } catch (err) {
    add({ id: 'config', status: 'fail', summary: message(err), fix: 'run `porthole config check` for every problem and where each value comes from' });
  }
  add(checkToken(ctx, paths, loaded));
  const running = await checkGateway(paths);
  add(running.checks);
  if (loaded) {
    const g = loaded.config.gateway;
    if (!running.up) add(await checkPort(g.host, g.port));
    if (g.target !== undefined) add(await checkTarget(g.target));
    if (g.tls_cert && g.tls_key) add(checkCertificate('gateway TLS', g.tls_cert, g.tls_key));
    const t = loaded.config.tunnel;
    if (t.tls_cert && t.tls_key) add(checkCertificate('tunnel TLS', t.tls_cert, t.tls_key));
    add(checkAcmeCertificates(paths));
    if (t.relay) add(await checkRelay(t.relay, t.connect_address, t.ca));
    if (loaded.config.tailscale.mode !== 'off') add(checkTool('tailscale', 'tailscale', 'install Tailscale and log in with `tailscale up`'));
    if (loaded.config.remote.transport === 'ssh') add(checkTool('ssh', 'ssh', 'install an OpenSSH client'));
  }

  const failed = checks.some((c) => c.status === 'fail');
  if (opts.json) ctx.stdout.write(`${JSON.stringify({ home: paths.home, ok: !failed, checks })}\n`);
  else ctx.stdout.write(render(paths.home, checks));
  return failed ? 1 : 0;
}

function render(home: string, checks: Check[]): string {
  const label: Record<CheckStatus, string> = { ok: 'ok  ', info: 'info', warn: 'WARN', fail: 'FAIL' };
  const lines = [`porthole doctor — ${home}`];
  for (const c of checks) {
    lines.push(`  ${label[c.status]}  ${c.id.padEnd(12)} ${c.summary}`);
    if (c.fix) lines.push(`  ${''.padEnd(18)} ${c.status === 'info' ? 'next' : 'fix'}: ${c.fix}`);
  }
  const n = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
  lines.push(n('fail') ? `${n('fail')} failed, ${n('warn')} warning(s)` : n('warn') ? `no failures, ${n('warn')} warning(s)` : 'all good');
  return `${lines.join('\n')}\n`;
}

function message(err: unknown): string {
  if (isPortholeError(err)) return `${err.message} [${err.code}]`;
  return (err as Error)?.message ?? String(err);
}

function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return undefined;
  }
}

function checkHome(paths: StatePaths): Check[] {
  const home = modeOf(paths.home);
  if (home === undefined) {
    return [{ id: 'home', status: 'info', summary: `${paths.home} does not exist yet`, fix: 'it is created by `porthole init` or the first `porthole serve`' }];
  }
  const out: Check[] = [];
  const st = statSync(paths.home);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    out.push({ id: 'home', status: 'fail', summary: `${paths.home} belongs to uid ${st.uid}, not to you`, fix: 'run porthole as the owner, or set PORTHOLE_HOME to a directory of yours' });
  } else if (home & 0o022) {
    out.push({ id: 'home', status: 'fail', summary: `${paths.home} is writable by others (mode ${home.toString(8)})`, fix: `chmod go-w ${paths.home}` });
  } else {
    out.push({ id: 'home', status: 'ok', summary: `${paths.home} (mode ${home.toString(8).padStart(4, '0')})` });
  }
  for (const dir of [paths.secretsDir, paths.identityDir, paths.acmeDir, paths.runDir]) {
    const m = modeOf(dir);
    if (m !== undefined && m & 0o077) {
      out.push({ id: 'home', status: 'fail', summary: `${dir} is open to others (mode ${m.toString(8)})`, fix: `chmod 700 ${dir}` });
    }
  }
  return out;
}

function checkToken(ctx: CliContext, paths: StatePaths, loaded: LoadedConfig | undefined): Check {
  try {
    const store = openSecretStore(paths, { env: ctx.env });
    const r = resolveToken({ paths, store, env: ctx.env, configTokenFile: loaded?.config.auth.token_file, create: false });
    return { id: 'token', status: 'ok', summary: `from ${r.describe}` };
  } catch (err) {
    if (isPortholeError(err) && err.code === 'TOKEN_MISSING' && !/issued/.test(err.message)) {
      return { id: 'token', status: 'info', summary: 'no token yet', fix: '`porthole init` (or the first `porthole serve`) creates one' };
    }
    return { id: 'token', status: 'fail', summary: message(err) };
  }
}

async function checkGateway(paths: StatePaths): Promise<{ up: boolean; checks: Check[] }> {
  let s: Record<string, unknown>;
  try {
    s = await callGateway(paths, 'GET', '/_porthole/api/status');
  } catch (err) {
    if (isPortholeError(err) && err.code === 'GATEWAY_NOT_RUNNING') return { up: false, checks: [{ id: 'gateway', status: 'info', summary: 'not running' }] };
    return { up: false, checks: [{ id: 'gateway', status: 'fail', summary: `its socket ${paths.socketPath} does not answer: ${message(err)}` }] };
  }
  const checks: Check[] = [{ id: 'gateway', status: 'ok', summary: `running at ${String(s['url'])}` }];
  const conflicts = (s['exposure'] as { conflicts?: { reason: string; fix: string }[] } | undefined)?.conflicts ?? [];
  for (const c of conflicts) checks.push({ id: 'exposure', status: 'fail', summary: c.reason, fix: c.fix });
  const tunnel = s['tunnel'] as { state?: { state?: string; lastError?: { code: string; message: string } } } | null | undefined;
  const err = tunnel?.state?.lastError;
  if (tunnel?.state?.state === 'waiting' && err) checks.push({ id: 'tunnel', status: 'warn', summary: `reconnecting: ${err.message} [${err.code}]` });
  return { up: true, checks };
}

async function checkPort(host: string, port: number): Promise<Check> {
  if (port === 0) return { id: 'port', status: 'info', summary: 'port 0: an ephemeral port is chosen at start' };
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve({ id: 'port', status: 'fail', summary: `${host}:${port} is in use by another program`, fix: 'stop it, or choose another --port' });
      else resolve({ id: 'port', status: 'fail', summary: `cannot bind ${host}:${port}: ${err.code ?? err.message}` });
    });
    server.listen(port, host, () => server.close(() => resolve({ id: 'port', status: 'ok', summary: `${host}:${port} is free` })));
  });
}

async function checkTarget(target: string): Promise<Check> {
  let t: ReturnType<typeof parseTarget>;
  try {
    t = parseTarget(target);
  } catch (err) {
    return { id: 'target', status: 'fail', summary: message(err) };
  }
  const port = t.kind === 'http' ? Number(t.url.port || (t.url.protocol === 'https:' ? 443 : 80)) : 0;
  const where = t.kind === 'unix' ? t.path : `${t.url.hostname}:${port}`;
  return new Promise((resolve) => {
    const socket = t.kind === 'unix' ? netConnect(t.path) : netConnect(port, t.url.hostname.replace(/^\[|\]$/g, ''));
    const done = (c: Check) => {
      socket.destroy();
      resolve(c);
    };
    socket.setTimeout(NETWORK_TIMEOUT_MS, () => done({ id: 'target', status: 'warn', summary: `${where}: no answer within ${NETWORK_TIMEOUT_MS / 1000} s` }));
    socket.once('connect', () => done({ id: 'target', status: 'ok', summary: `${where} accepts connections` }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done({ id: 'target', status: 'warn', summary: `${where}: ${err.code ?? err.message} — requests will get 502 until the app listens`, fix: 'start the app, or fix --target' }),
    );
  });
}

function expiryCheck(id: string, what: string, notAfter: Date): Check {
  const left = notAfter.getTime() - Date.now();
  if (left <= 0) return { id, status: 'fail', summary: `${what} expired ${notAfter.toISOString()}`, fix: 'renew it' };
  if (left < EXPIRY_WARN_MS) return { id, status: 'warn', summary: `${what} expires ${notAfter.toISOString()} (in ${Math.ceil(left / 86_400_000)} days)`, fix: 'renew it' };
  return { id, status: 'ok', summary: `${what} valid until ${notAfter.toISOString()}` };
}

function checkCertificate(label: string, certFile: string, keyFile: string): Check {
  try {
    const pair = readCertificateFiles(certFile, keyFile);
    return expiryCheck('certificate', `${label} ${certFile}`, pair.notAfter);
  } catch (err) {
    return { id: 'certificate', status: 'fail', summary: `${label}: ${message(err)}` };
  }
}

/** Certificates porthole obtained by ACME ($PORTHOLE_HOME/acme/*.crt); renewal is automatic, so a warning only if overdue. */
function checkAcmeCertificates(paths: StatePaths): Check[] {
  let names: string[];
  try {
    names = readdirSync(paths.acmeDir).filter((f) => f.endsWith('.crt'));
  } catch {
    return [];
  }
  return names.map((f) => {
    try {
      const x = new X509Certificate(readFileSync(join(paths.acmeDir, f)));
      return expiryCheck('acme', `${f.slice(0, -4)} (ACME, renewed automatically while porthole runs)`, new Date(x.validTo));
    } catch (err) {
      return { id: 'acme', status: 'fail', summary: `${f}: ${message(err)}`, fix: 'delete it: porthole requests a new one' };
    }
  });
}

/**
 * A TLS handshake with the relay as a desk makes it (SNI = its name, porthole's ALPN,
 * [tunnel] ca): proves name resolution, reachability and the certificate without
 * registering. The relay counts it against this address's registrations per minute.
 */
async function checkRelay(relay: string, connectAddress: string | undefined, caFile: string | undefined): Promise<Check> {
  const { host: name, port } = parseHostPort(relay, '[tunnel] relay');
  let ca: string | undefined;
  try {
    ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
  } catch (err) {
    return { id: 'relay', status: 'fail', summary: `[tunnel] ca: ${message(err)}` };
  }
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: connectAddress ?? name, port, servername: name, ALPNProtocols: [TUNNEL_ALPN], ...(ca ? { ca } : {}) });
    const done = (c: Check) => {
      socket.destroy();
      resolve(c);
    };
    socket.setTimeout(NETWORK_TIMEOUT_MS, () => done({ id: 'relay', status: 'fail', summary: `${relay}: no TLS handshake within ${NETWORK_TIMEOUT_MS / 1000} s` }));
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== TUNNEL_ALPN) {
        done({ id: 'relay', status: 'fail', summary: `${relay} answered TLS but is not a porthole relay (ALPN ${String(socket.alpnProtocol)})` });
        return;
      }
      const cert = socket.getPeerCertificate();
      done(expiryCheck('relay', `${relay} reachable; its certificate`, new Date(cert.valid_to)));
    });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done({
        id: 'relay',
        status: 'fail',
        summary: `${relay}: ${err.code ?? ''} ${err.message}`.trim(),
        fix: /certificate|CERT|self.signed/i.test(`${err.code} ${err.message}`) ? 'a private relay needs its CA in [tunnel] ca' : 'check [tunnel] relay and the network',
      }),
    );
  });
}

function checkTool(id: string, command: string, fix: string): Check {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      if (statSync(join(dir, command)).isFile()) return { id, status: 'ok', summary: `${join(dir, command)}` };
    } catch {
      // not in this directory
    }
  }
  return { id, status: 'fail', summary: `${command} is not on PATH`, fix };
}
