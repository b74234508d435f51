// The desk's certificate for its tunnel name (passthrough mode: the desk terminates the
// visitor's TLS). Either files the operator gave ([tunnel] tls_cert/tls_key), or obtained by
// ACME when [tunnel] acme is on: HTTP-01, validated through the relay's plain-HTTP listener,
// which carries `/.well-known/acme-challenge/…` for `<name>.<domain>` to this desk
// (docs/relay-protocol.md §7). The relay never holds the key.
//
// ACME state lives in $PORTHOLE_HOME/acme/ (0700): `account.key` (the ACME account, P-256,
// 0600) and per name `<name>.key` (0600) + `<name>.crt` (the chain as the CA served it). A
// stored certificate is reused across restarts while more than a third of its lifetime is
// left; renewal starts then (Let's Encrypt's 90 days → 30 days before expiry), a failure
// retries with capped back-off while the current certificate keeps serving. Each issuance
// uses a fresh certificate key.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateAcmeKeyPem, obtainCertificate } from '../acme/client.js';
import type { TunnelConfig } from '../config/schema.js';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureDir, readSecretFile, writeFileAtomic } from '../util/fs.js';
import type { TunnelCertificate, TunnelIngress } from './ingress.js';

export type CertificateStatus =
  | { source: 'files'; notAfter: string }
  | { source: 'acme'; state: 'waiting' | 'obtaining' | 'valid' | 'failed'; name?: string; notAfter?: string; error?: string };

export interface CertificateKeeper {
  /** The tunnel is online as `name` (passthrough): make sure a certificate for it is served. */
  online(name: string): void;
  status(): CertificateStatus;
  stop(): void;
}

export interface CertificateKeeperOptions {
  config: TunnelConfig;
  acmeDir: string;
  ingress: TunnelIngress;
  audit(event: string, fields: Record<string, string | number | null>): void;
  logger?: Logger;
  /** Retry after a failed issuance: first delay and cap (tests shorten them). */
  retry?: { baseMs?: number; maxMs?: number };
}

const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 6 * 3600_000;
/** setTimeout's limit is 2^31-1 ms (~24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Reads a configured certificate pair (files mode); throws a clear error for a missing or unusable one. */
export function readCertificateFiles(certFile: string, keyFile: string): TunnelCertificate & { notAfter: Date } {
  const keyPem = readSecretFile(keyFile);
  if (keyPem === undefined) throw new PortholeError('SECRET_FILE_UNREADABLE', `tunnel TLS key ${keyFile} does not exist`);
  const certPem = readFileSync(certFile, 'utf8');
  const x = parseLeaf(certPem, certFile);
  if (!x.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new PortholeError('INVALID_ARGUMENT', `tunnel TLS key ${keyFile} does not belong to the certificate ${certFile}`);
  }
  return { certPem, keyPem, notAfter: new Date(x.validTo) };
}

export function createCertificateKeeper(o: CertificateKeeperOptions): CertificateKeeper {
  const { config, ingress } = o;
  if (config.tls_cert && config.tls_key) {
    const files = readCertificateFiles(config.tls_cert, config.tls_key);
    ingress.setCertificate(files);
    const status: CertificateStatus = { source: 'files', notAfter: files.notAfter.toISOString() };
    return { online() {}, status: () => status, stop() {} };
  }
  if (!config.acme) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      "the desk terminates visitors' TLS (passthrough): set [tunnel] tls_cert and tls_key to a certificate for its tunnel name, " +
        'or [tunnel] acme = true to obtain one automatically (ACME HTTP-01 through the relay; docs/config.md "Tunnel certificates")',
    );
  }
  return acmeKeeper(o);
}

