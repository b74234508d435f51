// The gateway's own TLS certificate (`porthole serve --tls self-signed`, or
// `--tls-cert F --tls-key F`). The self-signed one is made once in $PORTHOLE_HOME/tls/
// (key 0600, directory 0700) and reused; 30 days before it expires it is renewed with the
// same key, so a client's public-key pin (sha256/…) keeps matching. docs/control-plane.md.
import { createPrivateKey as createPrivateKeyFrom, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PortholeError } from '../errors.js';
import { ensureDir, readSecretFile, writeFileAtomic } from '../util/fs.js';
import { type CertificatePins, certificatePins, createCertificate } from './x509.js';

const RENEW_BEFORE_MS = 30 * 24 * 3600_000;

export interface GatewayTls {
  cert: string;
  key: string;
  pins: CertificatePins;
  source: 'self-signed' | 'files';
  certFile: string;
  keyFile: string;
  /** What happened to the self-signed certificate at this start. */
  action: 'created' | 'renewed' | 'reused' | 'given';
  notAfter: string;
}

export type TlsChoice = { mode: 'off' } | { mode: 'self-signed' } | { mode: 'files'; certFile: string; keyFile: string };

/** `--tls off|self-signed` and `--tls-cert/--tls-key` → a choice, refusing contradictions. */
export function tlsChoice(flags: { tls?: string; tlsCert?: string; tlsKey?: string }): TlsChoice {
  const files = flags.tlsCert !== undefined || flags.tlsKey !== undefined;
  if (files) {
    if (flags.tlsCert === undefined || flags.tlsKey === undefined) {
      throw new PortholeError('INVALID_ARGUMENT', '--tls-cert and --tls-key go together: pass both files');
    }
    if (flags.tls !== undefined && flags.tls !== 'files') {
      throw new PortholeError('INVALID_ARGUMENT', `--tls ${flags.tls} contradicts --tls-cert/--tls-key: drop one`);
    }
    return { mode: 'files', certFile: flags.tlsCert, keyFile: flags.tlsKey };
  }
  if (flags.tls === undefined || flags.tls === 'off') return { mode: 'off' };
  if (flags.tls === 'self-signed') return { mode: 'self-signed' };
  throw new PortholeError('INVALID_ARGUMENT', `--tls ${flags.tls}: use off or self-signed (or --tls-cert F --tls-key F)`);
}

const LAYER_RANK: Record<string, number> = { flag: 4, env: 3, file: 2, state: 1, default: 0 };

/**
 * `[gateway] tls`, `tls_cert`, `tls_key` (from any layer) → a choice. The cert/key files
 * win over `tls` unless `tls` was set in a higher-precedence layer (`--tls off` disables a
 * file's tls_cert for one run; `--tls-cert/--tls-key` override a file's `tls =
 * "self-signed"`). Both in the same layer contradict each other: refused (loadConfig's
 * cross-check reports the same problem for `config check`).
 */
export function tlsChoiceFromConfig(
  gateway: { tls: 'off' | 'self-signed'; tls_cert?: string; tls_key?: string },
  sources: Record<string, string>,
): TlsChoice {
  const { tls_cert: certFile, tls_key: keyFile } = gateway;
  if (certFile === undefined && keyFile === undefined) return { mode: gateway.tls };
  if (certFile === undefined || keyFile === undefined) {
    throw new PortholeError('CONFIG_INVALID', 'gateway.tls_cert and gateway.tls_key (--tls-cert/--tls-key) go together: set both or neither');
  }
  const files = Math.max(LAYER_RANK[sources['gateway.tls_cert'] ?? 'default'] ?? 0, LAYER_RANK[sources['gateway.tls_key'] ?? 'default'] ?? 0);
  const mode = LAYER_RANK[sources['gateway.tls'] ?? 'default'] ?? 0;
  if (mode > files) return { mode: gateway.tls };
  if (mode === files) {
    throw new PortholeError(
      'CONFIG_INVALID',
      `gateway.tls = "${gateway.tls}" contradicts gateway.tls_cert/tls_key (both from the ${sources['gateway.tls']}): keep one`,
    );
  }
  return { mode: 'files', certFile, keyFile };
}

