// `porthole proxy test`: fetch <url>/_porthole/ping the way a visitor would and, if porthole
// does not answer, say why in one of five classes a user can act on. The probe carries no
// credential: ping is public (DESIGN §3), so nothing secret can leak to a wrong host.
import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { rootCertificates, type TLSSocket } from 'node:tls';
import { PortholeError } from '../errors.js';

export type ProbeFailure = 'TLS_INVALID' | 'DNS_OR_CONN_REFUSED' | 'TIMEOUT' | 'AUTH_BLOCKED' | 'NOT_PORTHOLE';

export interface ProbeOptions {
  /** Extra trusted CA certificates (PEM), added to the system roots: a private CA. */
  ca?: string;
  /** Bound on the whole probe, redirects included. Default 10 000 ms. */
  timeoutMs?: number;
  /** Dial this address instead of resolving the URL's name (curl's --connect-to): test before DNS moves. */
  connectAddress?: string;
  /** Redirects followed (http → https, a trailing-slash fix). Default 3. */
  maxRedirects?: number;
}

export interface ProbeSuccess {
  ok: true;
  url: string;
  /** The ping URL that answered (after redirects). */
  pingUrl: string;
  redirects: string[];
  status: number;
  service: 'porthole';
  version: string;
  elapsedMs: number;
  tls?: { protocol: string | null; subject: string; issuer: string; validTo: string };
}

export interface ProbeFailureResult {
  ok: false;
  url: string;
  pingUrl: string;
  code: ProbeFailure;
  message: string;
  status?: number;
  elapsedMs: number;
}

export type ProbeResult = ProbeSuccess | ProbeFailureResult;

export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
const MAX_BODY = 64 * 1024;

// Node's TLS verification failures (OpenSSL X509_V_ERR_* names and Node's own).
const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'EPROTO',
]);
const CONN_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNRESET', 'EPIPE']);

/** "https://desk.example.com" (a path prefix allowed) → the ping URL; INVALID_ARGUMENT otherwise. */
export function pingUrlOf(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PortholeError('INVALID_ARGUMENT', 'expected an http:// or https:// URL, e.g. https://desk.example.com');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new PortholeError('INVALID_ARGUMENT', 'expected an http:// or https:// URL, e.g. https://desk.example.com');
  }
  // Credentials in argv are visible to every local user, and the ping needs none.
  if (u.username || u.password) throw new PortholeError('INVALID_ARGUMENT', 'the URL must not carry credentials: the ping is public');
  if (u.search || u.hash) throw new PortholeError('INVALID_ARGUMENT', 'expected a URL without query or fragment');
  return new URL(`${u.pathname.replace(/\/+$/, '')}/_porthole/ping`, u.origin);
}

function classifyError(err: NodeJS.ErrnoException, target: URL): { code: ProbeFailure; message: string } {
  const code = err.code ?? '';
  const host = target.host;
  if (code === 'ETIMEDOUT') return { code: 'TIMEOUT', message: `connecting to ${host} timed out` };
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /certificate|TLS|SSL/i.test(err.message)) {
    return { code: 'TLS_INVALID', message: `TLS with ${host} failed: ${err.message} (${code || 'no code'})` };
  }
  if (code === 'ENOTFOUND' || code.startsWith('EAI_')) return { code: 'DNS_OR_CONN_REFUSED', message: `${target.hostname} does not resolve (${code})` };
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return { code: 'DNS_OR_CONN_REFUSED', message: `${host} closed the connection without answering (${code})` };
  }
  if (CONN_CODES.has(code)) return { code: 'DNS_OR_CONN_REFUSED', message: `nothing accepts connections at ${host} (${code})` };
  return { code: 'DNS_OR_CONN_REFUSED', message: `cannot reach ${host}: ${err.message}${code ? ` (${code})` : ''}` };
}

interface Answer {
  res: IncomingMessage;
  body: Buffer;
  tls?: ProbeSuccess['tls'];
}

