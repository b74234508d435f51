// The demo's relay tunnel, all on this machine: a throwaway CA, an embedded relay on
// loopback (dev secret), and the desk's tunnel to it — so a new user sees the whole flow
// (desk online at a public-style URL, reached through the relay) without a server.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LETS_ENCRYPT_DIRECTORY } from '../config/schema.js';
import type { Gateway } from '../gateway/gateway.js';
import { startRelay, type Relay } from '../relay/server.js';
import { openSecretStore } from '../secrets/store.js';
import { createCertificate } from '../tls/x509.js';
import { createTunnelManager, type TunnelManager } from '../tunnel/manager.js';

export const DEMO_DOMAIN = 'tunnel.porthole.test';
export const DEMO_NAME = 'demo';

export interface DemoTunnel {
  relay: Relay;
  tunnel: TunnelManager;
  caFile: string;
  close(): Promise<void>;
}

/** CA + relay + desk certificates under `<home>/demo-pki`, made once. */
function demoPki(home: string): { caFile: string; relayCert: string; relayKey: string; deskCert: string; deskKey: string } {
  const dir = join(home, 'demo-pki');
  const f = {
    caFile: join(dir, 'ca.pem'),
    relayCert: join(dir, 'relay.pem'),
    relayKey: join(dir, 'relay-key.pem'),
    deskCert: join(dir, 'desk.pem'),
    deskKey: join(dir, 'desk-key.pem'),
  };
  if (existsSync(f.deskKey)) return f;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = createCertificate({ commonName: 'porthole demo CA (throwaway)', isCA: true, days: 30 });
  const relay = createCertificate({ commonName: DEMO_DOMAIN, dnsNames: [DEMO_DOMAIN], issuer: ca, days: 30 });
  const deskName = `${DEMO_NAME}.${DEMO_DOMAIN}`;
  const desk = createCertificate({ commonName: deskName, dnsNames: [deskName], issuer: ca, days: 30 });
  writeFileSync(f.caFile, ca.certPem);
  writeFileSync(f.relayCert, relay.certPem);
  writeFileSync(f.relayKey, relay.keyPem, { mode: 0o600 });
  writeFileSync(f.deskCert, desk.certPem);
  writeFileSync(f.deskKey, desk.keyPem, { mode: 0o600 });
  // The CA key is not kept: nothing else will ever be signed by this throwaway CA.
  return f;
}

export async function startDemoTunnel(gateway: Gateway): Promise<DemoTunnel> {
  const pki = demoPki(gateway.paths.home);
  const relay = await startRelay({
    domain: DEMO_DOMAIN,
    host: '127.0.0.1',
    port: 0,
    certPem: readFileSync(pki.relayCert, 'utf8'),
    keyPem: readFileSync(pki.relayKey, 'utf8'),
    registrationSecret: undefined, // the dev default: loopback only
    storeDir: join(gateway.paths.home, 'demo-relay'),
  });
  const tunnel = createTunnelManager({
    gateway,
    config: {
      enabled: true,
      auto_start: false,
      relay: `${DEMO_DOMAIN}:${relay.port}`,
      connect_address: '127.0.0.1',
      subdomain: DEMO_NAME,
      ca: pki.caFile,
      tls_cert: pki.deskCert,
      tls_key: pki.deskKey,
      acme: false,
      acme_directory: LETS_ENCRYPT_DIRECTORY,
    },
    paths: gateway.paths,
    store: openSecretStore(gateway.paths),
    env: {},
    // A relay on loopback exposes nothing publicly: no consent to ask for.
    localRelay: true,
  });
  tunnel.start();
  return {
    relay,
    tunnel,
    caFile: pki.caFile,
    async close() {
      await tunnel.close();
      await relay.close();
    },
  };
}
