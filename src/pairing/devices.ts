// Paired devices (docs/pairing.md): `$PORTHOLE_HOME/devices.json`, 0600, written atomically.
// A device's bearer token (`phd_` + 256 bits) is stored only as its SHA-256 digest; an SDK
// device may also register an Ed25519 public key, so the control plane can authenticate it
// by signature. Credential id for sessions and the connection tracker: `device:<id>`.
import { createPublicKey, randomBytes, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { PortholeError } from '../errors.js';
import { digestHex } from '../secrets/token.js';
import { readSecretFile, writeFileAtomic } from '../util/fs.js';

export const DEVICE_TOKEN_PREFIX = 'phd_';
export const DEVICE_CREDENTIAL_PREFIX = 'device:';
/** How long a revoked device's token is still recognised as revoked (401 AUTH_REVOKED, not a guess). */
const REVOKED_KEPT_MS = 90 * 24 * 3600_000;
const TOUCH_PERSIST_MS = 60_000;
export const MAX_DEVICES = 1000;
export const MAX_DEVICE_NAME = 64;

export type DeviceKind = 'browser' | 'sdk';
export type DeviceStatus = 'active' | 'pending' | 'revoked';

export interface DeviceRecord {
  id: string;
  name: string;
  kind: DeviceKind;
  scope: 'admin' | 'read';
  status: DeviceStatus;
  createdAt: number;
  /** ms since epoch; null: never. */
  expiresAt: number | null;
  lastUsedAt: number | null;
  /** SHA-256 of the bearer token, hex (SDK devices). */
  tokenDigest?: string;
  /** Ed25519 SubjectPublicKeyInfo, DER, base64url (SDK devices that sent one). */
  publicKey?: string;
  /** The credential whose pairing code made it (`token:…`, `device:…`). */
  pairedBy?: string;
  revokedAt?: number;
}

/** What the API shows: never the digest. */
export interface DeviceView {
  id: string;
  name: string;
  kind: DeviceKind;
  scope: 'admin' | 'read';
  status: DeviceStatus;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  hasKey: boolean;
}

export function viewDevice(d: DeviceRecord): DeviceView {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: d.id,
    name: d.name,
    kind: d.kind,
    scope: d.scope,
    status: d.status,
    createdAt: new Date(d.createdAt).toISOString(),
    expiresAt: iso(d.expiresAt),
    lastUsedAt: iso(d.lastUsedAt),
    hasKey: d.publicKey !== undefined,
  };
}

/** A device credential's state, for the pipeline and the control plane. */
export type DeviceCheck =
  | { status: 'active'; device: DeviceRecord }
  | { status: 'pending'; device: DeviceRecord }
  | { status: 'revoked' | 'expired'; device: DeviceRecord }
  | { status: 'unknown' };

export interface NewDevice {
  name: string;
  kind: DeviceKind;
  scope: 'admin' | 'read';
  expiresAt: number | null;
  pending: boolean;
  /** Issue a bearer token (SDK devices). */
  withToken: boolean;
  publicKey?: string;
  pairedBy?: string;
}

export interface DeviceStore {
  create(d: NewDevice): { device: DeviceRecord; token: string | undefined };
  get(id: string): DeviceRecord | undefined;
  /** Every device that is not revoked, oldest first. */
  list(): DeviceRecord[];
  /** By bearer token (`phd_…`); touches lastUsedAt when active. */
  checkToken(token: string): DeviceCheck;
  /** By credential id (`device:<id>`); touches lastUsedAt when active. */
  checkCredential(credential: string): DeviceCheck;
  /** Whether sessions of this credential may live on (active or pending, not expired). */
  isCredentialValid(credential: string): boolean;
  approve(id: string): DeviceRecord;
  revoke(id: string): DeviceRecord;
  /** Verifies an Ed25519 signature by the device's registered key. */
  verifySignature(id: string, message: Buffer, signature: Buffer): DeviceCheck;
  flush(): void;
}

export interface DeviceStoreOptions {
  /** devices.json; omit for memory only. */
  file?: string;
  now?: () => number;
}

