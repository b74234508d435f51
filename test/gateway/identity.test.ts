// Tests for src/gateway/identity.ts: the signed X-Porthole-Identity header an app may
// verify (DESIGN §3.5). Anything forged, altered, replayed late or unsigned is refused.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createIdentitySigner, type Identity, formatIdentity, verifyIdentity } from '../../src/gateway/identity.js';

const KEY = randomBytes(32);
const NOW = 1_732_345_678;
const ID: Identity = { sub: 'owner', cred: 'token', scope: 'admin', ingress: 'direct' };

test('format: the documented layout, signed over everything before "; sig="', () => {
  const header = formatIdentity(ID, KEY, NOW);
  const body = `v=1; sub=owner; cred=token; scope=admin; ingress=direct; ts=${NOW}`;
  const sig = createHmac('sha256', KEY).update(body).digest('base64url');
  assert.equal(header, `${body}; sig=${sig}`);
  assert.equal(formatIdentity(ID, undefined, NOW), body, 'no key: unsigned');
});

test('round trip, for every scope and an awkward subject', () => {
  const identities: Identity[] = [
    ID,
    { sub: 'local', cred: 'local', scope: 'admin', ingress: 'local' },
    { sub: 'anonymous', cred: 'public', scope: 'none', ingress: 'tunnel' },
    { sub: 'device:phone', cred: 'session', scope: 'read', ingress: 'trusted-proxy' },
    { sub: 'ünïcødé; sig=AAAA; scope=admin = x', cred: 'session', scope: 'read', ingress: 'tailscale' },
  ];
  for (const id of identities) {
    const header = formatIdentity(id, KEY, NOW);
    assert.deepEqual(verifyIdentity(header, KEY, 60, NOW), { ...id, ts: NOW }, header);
  }
});

test('age: accepted within maxAgeSeconds either way, refused beyond', () => {
  const header = formatIdentity(ID, KEY, NOW);
  const cases: [number, number, boolean][] = [
    // [now, maxAge, accepted]
    [NOW, 60, true],
    [NOW + 60, 60, true],
    [NOW + 61, 60, false], // replayed late
    [NOW - 60, 60, true],
    [NOW - 61, 60, false], // from the future
    [NOW + 3600, 60, false],
    [NOW + 5, 5, true],
    [NOW + 6, 5, false],
    [NOW + 1, 0, false],
  ];
  for (const [now, maxAge, ok] of cases) {
    assert.equal(verifyIdentity(header, KEY, maxAge, now) !== undefined, ok, `now=${now - NOW} maxAge=${maxAge}`);
  }
  // The default window is 60 s around the real clock.
  const fresh = formatIdentity(ID, KEY);
  assert.ok(verifyIdentity(fresh, KEY));
  assert.equal(verifyIdentity(formatIdentity(ID, KEY, Math.floor(Date.now() / 1000) - 120), KEY), undefined);
});

test('tampering with any field invalidates the signature', () => {
  const header = formatIdentity({ sub: 'device:phone', cred: 'session', scope: 'read', ingress: 'direct' }, KEY, NOW);
  const tampered = [
    header.replace('scope=read', 'scope=admin'),
    header.replace('sub=device%3Aphone', 'sub=owner'),
    header.replace('cred=session', 'cred=token'),
    header.replace('ingress=direct', 'ingress=local'),
    header.replace(`ts=${NOW}`, `ts=${NOW + 1}`),
    header.replace('v=1', 'v=2'),
    header.replace('; sig=', '; scope=admin; sig='),
    `x${header}`,
    `${header}A`,
    header.slice(0, -1),
    header.replace(/sig=(.)/, (_m, ch: string) => `sig=${ch === 'A' ? 'B' : 'A'}`),
  ];
  for (const value of tampered) {
    assert.notEqual(value, header);
    assert.equal(verifyIdentity(value, KEY, 60, NOW), undefined, value);
  }
  assert.ok(verifyIdentity(header, KEY, 60, NOW));
});

test('a header signed with another key is refused', () => {
  const forged = formatIdentity(ID, randomBytes(32), NOW);
  assert.equal(verifyIdentity(forged, KEY, 60, NOW), undefined);
  // Also a key differing only in its last byte.
  const near = Buffer.from(KEY);
  near[near.length - 1] = near[near.length - 1]! ^ 1;
  assert.equal(verifyIdentity(formatIdentity(ID, near, NOW), KEY, 60, NOW), undefined);
});

test('missing, empty or unsigned headers are refused', () => {
  const body = formatIdentity(ID, undefined, NOW);
  const cases: (string | undefined)[] = [
    undefined,
    '',
    body,
    `${body}; sig=`,
    `${body}; sig`,
    `${body};sig=${createHmac('sha256', KEY).update(body).digest('base64url')}`,
    'sig=abc',
    'garbage',
  ];
  for (const value of cases) assert.equal(verifyIdentity(value, KEY, 60, NOW), undefined, String(value));
});

test('a correctly signed header with a missing or bad version or timestamp is refused', () => {
  const sign = (body: string) => `${body}; sig=${createHmac('sha256', KEY).update(body).digest('base64url')}`;
  const bodies = [
    'sub=owner; cred=token; scope=admin; ingress=direct', // no v, no ts
    `sub=owner; cred=token; scope=admin; ingress=direct; ts=${NOW}`, // no v
    'v=1; sub=owner; cred=token; scope=admin; ingress=direct', // no ts
    'v=1; sub=owner; cred=token; scope=admin; ingress=direct; ts=soon',
    'v=1; sub=owner; cred=token; scope=admin; ingress=direct; ts=Infinity',
    `v=2; sub=owner; cred=token; scope=admin; ingress=direct; ts=${NOW}`,
  ];
  for (const body of bodies) assert.equal(verifyIdentity(sign(body), KEY, 60, NOW), undefined, body);
  // An unknown scope is reported as none, never as more.
  const odd = verifyIdentity(sign(`v=1; sub=owner; cred=token; scope=root; ingress=direct; ts=${NOW}`), KEY, 60, NOW);
  assert.equal(odd?.scope, 'none');
});

test('createIdentitySigner: verifiable headers, one per identity, never shared between identities', () => {
  const key = randomBytes(32);
  const sign = createIdentitySigner(key);
  const owner = { sub: 'owner', cred: 'token', scope: 'admin', ingress: 'direct' } as const;
  const local = { sub: 'local', cred: 'local', scope: 'admin', ingress: 'local' } as const;
  const a = sign(owner);
  assert.equal(verifyIdentity(a, key)?.sub, 'owner');
  assert.equal(verifyIdentity(sign(local), key)?.sub, 'local');
  // A sub that mimics another identity's fields never collides with it.
  const tricky = sign({ sub: 'owner\ntoken\nadmin\ndirect', cred: 'token', scope: 'admin', ingress: 'direct' });
  assert.notEqual(tricky, a);
  assert.equal(verifyIdentity(tricky, key)?.sub, 'owner\ntoken\nadmin\ndirect');
  // Many identities: the memo stays bounded and every header still verifies.
  for (let i = 0; i < 500; i++) assert.equal(verifyIdentity(sign({ ...owner, sub: `u${i}` }), key)?.sub, `u${i}`);
});
