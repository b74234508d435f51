// Remote CLI mode: `porthole status` and `porthole tunnel …` against a desk elsewhere.
// Where: PORTHOLE_URL (else [remote] url); how: [remote] transport, "http" (straight to the
// URL) or "ssh" (porthole opens `ssh -L` to [remote] ssh_target, talks through it, and
// closes it); with what: PORTHOLE_TOKEN (else the 0600 file [remote] token_file), sent as
// `Authorization: Bearer` (or proven over the control plane by `porthole call`). The token
// never goes into any argv porthole spawns. [remote] tls_pin pins the gateway's certificate
// (the SDK's src/client/pin.ts): it is checked on each TLS connection before a byte of the
// request is written. Without a remote configured, commands use the local gateway's Unix
// socket (see docs/ssh.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { isLoopbackAddress } from '../auth/ip.js';
import { ControlError } from '../client/errors.js';
import { type Pin, parsePin, pinMatches, pinMismatch } from '../client/pin.js';
import type { PortholeConfig } from '../config/schema.js';
import { checkRemoteUrl } from '../config/validate.js';
import { PortholeError, type ErrorCode } from '../errors.js';
import { preferredCiphers } from '../ssh/command.js';
import { effectiveCiphers, findSsh } from '../ssh/probe.js';
import { checkSshDestination } from '../ssh/target.js';
import { createSshTunnel, sshEnv } from '../ssh/tunnel.js';
import { readSecretFile } from '../util/fs.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';
import { callGateway } from './socket-client.js';

/** One request to the gateway's API; the answer's JSON, or its error as a PortholeError. */
export type GatewayCall = <T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown) => Promise<T>;

export interface RemoteSettings {
  /** The gateway's URL; over ssh, as seen from the SSH host. */
  url: URL;
  transport: 'http' | 'ssh';
  sshTarget: string | undefined;
  /** Where the token comes from (never the token itself). */
  tokenFrom: 'PORTHOLE_TOKEN' | 'remote.token_file';
  readToken(): string;
  /** remote.tls_pin, parsed (its text is what `porthole call` hands the SDK). */
  pin: Pin | undefined;
}

/** A ControlError from the SDK's pin code → the CLI's PortholeError (same code). */
function asPortholeError(err: ControlError): PortholeError {
  return new PortholeError(err.code as ErrorCode, err.message);
}

/** Parses a pin (remote.tls_pin or --pin) for `url`, failing closed: a pin that cannot be checked is refused. */
export function pinFor(text: string, url: URL, label: string): Pin {
  let pin: Pin;
  try {
    pin = parsePin(text);
  } catch (err) {
    throw err instanceof ControlError ? new PortholeError('TLS_PIN_INVALID', `${label}: ${err.message}`) : err;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'wss:') {
    throw new PortholeError('CONFIG_INVALID', `${label} is set but the gateway URL ${url.origin} is not https: a pin needs TLS to check (use https://, e.g. porthole serve --tls self-signed)`);
  }
  return pin;
}

/**
 * The remote this CLI talks to, or undefined for the local gateway. Remote mode is on when
 * PORTHOLE_URL or [remote] url is set, or [remote] transport is "ssh".
 */