/** A registered public key: Ed25519 SPKI DER, base64url. Throws BAD_REQUEST otherwise. */
export function parseDevicePublicKey(value: unknown): { spki: string; key: KeyObject } {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256 || !/^[A-Za-z0-9_-]+$/.test(value)) {
    throw new PortholeError('BAD_REQUEST', 'publicKey must be an Ed25519 SubjectPublicKeyInfo (DER), base64url');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(value, 'base64url'), format: 'der', type: 'spki' });
  } catch {
    throw new PortholeError('BAD_REQUEST', 'publicKey is not a DER SubjectPublicKeyInfo');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new PortholeError('BAD_REQUEST', 'publicKey must be an Ed25519 key');
  // Canonical form: what we store is what we exported, not what was sent.
  return { spki: key.export({ format: 'der', type: 'spki' }).toString('base64url'), key };
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Whether a record read from devices.json has exactly the shapes porthole writes. */
export function isDeviceRecord(v: unknown): v is DeviceRecord {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  if (typeof d['id'] !== 'string' || !/^[a-f0-9]{16}$/.test(d['id'])) return false;
  if (typeof d['name'] !== 'string' || d['name'].length === 0 || d['name'].length > MAX_DEVICE_NAME) return false;
  if (d['kind'] !== 'browser' && d['kind'] !== 'sdk') return false;
  if (d['scope'] !== 'admin' && d['scope'] !== 'read') return false;
  if (d['status'] !== 'active' && d['status'] !== 'pending' && d['status'] !== 'revoked') return false;
  if (!isTime(d['createdAt'])) return false;
  if (d['expiresAt'] !== null && !isTime(d['expiresAt'])) return false;
  if (d['lastUsedAt'] !== null && !isTime(d['lastUsedAt'])) return false;
  if (d['tokenDigest'] !== undefined && (typeof d['tokenDigest'] !== 'string' || !/^[a-f0-9]{64}$/.test(d['tokenDigest']))) return false;
  if (d['publicKey'] !== undefined && typeof d['publicKey'] !== 'string') return false;
  if (d['pairedBy'] !== undefined && typeof d['pairedBy'] !== 'string') return false;
  if (d['revokedAt'] !== undefined && !isTime(d['revokedAt'])) return false;
  return true;
}

export function newDeviceToken(): string {
  return DEVICE_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function createDeviceStore(options: DeviceStoreOptions = {}): DeviceStore {
  const now = options.now ?? Date.now;
  const byId = new Map<string, DeviceRecord>();
  const byDigest = new Map<string, DeviceRecord>();
  const keys = new Map<string, KeyObject>();
  let dirty = false;
  let lastPersist = 0;

  if (options.file) {
    // An insecure file (others could read or plant devices) refuses the start: SECRET_FILE_INSECURE says how to fix it.
    const text = readSecretFile(options.file);
    if (text !== undefined && text.trim() !== '') {
      let parsed: { devices?: Record<string, DeviceRecord> };
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        throw new PortholeError(
          'SECRET_FILE_UNREADABLE',
          `${options.file} is not valid JSON. Move it aside to start (every device must then pair again).`,
        );
      }
      for (const d of Object.values(parsed.devices ?? {})) {
        // Fail closed: a record porthole would not have written (hand-edited, damaged) is
        // left out — its device is unknown, so it must pair again — never read as active.
        if (isDeviceRecord(d)) index(d);
      }
    }
  }

  function index(d: DeviceRecord): void {
    byId.set(d.id, d);
    if (d.tokenDigest) byDigest.set(d.tokenDigest, d);
    if (d.publicKey) {
      try {
        keys.set(d.id, createPublicKey({ key: Buffer.from(d.publicKey, 'base64url'), format: 'der', type: 'spki' }));
      } catch {
        // A damaged key only disables signatures for that device.
      }
    }
  }

  function persist(force: boolean): void {
    if (!options.file || (!force && !dirty)) return;
    const t = now();
    if (!force && t - lastPersist < TOUCH_PERSIST_MS) return;
    const devices: Record<string, DeviceRecord> = {};
    for (const [id, d] of byId) {
      if (d.status === 'revoked' && (d.revokedAt ?? 0) + REVOKED_KEPT_MS < t) continue;
      devices[id] = d;
    }
    writeFileAtomic(options.file, `${JSON.stringify({ version: 1, devices }, null, 1)}\n`, { mode: 0o600 });
    dirty = false;
    lastPersist = t;
  }

  function state(d: DeviceRecord | undefined, touch: boolean): DeviceCheck {
    if (!d) return { status: 'unknown' };
    if (d.status === 'revoked') return { status: 'revoked', device: d };
    const t = now();
    if (d.expiresAt !== null && d.expiresAt <= t) return { status: 'expired', device: d };
    if (d.status === 'pending') return { status: 'pending', device: d };
    if (touch) {
      d.lastUsedAt = t;
      dirty = true;
      persist(false);
    }
    return { status: 'active', device: d };
  }

  function mustGet(id: string): DeviceRecord {
    const d = typeof id === 'string' ? byId.get(id) : undefined;
    if (!d || d.status === 'revoked') throw new PortholeError('DEVICE_NOT_FOUND', `no paired device "${String(id).slice(0, 64)}"`);
    return d;
  }

  const idOf = (credential: string) =>
    credential.startsWith(DEVICE_CREDENTIAL_PREFIX) ? credential.slice(DEVICE_CREDENTIAL_PREFIX.length) : undefined;

  return {
    create(n) {
      let live = 0;
      for (const d of byId.values()) if (d.status !== 'revoked') live++;
      if (live >= MAX_DEVICES) {
        throw new PortholeError('DEVICE_LIMIT', `${MAX_DEVICES} devices are paired already: revoke some first (porthole devices list)`);
      }
      let id = randomBytes(8).toString('hex');
      while (byId.has(id)) id = randomBytes(8).toString('hex');
      const token = n.withToken ? newDeviceToken() : undefined;
      const d: DeviceRecord = {
        id,
        name: n.name,
        kind: n.kind,
        scope: n.scope,
        status: n.pending ? 'pending' : 'active',
        createdAt: now(),
        expiresAt: n.expiresAt,
        lastUsedAt: null,
      };
      if (token) d.tokenDigest = digestHex(token);
      if (n.publicKey) d.publicKey = n.publicKey;
      if (n.pairedBy) d.pairedBy = n.pairedBy;
      index(d);
      persist(true);
      return { device: d, token };
    },
    get: (id) => byId.get(id),
    list: () => [...byId.values()].filter((d) => d.status !== 'revoked').sort((a, b) => a.createdAt - b.createdAt),
    checkToken(token) {
      if (typeof token !== 'string' || !token.startsWith(DEVICE_TOKEN_PREFIX) || token.length > 256) return { status: 'unknown' };
      const want = digestHex(token);
      const d = byDigest.get(want);
      // The map is keyed by the digest; comparing digests again in constant time costs little.
      if (!d?.tokenDigest || !timingSafeEqual(Buffer.from(d.tokenDigest, 'hex'), Buffer.from(want, 'hex'))) return { status: 'unknown' };
      return state(d, true);
    },
    checkCredential(credential) {
      const id = idOf(credential);
      return state(id === undefined ? undefined : byId.get(id), true);
    },
    isCredentialValid(credential) {
      const id = idOf(credential);
      const s = state(id === undefined ? undefined : byId.get(id), false).status;
      return s === 'active' || s === 'pending';
    },
    approve(id) {
      const d = mustGet(id);
      if (d.status === 'pending') {
        d.status = 'active';
        persist(true);
      }
      return d;
    },
    revoke(id) {
      const d = mustGet(id);
      d.status = 'revoked';
      d.revokedAt = now();
      keys.delete(d.id);
      // Revoked in memory first (fail closed); dirty, so a failed write is retried by the next one.
      dirty = true;
      persist(true);
      return d;
    },
    verifySignature(id, message, signature) {
      const d = typeof id === 'string' ? byId.get(id) : undefined;
      const key = d ? keys.get(d.id) : undefined;
      if (!d || !key || signature.length !== 64) return { status: 'unknown' };
      let good = false;
      try {
        good = verify(null, message, key, signature);
      } catch {
        good = false;
      }
      if (!good) return { status: 'unknown' };
      return state(d, true);
    },
    flush() {
      persist(true);
    },
  };
}
