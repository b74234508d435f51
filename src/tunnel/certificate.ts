// The desk's certificate for its tunnel name (passthrough mode: the desk terminates the
// visitor's TLS). Either files the operator gave ([tunnel] tls_cert/tls_key), or obtained by
// ACME when [tunnel] acme is on (src/acme/keeper.ts): HTTP-01, validated through the relay's
// plain-HTTP listener, which carries `/.well-known/acme-challenge/…` for `<name>.<domain>`
// to this desk (docs/relay-protocol.md §7). The relay never holds the key.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type AcmeCertificateStatus, createAcmeKeeper, parseLeaf } from '../acme/keeper.js';
import type { TunnelConfig } from '../config/schema.js';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import { readSecretFile } from '../util/fs.js';
import type { TunnelCertificate, TunnelIngress } from './ingress.js';

export type CertificateStatus = { source: 'files'; notAfter: string } | AcmeCertificateStatus;

export interface CertificateKeeper {
  /** The tunnel is online as `name` (passthrough): make sure a certificate for it is served. */
  online(name: string): void;
  status(): CertificateStatus;
  stop(): void;
}

export interface CertificateKeeperOptions {
  config: TunnelConfig;
  /** The relay's name (host of [tunnel] relay): the desk's name must be one label under it. */
  relayHost: string;
  acmeDir: string;
  ingress: TunnelIngress;
  audit(event: string, fields: Record<string, string | number | null>): void;
  logger?: Logger;
  /** Retry after a failed issuance: first delay and cap (tests shorten them). */
  retry?: { baseMs?: number; maxMs?: number };
  /** ACME only: called after each change of the certificate's status. */
  onChange?(status: CertificateStatus): void;
}

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
  const keeper = createAcmeKeeper({
    directoryUrl: config.acme_directory,
    ...(config.acme_ca ? { ca: readFileSync(config.acme_ca, 'utf8') } : {}),
    ...(config.acme_email ? { email: config.acme_email } : {}),
    acmeDir: o.acmeDir,
    challenges: ingress.challenges,
    install: (cert) => ingress.setCertificate(cert),
    audit: o.audit,
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.retry ? { retry: o.retry } : {}),
    ...(o.onChange ? { onChange: o.onChange } : {}),
  });
  const relayHost = o.relayHost.toLowerCase().replace(/\.$/, '');
  let refused: AcmeCertificateStatus | undefined;
  return {
    online(name) {
      // The relay says which name the desk has; a certificate is asked only for one label
      // under the relay's own name, so a hostile relay cannot point the desk's ACME account
      // (and its rate limits) at names of its choosing.
      const label = name.endsWith(`.${relayHost}`) ? name.slice(0, -relayHost.length - 1) : '';
      if (!/^[a-z0-9-]{1,63}$/.test(label)) {
        refused = { source: 'acme', state: 'failed', name, error: `the relay named this desk ${name}, which is not one label under ${relayHost}: no certificate is requested for it` };
        o.onChange?.(refused);
        o.audit('acme refused', { name, reason: 'NOT_UNDER_RELAY_DOMAIN' });
        o.logger?.log('warn', 'tunnel certificate: the relay named this desk outside its own domain; no ACME order', { name, relay: relayHost });
        return;
      }
      refused = undefined;
      keeper.ensure(name);
    },
    status: () => refused ?? keeper.status(),
    stop: keeper.stop,
  };
}

