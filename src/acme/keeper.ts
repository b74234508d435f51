// Keeps one ACME certificate for a name served and fresh: reuses a stored one while more
// than a third of its lifetime is left, else obtains one (src/acme/client.ts) and hands it to
// `install`; renews at two thirds of the lifetime; a failure is retried with capped back-off
// while the current certificate keeps serving. Used by the desk for its tunnel name and by
// the relay for its own name.
//
// State in `acmeDir` (0700): `account.key` (the ACME account, P-256, 0600) and per name
// `<name>.key` (0600, a fresh key per issuance) + `<name>.crt` (the chain as served).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureDir, readSecretFile, writeFileAtomic } from '../util/fs.js';
import { type AcmeChallengeStore, generateAcmeKeyPem, obtainCertificate } from './client.js';

export interface CertificatePair {
  certPem: string;
  keyPem: string;
}

export interface AcmeCertificateStatus {
  source: 'acme';
  state: 'waiting' | 'obtaining' | 'valid' | 'failed';
  name?: string;
  notAfter?: string;
  error?: string;
}

export interface AcmeKeeper {
  /** Make sure a certificate for `name` is served (now, from disk, or once obtained). */
  ensure(name: string): void;
  status(): AcmeCertificateStatus;
  stop(): void;
}

export interface AcmeKeeperOptions {
  directoryUrl: string;
  /** PEM CA for the ACME server's HTTPS (private CAs, tests). */
  ca?: string;
  email?: string;
  acmeDir: string;
  /** Where the HTTP-01 key authorizations are served from. */
  challenges: AcmeChallengeStore;
  /** Serve this certificate from the next handshake on. */
  install(cert: CertificatePair): void;
  audit(event: string, fields: Record<string, string | number | null>): void;
  logger?: Logger;
  /** Retry after a failed issuance: first delay and cap (tests shorten them). */
  retry?: { baseMs?: number; maxMs?: number };
  /** Called after each change of status (obtaining, valid, failed). */
  onChange?(status: AcmeCertificateStatus): void;
}

const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 6 * 3600_000;
/** setTimeout's limit is 2^31-1 ms (~24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createAcmeKeeper(o: AcmeKeeperOptions): AcmeKeeper {

  const { acmeDir } = o;
  const retryBase = o.retry?.baseMs ?? RETRY_BASE_MS;
  const retryMax = o.retry?.maxMs ?? RETRY_MAX_MS;
  let status: AcmeCertificateStatus = { source: 'acme', state: 'waiting' };
  let served: { name: string; renewAt: number } | undefined;
  let running: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let stopped = false;

  const arm = (atMs: number, name: string): void => {
    clearTimeout(timer);
    const wait = Math.max(0, atMs - Date.now());
    timer = setTimeout(() => (wait > MAX_TIMER_MS ? arm(atMs, name) : ensure(name)), Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };

  const serve = (name: string, cert: CertificatePair, x: X509Certificate): void => {
    o.install(cert);
    const renewAt = renewalTime(x);
    served = { name, renewAt };
    status = { source: 'acme', state: 'valid', name, notAfter: new Date(x.validTo).toISOString() };
    o.onChange?.(status);
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
    const keepServing = status.state === 'valid' ? status : undefined;
    status = { source: 'acme', state: 'obtaining', name, ...(keepServing?.notAfter ? { notAfter: keepServing.notAfter } : {}) };
    o.onChange?.(status);
    o.logger?.log('info', 'certificate: requesting one by ACME', { name, directory: o.directoryUrl });
    try {
      ensureDir(acmeDir, 0o700);
      const accountKeyPem = loadOrCreateKey(join(acmeDir, 'account.key'));
      const certKeyPem = generateAcmeKeyPem();
      const issued = await obtainCertificate(
        {
          directoryUrl: o.directoryUrl,
          ...(o.ca !== undefined ? { ca: o.ca } : {}),
          accountKeyPem,
          ...(o.email ? { email: o.email } : {}),
          challenges: o.challenges,
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
      o.audit('acme issued', { name, not_after: issued.notAfter.toISOString(), directory: o.directoryUrl, terms: issued.termsOfService ?? null });
      serve(name, { certPem: issued.certPem, keyPem: certKeyPem }, parseLeaf(issued.certPem, 'the issued certificate'));
    } catch (err) {
      if (stopped) return;
      failures++;
      const message = (err as Error).message;
      const delay = Math.min(retryMax, retryBase * 2 ** Math.min(failures - 1, 20));
      status = { source: 'acme', state: 'failed', name, error: message, ...(keepServing?.notAfter ? { notAfter: keepServing.notAfter } : {}) };
      o.onChange?.(status);
      o.audit('acme failed', { name, reason: (err as PortholeError).code ?? 'ERROR', retry_in_s: Math.round(delay / 1000) });
      o.logger?.log('warn', 'certificate: ACME failed; retrying', { name, error: message, retryInMs: delay });
      // A renewal failure leaves `served` as it was: the current certificate keeps serving.
      if (served?.name === name) served = { name, renewAt: Date.now() + delay };
      arm(Date.now() + delay, name);
    } finally {
      if (running === controller) running = undefined;
    }
  }

  return {
    ensure,
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

function loadStored(acmeDir: string, name: string): (CertificatePair & { x: X509Certificate }) | undefined {
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
export function parseLeaf(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new PortholeError('INVALID_ARGUMENT', `${what}: not a PEM certificate (${(err as Error).message})`);
  }
}