/** Names a self-signed certificate covers: loopback, this host, and the bind address if specific. */
function namesFor(bindHost: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = new Set(['localhost']);
  const ipAddresses = new Set(['127.0.0.1', '::1']);
  const h = hostname().toLowerCase();
  if (/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(h)) dnsNames.add(h);
  if (/^[\d.]+$/.test(bindHost) || bindHost.includes(':')) {
    if (bindHost !== '0.0.0.0' && bindHost !== '::' && bindHost !== '') ipAddresses.add(bindHost);
  } else if (bindHost) dnsNames.add(bindHost.toLowerCase());
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

export function loadGatewayTls(choice: TlsChoice, home: string, bindHost: string, now = new Date()): GatewayTls | undefined {
  if (choice.mode === 'off') return undefined;
  if (choice.mode === 'files') {
    let cert: string;
    try {
      cert = readFileSync(choice.certFile, 'utf8');
    } catch (err) {
      throw new PortholeError('INVALID_ARGUMENT', `cannot read --tls-cert ${choice.certFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
    const key = readSecretFile(choice.keyFile);
    if (key === undefined) throw new PortholeError('INVALID_ARGUMENT', `--tls-key ${choice.keyFile} does not exist`);
    const x = parse(cert, choice.certFile);
    if (!x.checkPrivateKey(keyObject(key, choice.keyFile))) {
      throw new PortholeError('INVALID_ARGUMENT', `--tls-key ${choice.keyFile} is not the key of --tls-cert ${choice.certFile}`);
    }
    return { cert, key, pins: certificatePins(cert), source: 'files', certFile: choice.certFile, keyFile: choice.keyFile, action: 'given', notAfter: x.validTo };
  }
  const dir = join(home, 'tls');
  ensureDir(dir, 0o700);
  const certFile = join(dir, 'gateway-cert.pem');
  const keyFile = join(dir, 'gateway-key.pem');
  const key = readSecretFile(keyFile);
  let cert: string | undefined;
  try {
    cert = readFileSync(certFile, 'utf8');
  } catch {
    cert = undefined;
  }
  let action: GatewayTls['action'] = 'reused';
  if (key === undefined || cert === undefined) {
    const made = createCertificate({ commonName: 'porthole gateway', ...namesFor(bindHost), now });
    writeFileAtomic(keyFile, made.keyPem, { mode: 0o600 });
    writeFileAtomic(certFile, made.certPem, { mode: 0o644 });
    cert = made.certPem;
    action = 'created';
    return { cert, key: made.keyPem, pins: certificatePins(cert), source: 'self-signed', certFile, keyFile, action, notAfter: parse(cert, certFile).validTo };
  }
  const x = parse(cert, certFile);
  if (new Date(x.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS || !x.checkPrivateKey(keyObject(key, keyFile))) {
    // Same key: SPKI pins survive; certificate fingerprints change (documented).
    const made = createCertificate({ commonName: 'porthole gateway', ...namesFor(bindHost), now, keyPem: key });
    writeFileAtomic(certFile, made.certPem, { mode: 0o644 });
    cert = made.certPem;
    action = 'renewed';
  }
  return { cert, key, pins: certificatePins(cert), source: 'self-signed', certFile, keyFile, action, notAfter: parse(cert, certFile).validTo };
}

function parse(cert: string, file: string): X509Certificate {
  try {
    return new X509Certificate(cert);
  } catch (err) {
    throw new PortholeError('INVALID_ARGUMENT', `${file} is not a PEM certificate`, { cause: err });
  }
}

function keyObject(key: string, file: string) {
  try {
    return createPrivateKeyFrom(key);
  } catch (err) {
    throw new PortholeError('INVALID_ARGUMENT', `${file} is not a PEM private key`, { cause: err });
  }
}