export function remoteSettings(env: Record<string, string | undefined>, config: PortholeConfig): RemoteSettings | undefined {
  const r = config.remote;
  const envUrl = env['PORTHOLE_URL'] || undefined;
  if (envUrl === undefined && r.url === undefined && r.transport !== 'ssh') return undefined;
  let url: URL;
  if (envUrl !== undefined) {
    const c = checkRemoteUrl(envUrl);
    if (c.problem !== undefined) throw new PortholeError('CONFIG_INVALID', `PORTHOLE_URL: ${c.problem}`);
    url = new URL(envUrl);
  } else if (r.url !== undefined) url = new URL(r.url);
  else url = new URL(`http://127.0.0.1:${config.gateway.port}`); // ssh without a URL: the desk's default gateway
  let sshTarget: string | undefined;
  if (r.transport === 'ssh') {
    if (r.ssh_target === undefined) throw new PortholeError('CONFIG_INVALID', 'remote.transport = "ssh" needs remote.ssh_target = "user@host"');
    sshTarget = checkSshDestination(r.ssh_target, 'remote.ssh_target');
  }
  const envToken = env['PORTHOLE_TOKEN'] || undefined;
  const tokenFile = r.token_file;
  const pin = r.tls_pin !== undefined ? pinFor(r.tls_pin, url, 'remote.tls_pin') : undefined;
  return {
    url,
    transport: r.transport,
    sshTarget,
    pin,
    tokenFrom: envToken !== undefined ? 'PORTHOLE_TOKEN' : 'remote.token_file',
    readToken() {
      const token = envToken ?? (tokenFile !== undefined ? readSecretFile(tokenFile) : undefined);
      if (token === undefined) {
        throw new PortholeError(
          'TOKEN_MISSING',
          tokenFile !== undefined
            ? `the remote token file ${tokenFile} does not exist`
            : 'remote mode needs the desk\'s token: set PORTHOLE_TOKEN, or [remote] token_file = "path" (a 0600 file)',
        );
      }
      // A header value cannot carry these; refuse instead of letting Node throw mid-request.
      if (token.length === 0 || /[\s\u0000-\u001f\u007f]/.test(token)) {
        throw new PortholeError('TOKEN_WEAK', `the remote token (from ${envToken !== undefined ? 'PORTHOLE_TOKEN' : tokenFile}) is empty or contains whitespace`);
      }
      return token;
    },
  };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

function defaultPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** How to reach the gateway for one command: the URL, the token and, over SSH, the forward's socket. */
export interface RemoteRoute {
  /** The gateway's URL (over ssh, as seen from the SSH host; it still names the Host and TLS server). */
  url: URL;
  token: string;
  pin: Pin | undefined;
  /** The SSH forward's local end (a Unix socket), when transport = "ssh". */
  socketPath: string | undefined;
  /** For messages: "https://desk:7070" or "http://127.0.0.1:7070 via ssh me@desk". */
  where: string;
}

/**
 * A TLS connection to the route's gateway whose certificate matched the pin. Resolves only
 * after the handshake and the check, so nothing — not the request line, not the token — is
 * written to a server that does not hold the pinned key. (A socket handed to http before
 * `secureConnect` could flush the request with the client's Finished.)
 */
function pinnedSocket(route: RemoteRoute, pin: Pin, timeoutMs: number): Promise<TLSSocket> {
  const host = stripBrackets(route.url.hostname);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      ...(route.socketPath ? { path: route.socketPath } : { host, port: defaultPort(route.url) }),
      servername: isIP(host) ? undefined : host,
      // The pin replaces chain and name checks (a self-signed certificate is the point).
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => socket.destroy(new Error('timed out after 30 s')), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (pinMatches(socket, pin)) return resolve(socket);
      socket.destroy();
      reject(asPortholeError(pinMismatch(pin)));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new PortholeError('REMOTE_UNREACHABLE', `no answer from the gateway at ${route.where}: ${err.code ?? err.message}`));
    });
  });
}