function fixedLookup(address: string): LookupFunction {
  const family = isIP(address) === 6 ? 6 : 4;
  return ((_host: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) => {
    if (opts?.all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  }) as unknown as LookupFunction;
}

function fetchOnce(target: URL, o: ProbeOptions, signal: AbortSignal): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const secure = target.protocol === 'https:';
    const common = {
      method: 'GET',
      headers: { accept: 'application/json', 'user-agent': 'porthole-proxy-test' },
      agent: false as const,
      signal,
      ...(o.connectAddress ? { lookup: fixedLookup(o.connectAddress) } : {}),
    };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
        else res.destroy(); // enough to tell what it is
      });
      const done = () => {
        const socket = res.socket as TLSSocket | null;
        let tls: ProbeSuccess['tls'];
        const peer = secure ? socket?.getPeerCertificate?.() : undefined;
        if (secure && peer && Object.keys(peer).length > 0) {
          tls = {
            protocol: socket?.getProtocol?.() ?? null,
            subject: peer.subject?.CN ?? '',
            issuer: peer.issuer?.CN ?? '',
            validTo: peer.valid_to,
          };
        }
        resolve({ res, body: Buffer.concat(chunks), ...(tls ? { tls } : {}) });
      };
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    };
    const req = secure
      ? httpsRequest(target, { ...common, ...(o.ca ? { ca: [...rootCertificates, o.ca] } : {}) }, onResponse)
      : httpRequest(target, common, onResponse);
    req.on('error', reject);
    req.end();
  });
}

/** What a 200 from a proxy says about itself: porthole's ping, or something else. */
function readPing(body: Buffer): { version: string } | undefined {
  try {
    const v = JSON.parse(body.toString('utf8')) as { service?: unknown; version?: unknown };
    return v.service === 'porthole' && typeof v.version === 'string' ? { version: v.version } : undefined;
  } catch {
    return undefined;
  }
}

function portholeErrorCode(body: Buffer): string | undefined {
  try {
    const code = (JSON.parse(body.toString('utf8')) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Fetches `<url>/_porthole/ping` and classifies the outcome. Never throws for network trouble. */
export async function probeProxy(url: string, o: ProbeOptions = {}): Promise<ProbeResult> {
  const first = pingUrlOf(url);
  const started = Date.now();
  const timeoutMs = o.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const redirects: string[] = [];
  let target = first;
  const fail = (code: ProbeFailure, message: string, status?: number): ProbeFailureResult => ({
    ok: false,
    url,
    pingUrl: target.href,
    code,
    message,
    ...(status !== undefined ? { status } : {}),
    elapsedMs: Date.now() - started,
  });
  try {
    for (let hop = 0; ; hop++) {
      let answer: Answer;
      try {
        answer = await fetchOnce(target, o, controller.signal);
      } catch (err) {
        if (controller.signal.aborted) return fail('TIMEOUT', `no answer from ${target.host} within ${timeoutMs} ms`);
        const c = classifyError(err as NodeJS.ErrnoException, target);
        return fail(c.code, c.message);
      }
      if (controller.signal.aborted) return fail('TIMEOUT', `${target.host} did not finish answering within ${timeoutMs} ms`);
      const status = answer.res.statusCode ?? 0;
      const location = answer.res.headers.location;
      if (status >= 300 && status < 400 && location && hop < (o.maxRedirects ?? 3)) {
        const next = new URL(location, target);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') return fail('NOT_PORTHOLE', `redirected to ${next.protocol} URL`, status);
        // Same host only (http → https, a port or path fix): otherwise the answering server
        // would choose where the desk sends a GET (an admin can run this probe remotely).
        if (next.hostname !== first.hostname) {
          return fail('NOT_PORTHOLE', `${target.host} redirects to another host (${next.origin}), not followed: if that is porthole's public URL, test that URL`, status);
        }
        redirects.push(target.href);
        target = next;
        continue;
      }
      if (status === 401 || status === 403) {
        const portholeCode = portholeErrorCode(answer.body);
        if (portholeCode === 'HOST_NOT_ALLOWED') {
          return fail(
            'AUTH_BLOCKED',
            `porthole answered but refused the Host "${target.host}" (HOST_NOT_ALLOWED): set gateway.public_url to ${target.origin}`,
            status,
          );
        }
        const what = portholeCode ? `porthole refused the request (${portholeCode})` : 'the proxy (or something in front of it) demands authentication';
        return fail('AUTH_BLOCKED', `${status} from ${target.host}: ${what}; /_porthole/ping must pass without credentials`, status);
      }
      const ping = status === 200 ? readPing(answer.body) : undefined;
      if (!ping) {
        const server = answer.res.headers.server;
        const hint =
          status === 502 || status === 503 || status === 504
            ? ': the proxy cannot reach its upstream (is `porthole serve` running, and is --upstream its address?)'
            : status === 200
              ? ': another app answered (check the proxy points at the gateway)'
              : '';
        return fail('NOT_PORTHOLE', `${target.href} answered ${status}${server ? ` (server: ${server})` : ''}, not porthole's ping${hint}`, status);
      }
      return {
        ok: true,
        url,
        pingUrl: target.href,
        redirects,
        status,
        service: 'porthole',
        version: ping.version,
        elapsedMs: Date.now() - started,
        ...(answer.tls ? { tls: answer.tls } : {}),
      };
    }
  } finally {
    clearTimeout(timer);
  }
}
