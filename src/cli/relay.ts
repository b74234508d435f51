// `porthole relay --domain D [--listen H:P] [--cert F --key F] [--store DIR] [--production]`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PortholeError } from '../errors.js';
import { startRelay, type Relay, type RelayLimits } from '../relay/server.js';
import { readSecretFile } from '../util/fs.js';
import { parseHostPort } from '../util/host-port.js';
import { homePaths, type CliContext } from './context.js';

export interface RelayFlags {
  domain: string;
  listen?: string;
  cert?: string;
  key?: string;
  store?: string;
  mode?: string;
  production?: boolean;
  secretFile?: string;
  httpListen?: string;
  json?: boolean;
  maxDesks?: string;
  maxStreamsPerDesk?: string;
  registrationsPerMinute?: string;
  clientHelloTimeout?: string;
  visitorIdleTimeout?: string;
}

/** A whole number ≥ 1 from a flag, or INVALID_ARGUMENT naming the flag. */
function count(value: string | undefined, flag: string, max = 1_000_000): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new PortholeError('INVALID_ARGUMENT', `${flag} must be a whole number from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Seconds (fractions allowed, > 0, at most a day) from a flag, as milliseconds. */
function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 86_400) {
    throw new PortholeError('INVALID_ARGUMENT', `${flag} must be a number of seconds greater than 0 and at most 86400, got ${JSON.stringify(value)}`);
  }
  return Math.round(n * 1000);
}

/** The limits given on the command line; unset ones keep the relay's named defaults. */
export function relayLimits(f: RelayFlags): RelayLimits {
  const limits: RelayLimits = {};
  const set = <K extends keyof RelayLimits>(k: K, v: RelayLimits[K] | undefined) => {
    if (v !== undefined) limits[k] = v;
  };
  set('maxDesks', count(f.maxDesks, '--max-desks'));
  set('maxStreamsPerDesk', count(f.maxStreamsPerDesk, '--max-streams-per-desk', 65_535));
  set('registrationsPerMinute', count(f.registrationsPerMinute, '--registrations-per-minute'));
  set('clientHelloTimeoutMs', seconds(f.clientHelloTimeout, '--client-hello-timeout'));
  set('visitorIdleMs', seconds(f.visitorIdleTimeout, '--visitor-idle-timeout'));
  return limits;
}


export async function relayCommand(ctx: CliContext, f: RelayFlags): Promise<{ relay: Relay; stop(): Promise<void> }> {
  if (!f.cert || !f.key) {
    throw new PortholeError('INVALID_ARGUMENT', `--cert and --key are required: a certificate for the relay's own name (${f.domain})`);
  }
  const { host, port } = parseHostPort(f.listen ?? '127.0.0.1:7443', '--listen', true);
  const limits = relayLimits(f);
  const keyPem = readSecretFile(f.key);
  if (keyPem === undefined) throw new PortholeError('SECRET_FILE_UNREADABLE', `key file ${f.key} does not exist`);
  let secret = ctx.env['PORTHOLE_RELAY_REGISTRATION_SECRET'] || undefined;
  if (f.secretFile) {
    secret = readSecretFile(f.secretFile);
    if (secret === undefined) throw new PortholeError('SECRET_FILE_UNREADABLE', `secret file ${f.secretFile} does not exist`);
  }
  const relay = await startRelay({
    domain: f.domain,
    host,
    port,
    ...(f.httpListen ? { http: parseHostPort(f.httpListen, '--http-listen', true) } : {}),
    certPem: readFileSync(f.cert, 'utf8'),
    keyPem,
    registrationSecret: secret,
    production: f.production,
    mode: f.mode === 'terminate' ? 'terminate' : 'passthrough',
    storeDir: f.store ?? join(homePaths(ctx).home, 'relay'),
    limits,
  });
  const url = `https://${f.domain}:${relay.port}`;
  const mode = f.mode === 'terminate' ? 'terminate' : 'passthrough';
  if (f.json) {
    ctx.stdout.write(`${JSON.stringify({ event: 'listening', url, host: relay.host, port: relay.port, mode, httpPort: relay.httpPort ?? null })}\n`);
  }
  ctx.stderr.write(
    `porthole relay ${url} for *.${f.domain}, listening on ${relay.host}:${relay.port} ` +
      (mode === 'passthrough'
        ? "(passthrough: visitors' TLS goes to the desks untouched)\n"
        : '(terminate: this relay decrypts visitor traffic and can read it)\n') +
      (secret === undefined ? 'WARNING: using the dev registration secret (loopback only).\n' : ''),
  );
  relay.on('desk', (d: { name: string; url: string }) => {
    if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'desk-online', ...d })}\n`);
  });
  relay.on('desk-offline', (d: { name: string }) => {
    if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'desk-offline', ...d })}\n`);
  });
  return {
    relay,
    async stop() {
      await relay.close();
      if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'stopped' })}\n`);
    },
  };
}
