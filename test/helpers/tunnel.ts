// A relay and a desk on loopback for e2e tests: a throwaway CA, certificates for the
// relay's apex and the desk's name, and HTTPS requests as a visitor would make them
// (SNI = the desk's name, dialled at 127.0.0.1).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { createCertificate } from '../../src/tls/x509.js';
import { startEchoApp, type EchoApp } from './echo-app.js';
import { tempHome } from './cli.js';

export const DOMAIN = 'tunnel.example.test';

export interface TunnelPki {
  dir: string;
  caFile: string;
  caPem: string;
  relayCert: string;
  relayKey: string;
  /** A relay certificate that also covers `*.<DOMAIN>` (terminate mode). */
  wildcardCert: string;
  wildcardKey: string;
  /** Certificate + key for `<name>.<DOMAIN>`. */
  desk(name: string): { cert: string; key: string };
  cleanup(): void;
}

export function makePki(): TunnelPki {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-pki-'));
  const ca = createCertificate({ commonName: 'porthole test CA', isCA: true });
  const write = (name: string, text: string, mode = 0o644) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode });
    return p;
  };
  const caFile = write('ca.pem', ca.certPem);
  const relay = createCertificate({ commonName: DOMAIN, dnsNames: [DOMAIN], issuer: ca });
  const wildcard = createCertificate({ commonName: DOMAIN, dnsNames: [DOMAIN, `*.${DOMAIN}`], issuer: ca });
  return {
    dir,
    caFile,
    caPem: ca.certPem,
    relayCert: write('relay.pem', relay.certPem),
    relayKey: write('relay-key.pem', relay.keyPem, 0o600),
    wildcardCert: write('wildcard.pem', wildcard.certPem),
    wildcardKey: write('wildcard-key.pem', wildcard.keyPem, 0o600),
    desk(name) {
      const host = `${name}.${DOMAIN}`;
      const c = createCertificate({ commonName: host, dnsNames: [host], issuer: ca });
      return { cert: write(`${name}.pem`, c.certPem), key: write(`${name}-key.pem`, c.keyPem, 0o600) };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface VisitorReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTPS request to `<name>.<DOMAIN>` through the relay at 127.0.0.1:port. */
export function visit(
  relayPort: number,
  name: string,
  caPem: string,
  path: string,
  headers: Record<string, string> = {},
  localAddress?: string,
): Promise<VisitorReply> {
  const host = `${name}.${DOMAIN}`;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: relayPort,
        servername: host,
        ca: caPem,
        path,
        headers: { host: `${host}:${relayPort}`, ...headers },
        agent: false,
        ...(localAddress ? { localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Writes a desk's porthole.toml [tunnel] section: relay at 127.0.0.1, name, CA and certificate. */
export function writeDeskConfig(pki: TunnelPki, dir: string, relayPort: number, name: string): void {
  const c = pki.desk(name);
  writeFileSync(
    join(dir, 'porthole.toml'),
    [
      '[tunnel]',
      `relay = "${DOMAIN}:${relayPort}"`,
      'connect_address = "127.0.0.1"',
      `subdomain = "${name}"`,
      `ca = "${pki.caFile}"`,
      `tls_cert = "${c.cert}"`,
      `tls_key = "${c.key}"`,
      '',
    ].join('\n'),
  );
}

export interface TunnelFixture {
  /** Set in the file's `before` hook. */
  pki: TunnelPki;
  app: EchoApp;
  /** A fresh temporary PORTHOLE_HOME, removed after the file. */
  home(): string;
}

/** Registers the setup most tunnel e2e files share: a test PKI, the echo app, temp homes — all gone after the file. */
export function tunnelFixture(): TunnelFixture {
  const homes: { cleanup(): void }[] = [];
  const fx = {
    home() {
      const h = tempHome();
      homes.push(h);
      return h.home;
    },
  } as TunnelFixture;
  before(async () => {
    fx.pki = makePki();
    fx.app = await startEchoApp();
  });
  after(async () => {
    await fx.app?.close();
    fx.pki?.cleanup();
    for (const h of homes) h.cleanup();
  });
  return fx;
}
