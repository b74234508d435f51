// Hostile review of the relay's name registry (2026-11-24), each test failing on the relay
// before it: a key serves one name (its old link closes when it moves, every link when it
// releases); a full relay claims nothing for the desks it refuses; a store the relay cannot
// write costs a registration, is not shown to the desk, and never ends the relay.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { rawPublicKey } from '../../src/protocol/handshake.js';
import { type RelayLimits, startRelay, type Relay } from '../../src/relay/server.js';
import { createCertificate } from '../../src/tls/x509.js';
import { connectOnce } from '../../src/tunnel/client.js';
import type { DeskIdentity } from '../../src/tunnel/identity.js';

const DOMAIN = 'tunnel.example.test';
const SECRET = 'a-registration-secret-0123';
const ca = createCertificate({ commonName: 'test CA', isCA: true });
const cert = createCertificate({ commonName: DOMAIN, dnsNames: [DOMAIN], issuer: ca });
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function identity(): DeskIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: rawPublicKey(publicKey) };
}

async function relayWith(limits: RelayLimits = {}): Promise<{ relay: Relay; store: string }> {
  const store = mkdtempSync(join(tmpdir(), 'porthole-registry-'));
  dirs.push(store);
  const relay = await startRelay({ domain: DOMAIN, host: '127.0.0.1', port: 0, certPem: cert.certPem, keyPem: cert.keyPem, registrationSecret: SECRET, storeDir: store, limits });
  return { relay, store };
}

interface Link {
  name: string;
  closed: Promise<void>;
  close(): void;
}

async function register(r: Relay, id: DeskIdentity, subdomain: string | undefined, kind: 'register' | 'release' = 'register'): Promise<Link | { released: string | null }> {
  const out = await connectOnce(
    { relay: `${DOMAIN}:${r.port}`, connectAddress: '127.0.0.1', subdomain, ca: ca.certPem, identity: id, secret: SECRET, onStream: (s) => s.destroy() },
    kind,
  );
  if ('released' in out) return out;
  const session = out.session;
  return { name: out.name, closed: new Promise((resolve) => session.once('close', () => resolve())), close: () => session.close() };
}

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms))]);

test('a key serves one name: its old link closes when it moves, and every link when it releases', { timeout: 15_000 }, async () => {
  const { relay } = await relayWith();
  try {
    const key = identity();
    const one = (await register(relay, key, 'name-one')) as Link;
    const two = (await register(relay, key, 'name-two')) as Link;
    assert.equal(two.name, 'name-two');
    await within(one.closed, 3_000, 'the link on the name the key left closes');
    const three = (await register(relay, key, 'name-three')) as Link;
    await within(two.closed, 3_000, 'the second link closes');
    assert.deepEqual(await register(relay, key, undefined, 'release'), { released: 'name-three' });
    await within(three.closed, 3_000, 'the released link closes');
    // The names are held back for others, and nothing serves them.
    await assert.rejects(register(relay, identity(), 'name-one'), { code: 'SUBDOMAIN_HELD' });
  } finally {
    await relay.close();
  }
});

test('a full relay refuses a desk before it claims a name', { timeout: 15_000 }, async () => {
  const { relay, store } = await relayWith({ maxDesks: 1 });
  try {
    const occupant = (await register(relay, identity(), 'occupant')) as Link;
    await assert.rejects(register(relay, identity(), 'squat'), { code: 'RATE_LIMITED' });
    assert.doesNotMatch(readFileSync(join(store, 'registry.json'), 'utf8'), /squat/);
    occupant.close();
    await occupant.closed;
    await new Promise((r) => setTimeout(r, 200));
    const later = (await register(relay, identity(), 'squat')) as Link;
    assert.equal(later.name, 'squat', 'the name was taken by the refused desk');
    later.close();
  } finally {
    await relay.close();
  }
});

test('a store the relay cannot write: the desk is told to come back later, without the path; the relay serves on', { timeout: 15_000 }, async () => {
  const { relay, store } = await relayWith();
  try {
    const key = identity();
    const first = (await register(relay, key, 'first')) as Link;
    // Another process replaces registry.json (same content): the relay refuses to overwrite it.
    const file = join(store, 'registry.json');
    writeFileSync(`${file}.other`, readFileSync(file));
    renameSync(`${file}.other`, file);
    await assert.rejects(register(relay, identity(), 'second'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'RATE_LIMITED');
      assert.doesNotMatch(err.message, /registry\.json|porthole-registry/);
      return true;
    });
    // The same desk reconnecting touches its lease (a write that fails now): it is answered
    // either way, and the relay — this process — lives on.
    first.close();
    const again = await register(relay, key, 'first').catch((e: Error & { code?: string }) => e);
    if (again instanceof Error) assert.equal((again as { code?: string }).code, 'RATE_LIMITED');
    else (again as Link).close();
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    await relay.close();
  }
});
