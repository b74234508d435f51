// devices.json read back fails closed (review D): a record whose fields are not what porthole
// writes (hand-edited, damaged, from another version) never yields an active device — an
// unknown status, a non-numeric expiry or an unknown scope must not read as "active, never
// expires, admin".
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createDeviceStore } from '../../src/pairing/devices.js';

const dir = mkdtempSync(join(tmpdir(), 'porthole-devices-integrity-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('records with fields porthole never writes are not active', () => {
  const file = join(dir, 'devices.json');
  // A real store writes one good device, with a token; its record is the template.
  const first = createDeviceStore({ file });
  const good = first.create({ name: 'good', kind: 'sdk', scope: 'read', expiresAt: Date.now() + 3600_000, pending: false, withToken: true });
  const template = JSON.parse(readFileSync(file, 'utf8')).devices[good.device.id];
  const tokens: Record<string, string> = {};
  const damaged: Record<string, Record<string, unknown>> = {
    status_unknown: { status: 'disabled' },
    status_missing: { status: undefined },
    expiry_string: { expiresAt: '2001-01-01T00:00:00Z' },
    expiry_missing: { expiresAt: undefined },
    scope_unknown: { scope: 'root' },
    kind_unknown: { kind: 'robot' },
  };
  const devices: Record<string, unknown> = { [good.device.id]: template };
  let n = 0;
  for (const [label, patch] of Object.entries(damaged)) {
    // Each damaged record gets a token of its own, minted by a throwaway store.
    const t = createDeviceStore().create({ name: label, kind: 'sdk', scope: 'admin', expiresAt: null, pending: false, withToken: true });
    const id = (0xabc000 + n++).toString(16).padStart(16, '0');
    tokens[label] = t.token!;
    devices[id] = { ...template, ...t.device, id, name: label, ...patch };
  }
  writeFileSync(file, JSON.stringify({ version: 1, devices }), { mode: 0o600 });

  const store = createDeviceStore({ file });
  assert.equal(store.checkToken(good.token!).status, 'active', 'a good record still loads');
  for (const [label, token] of Object.entries(tokens)) {
    const s = store.checkToken(token).status;
    assert.notEqual(s, 'active', `${label}: ${s}`);
    assert.notEqual(s, 'pending', `${label}: ${s}`);
  }
  assert.deepEqual(
    store.list().map((d) => d.name),
    ['good'],
    'damaged records are not listed as paired devices',
  );
});