/** Requests to the route's API with the bearer token, directly or through a Unix socket (the SSH forward). */
export function httpCaller(route: RemoteRoute): GatewayCall {
  const { url: base, token, where, socketPath, pin } = route;
  const prefix = base.pathname.replace(/\/+$/, '');
  return async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => {
    const pinned = pin ? await pinnedSocket(route, pin, 30_000) : undefined;
    return new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string | number> = {
        host: base.host,
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
      };
      const options: RequestOptions & { servername?: string } = {
        method,
        path: `${prefix}${path}`,
        headers,
        timeout: 30_000,
        ...(pinned
          ? { createConnection: () => pinned } // plain http framing over the verified TLS socket
          : {
              agent: false,
              ...(socketPath ? { socketPath } : { host: stripBrackets(base.hostname), port: defaultPort(base) }),
              // SNI carries names only (RFC 6066 §3): an IP address is checked against the certificate's IP SANs.
              ...(base.protocol === 'https:' && !isIP(stripBrackets(base.hostname)) ? { servername: stripBrackets(base.hostname) } : {}),
            }),
      };
      const unreachable = (why: string) => new PortholeError('REMOTE_UNREACHABLE', `no answer from the gateway at ${where}: ${why}`);
      const req = (base.protocol === 'https:' && !pinned ? httpsRequest : httpRequest)(options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1024 * 1024) req.destroy(new Error('answer larger than 1 MiB'));
          else chunks.push(c);
        });
        res.on('error', (e) => reject(unreachable(e.message)));
        res.on('end', () => {
          pinned?.end();
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            const hint = status >= 300 && status < 400 ? ` (a redirect to ${String(res.headers.location ?? '?')}: use that URL)` : '';
            reject(unreachable(`HTTP ${status} that is not porthole's JSON${hint}`));
            return;
          }
          if (status >= 400) {
            const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
            if (!e?.code) return reject(unreachable(`HTTP ${status} that is not porthole's JSON`));
            reject(new PortholeError(e.code as ErrorCode, `${e.message ?? 'gateway error'} (from ${where})`, { status }));
            return;
          }
          resolve(parsed as T);
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        pinned?.destroy();
        if (err.code === 'ECONNRESET' && socketPath) reject(unreachable('the SSH forward closed the connection (is the gateway running on the SSH host, at that URL?)'));
        else reject(unreachable(err.code ?? err.message));
      });
      req.end(payload);
    });
  };
}

/** Where a local forward lives: a Unix socket in a fresh 0700 directory, so only this user can use it. */
function privateSocket(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-ssh-'));
  return { dir, path: join(dir, 'gateway.sock') };
}

/**
 * Runs `fn` with the route to a remote gateway: straight to the URL, or through an SSH
 * forward opened before and closed after (whatever `fn` does). `pinText` (a --pin flag)
 * overrides remote.tls_pin.
 */
export async function withRemoteRoute<T>(ctx: CliContext, remote: RemoteSettings, fn: (route: RemoteRoute) => Promise<T>, pinText?: string): Promise<T> {
  const token = remote.readToken();
  const pin = pinText !== undefined ? pinFor(pinText, remote.url, '--pin') : remote.pin;
  if (remote.transport === 'http') {
    const host = stripBrackets(remote.url.hostname);
    if (remote.url.protocol === 'http:' && !isLoopbackAddress(host) && host !== 'localhost') {
      ctx.stderr.write(`porthole: warning: ${remote.url.origin} is plain http: the token crosses the network unencrypted (use https, or transport = "ssh")\n`);
    }
    return fn({ url: remote.url, token, pin, socketPath: undefined, where: remote.url.origin });
  }
  const target = remote.sshTarget!;
  const ssh = findSsh(ctx.env);
  const configFile = ctx.env['PORTHOLE_SSH_CONFIG'] || undefined;
  const sock = privateSocket();
  const tunnel = createSshTunnel({
    ssh,
    target,
    configFile,
    ciphers: preferredCiphers(await effectiveCiphers(ssh, target, configFile, sshEnv(ctx.env))),
    forward: { listen: { path: sock.path }, connectHost: stripBrackets(remote.url.hostname), connectPort: defaultPort(remote.url) },
    env: ctx.env,
    retry: false,
  });
  try {
    tunnel.start();
    await tunnel.whenOnline();
    return await fn({ url: remote.url, token, pin, socketPath: sock.path, where: `${remote.url.origin} via ssh ${target}` });
  } finally {
    await tunnel.stop();
    rmSync(sock.dir, { recursive: true, force: true });
  }
}

/**
 * Runs `fn` with a way to call the gateway: the remote one when configured (opening and
 * closing the SSH forward around it), else the local one over its Unix socket.
 */
export async function withGateway<T>(ctx: CliContext, fn: (call: GatewayCall, remote: RemoteSettings | undefined) => Promise<T>): Promise<T> {
  const paths = homePaths(ctx);
  const remote = remoteSettings(ctx.env, loadCliConfig(ctx, paths, undefined, {}).config);
  if (!remote) return fn((method, path, body) => callGateway(paths, method, path, body), undefined);
  return withRemoteRoute(ctx, remote, (route) => fn(httpCaller(route), remote));
}
