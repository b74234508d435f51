// The desk's certificate keeper without a network: files are checked against their key, and
// an ACME order is only ever placed for one label under the relay's own name (a hostile relay
// cannot aim the desk's ACME account at names of its choosing). Real issuance: test/e2e/tunnel-acme.test.ts.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LETS_ENCRYPT_DIRECTORY, type TunnelConfig } from '../../src/config/schema.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { createCertificate } from '../../src/tls/x509.js';
import { createCertificateKeeper } from '../../src/tunnel/certificate.js';
import { createTunnelIngress } from '../../src/tunnel/ingress.js';

const dir = mkdtempSync(join(tmpdir(), 'porthole-cert-'));
const gateway = createGateway({ stateDir: join(dir, 'state'), app: (_req, res) => res.end('app'), token: `ph_${'a'.repeat(43)}` });
after(async () => {
  await gateway.close();
  rmSync(dir, { recursive: true, force: true });
});

const base: TunnelConfig = { enabled: true, auto_start: false, relay: 'tunnel.example.test:443', acme: true, acme_directory: LETS_ENCRYPT_DIRECTORY };

test('ACME: a name outside the relay domain is refused before any order', () => {
  const audit: [string, Record<string, unknown>][] = [];
  const acmeDir = join(dir, 'acme-refused');
  const keeper = createCertificateKeeper({
    config: base,
    relayHost: 'tunnel.example.test',
    acmeDir,
    ingress: createTunnelIngress(gateway),
    audit: (event, fields) => void audit.push([event, fields]),
  });
  for (const name of ['victim.example.com', 'a.b.tunnel.example.test', 'tunnel.example.test', 'evil-tunnel.example.test']) {
    keeper.online(name);
    const s = keeper.status();
    assert.equal(s.source === 'acme' && s.state, 'failed', name);
    assert.match(s.source === 'acme' ? (s.error ?? '') : '', /not one label under tunnel\.example\.test/);
  }
  assert.deepEqual(audit.map(([e]) => e), ['acme refused', 'acme refused', 'acme refused', 'acme refused']);
  // Nothing was created: no account key, no order.
  assert.equal(existsSync(acmeDir), false);
  keeper.stop();
});

test('files: a key that does not belong to the certificate is refused; a matching pair is served', () => {
  const a = createCertificate({ commonName: 'desk.tunnel.example.test', dnsNames: ['desk.tunnel.example.test'] });
  const b = createCertificate({ commonName: 'other.tunnel.example.test', dnsNames: ['other.tunnel.example.test'] });
  const certFile = join(dir, 'a.pem');
  const keyA = join(dir, 'a-key.pem');
  const keyB = join(dir, 'b-key.pem');
  writeFileSync(certFile, a.certPem);
  writeFileSync(keyA, a.keyPem, { mode: 0o600 });
  writeFileSync(keyB, b.keyPem, { mode: 0o600 });
  const make = (key: string) => {
    const ingress = createTunnelIngress(gateway);
    const keeper = createCertificateKeeper({ config: { ...base, acme: false, tls_cert: certFile, tls_key: key }, relayHost: 'tunnel.example.test', acmeDir: join(dir, 'unused'), ingress, audit: () => {} });
    return { ingress, keeper };
  };
  assert.throws(() => make(keyB), /does not belong to the certificate/);
  const { ingress, keeper } = make(keyA);
  assert.equal(ingress.hasCertificate, true);
  assert.equal(keeper.status().source, 'files');
});

test('neither files nor ACME: the error says how to get a certificate', () => {
  assert.throws(
    () => createCertificateKeeper({ config: { ...base, acme: false }, relayHost: 'tunnel.example.test', acmeDir: join(dir, 'x'), ingress: createTunnelIngress(gateway), audit: () => {} }),
    /tls_cert and tls_key.*acme = true/,
  );
});