function acmeKeeper(o: CertificateKeeperOptions): CertificateKeeper {
  const { config, ingress, acmeDir } = o;
  const retryBase = o.retry?.baseMs ?? RETRY_BASE_MS;
  const retryMax = o.retry?.maxMs ?? RETRY_MAX_MS;
  let status: CertificateStatus = { source: 'acme', state: 'waiting' };
  let served: { name: string; renewAt: number } | undefined;
  let running: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let stopped = false;
  const ca = config.acme_ca ? readFileSync(config.acme_ca, 'utf8') : undefined;

  const arm = (atMs: number, name: string): void => {
    clearTimeout(timer);
    const wait = Math.max(0, atMs - Date.now());
    timer = setTimeout(() => (wait > MAX_TIMER_MS ? arm(atMs, name) : ensure(name)), Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };

  const serve = (name: string, cert: TunnelCertificate, x: X509Certificate): void => {
    ingress.setCertificate(cert);
    const renewAt = renewalTime(x);
    served = { name, renewAt };
    status = { source: 'acme', state: 'valid', name, notAfter: new Date(x.validTo).toISOString() };
    arm(renewAt, name);
  };

  function ensure(name: string): void {
    if (stopped || running) return;
    if (served?.name === name && Date.now() < served.renewAt) return;
    if (served?.name !== name) {
      const stored = loadStored(acmeDir, name);
      if (stored && Date.now() < renewalTime(stored.x)) {
        serve(name, stored, stored.x);
        return;
      }
    }
    void issue(name);
  }

  async function issue(name: string): Promise<void> {
    const controller = new AbortController();
    running = controller;
    const keepServing = status.source === 'acme' && status.state === 'valid' ? status : undefined;
    status = { source: 'acme', state: 'obtaining', name, ...(keepServing?.notAfter ? { notAfter: keepServing.notAfter } : {}) };
    o.logger?.log('info', 'tunnel certificate: requesting one by ACME', { name, directory: config.acme_directory });
    try {
      ensureDir(acmeDir, 0o700);
      const accountKeyPem = loadOrCreateKey(join(acmeDir, 'account.key'));
      const certKeyPem = generateAcmeKeyPem();
      const issued = await obtainCertificate(
        {
          directoryUrl: config.acme_directory,
          ...(ca !== undefined ? { ca } : {}),
          accountKeyPem,
          ...(config.acme_email ? { email: config.acme_email } : {}),
          challenges: ingress.challenges,
          signal: controller.signal,
        },
        name,
        certKeyPem,
      );
      if (stopped) return;
      // Key first: a certificate on disk always has its key beside it.
      writeFileAtomic(join(acmeDir, `${name}.key`), certKeyPem, { mode: 0o600, dirMode: 0o700 });
      writeFileAtomic(join(acmeDir, `${name}.crt`), issued.certPem, { mode: 0o644, dirMode: 0o700 });
      failures = 0;
      o.audit('acme issued', { name, not_after: issued.notAfter.toISOString(), directory: config.acme_directory, terms: issued.termsOfService ?? null });
      serve(name, { certPem: issued.certPem, keyPem: certKeyPem }, parseLeaf(issued.certPem, 'the issued certificate'));
    } catch (err) {
      if (stopped) return;
      failures++;
      const message = (err as Error).message;
      const delay = Math.min(retryMax, retryBase * 2 ** Math.min(failures - 1, 20));
      status = { source: 'acme', state: 'failed', name, error: message, ...(keepServing?.notAfter ? { notAfter: keepServing.notAfter } : {}) };
      o.audit('acme failed', { name, reason: (err as PortholeError).code ?? 'ERROR', retry_in_s: Math.round(delay / 1000) });
      o.logger?.log('warn', 'tunnel certificate: ACME failed; retrying', { name, error: message, retryInMs: delay });
      // A renewal failure leaves `served` as it was: the current certificate keeps serving.
      if (served?.name === name) served = { name, renewAt: Date.now() + delay };
      arm(Date.now() + delay, name);
    } finally {
      if (running === controller) running = undefined;
    }
  }

  return {
    online(name) {
      ensure(name);
    },
    status: () => status,
    stop() {
      stopped = true;
      clearTimeout(timer);
      running?.abort();
    },
  };
}

/** Renew once two thirds of the lifetime have passed. */
function renewalTime(x: X509Certificate): number {
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  return from + ((to - from) * 2) / 3;
}

function loadStored(acmeDir: string, name: string): (TunnelCertificate & { x: X509Certificate }) | undefined {
  let certPem: string;
  try {
    certPem = readFileSync(join(acmeDir, `${name}.crt`), 'utf8');
  } catch {
    return undefined;
  }
  const keyPem = readSecretFile(join(acmeDir, `${name}.key`));
  if (keyPem === undefined) return undefined;
  try {
    const x = parseLeaf(certPem, name);
    // A damaged or foreign pair is not served: a fresh one is requested instead.
    if (x.checkHost(name) === undefined || !x.checkPrivateKey(createPrivateKey(keyPem))) return undefined;
    return { certPem, keyPem, x };
  } catch {
    return undefined;
  }
}

function loadOrCreateKey(file: string): string {
  const existing = readSecretFile(file);
  if (existing !== undefined) return existing;
  const pem = generateAcmeKeyPem();
  writeFileAtomic(file, pem, { mode: 0o600, dirMode: 0o700 });
  return pem;
}

/** The first certificate of a PEM chain. */
function parseLeaf(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new PortholeError('INVALID_ARGUMENT', `${what}: not a PEM certificate (${(err as Error).message})`);
  }
}
