// `porthole relay --domain D [--listen H:P] [--cert F --key F] [--store DIR] [--production]`.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAcmeKeeper } from '../acme/keeper.js';
import { LETS_ENCRYPT_DIRECTORY } from '../config/schema.js';
import { checkEmail, checkHttpsUrl } from '../config/validate.js';
import { PortholeError } from '../errors.js';
import { startRelay, type Relay, type RelayLimits } from '../relay/server.js';
import { appendAudit } from '../util/audit.js';
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
  acme?: boolean;
  acmeDirectory?: string;
  acmeCa?: string;
  acmeEmail?: string;
  json?: boolean;
  maxDesks?: string;
  maxStreamsPerDesk?: string;
  maxStreamsPerAddress?: string;
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
  set('maxStreamsPerAddress', count(f.maxStreamsPerAddress, '--max-streams-per-address', 65_535));
  set('registrationsPerMinute', count(f.registrationsPerMinute, '--registrations-per-minute'));
  set('clientHelloTimeoutMs', seconds(f.clientHelloTimeout, '--client-hello-timeout'));
  set('visitorIdleMs', seconds(f.visitorIdleTimeout, '--visitor-idle-timeout'));
  return limits;
}


/** --acme's settings, checked: the flags that cannot go with it are refused, each with why. */
function acmeSettings(f: RelayFlags): { directoryUrl: string; ca?: string; email?: string } | undefined {
  if (!f.acme) {
    for (const [value, flag] of [[f.acmeDirectory, '--acme-directory'], [f.acmeCa, '--acme-ca'], [f.acmeEmail, '--acme-email']] as const) {
      if (value !== undefined) throw new PortholeError('INVALID_ARGUMENT', `${flag} needs --acme`);
    }
    return undefined;
  }
  if (f.cert || f.key) throw new PortholeError('INVALID_ARGUMENT', '--acme obtains the certificate itself: leave out --cert and --key');
  if (f.mode === 'terminate') {
    throw new PortholeError('INVALID_ARGUMENT', `--acme cannot serve terminate mode: it needs a wildcard certificate for *.${f.domain}, which HTTP-01 cannot issue; use --cert/--key`);
  }
  if (!f.httpListen) throw new PortholeError('INVALID_ARGUMENT', '--acme needs --http-listen (port 80 as the CA sees it): the CA validates the relay over plain HTTP');
  const directoryUrl = f.acmeDirectory ?? LETS_ENCRYPT_DIRECTORY;
  const url = checkHttpsUrl(directoryUrl);
  if (url.problem !== undefined) throw new PortholeError('INVALID_ARGUMENT', `--acme-directory: ${url.problem}`);
  if (f.acmeEmail !== undefined && checkEmail(f.acmeEmail).problem !== undefined) {
    throw new PortholeError('INVALID_ARGUMENT', `--acme-email: ${checkEmail(f.acmeEmail).problem}`);
  }
  return {
    directoryUrl,
    ...(f.acmeCa !== undefined ? { ca: readFileSync(f.acmeCa, 'utf8') } : {}),
    ...(f.acmeEmail !== undefined ? { email: f.acmeEmail } : {}),
  };
}

export async function relayCommand(ctx: CliContext, f: RelayFlags): Promise<{ relay: Relay; stop(): Promise<void> }> {
  const acme = acmeSettings(f);
  if (!acme && (!f.cert || !f.key)) {
    throw new PortholeError('INVALID_ARGUMENT', `--cert and --key are required: a certificate for the relay's own name (${f.domain}), or --acme to obtain one`);
  }
  const { host, port } = parseHostPort(f.listen ?? '127.0.0.1:7443', '--listen', true);
  const limits = relayLimits(f);
  const keyPem = f.key ? readSecretFile(f.key) : undefined;
  if (f.key && keyPem === undefined) throw new PortholeError('SECRET_FILE_UNREADABLE', `key file ${f.key} does not exist`);
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
    ...(f.cert && keyPem !== undefined ? { certPem: readFileSync(f.cert, 'utf8'), keyPem } : {}),
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
  const paths = homePaths(ctx);
  const keeper = acme
    ? createAcmeKeeper({
        ...acme,
        acmeDir: paths.acmeDir,
        challenges: relay.challenges,
        install: (cert) => {
          relay.setCertificate(cert);
          const x = new X509Certificate(cert.certPem);
          if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'certificate', name: f.domain, notAfter: new Date(x.validTo).toISOString() })}\n`);
        },
        audit: (event, fields) => appendAudit(paths.auditLog, event, fields),
      })
    : undefined;
  if (keeper) {
    keeper.ensure(f.domain.toLowerCase().replace(/\.$/, ''));
    ctx.stderr.write(`certificate for ${f.domain}: by ACME from ${acme!.directoryUrl} (desks are refused until it is in place)\n`);
  }
  return {
    relay,
    async stop() {
      keeper?.stop();
      await relay.close();
      if (f.json) ctx.stdout.write(`${JSON.stringify({ event: 'stopped' })}\n`);
    },
  };
}
