// The relay's registry: which subdomain belongs to which desk key, kept in one JSON file.
//
// Rules (the text of docs/relay-protocol.md, "Subdomain registry"):
// - A subdomain is bound to one desk, identified by its Ed25519 public key. A key holds
//   at most one name. The same key always gets the same name back: after a restart of the
//   desk or of the relay (the registry is on disk), whether or not it asks for it by name.
// - Claiming without a name returns the key's current name; else a name whose lease
//   expired while this key held it (most recent first); else a new random name.
// - Claiming a name: a live name of another key is refused (SUBDOMAIN_TAKEN); a name held
//   back for another key is refused (SUBDOMAIN_HELD, with the date it becomes free). A key
//   that already holds another name moves to the new one, and its old name is held back.
// - Lease: a name not seen for `leaseMs` (30 days by default) is released automatically.
//   "Seen" means claimed, or touched by the relay while the desk is connected (the relay
//   touches online desks periodically, so a desk online for months keeps its name).
// - Hold-back: a name released by `tunnel release`, by lease expiry or by a move is held
//   back for `holdMs` (90 days by default, DESIGN §6) from the moment it was released. During
//   that time only the key that held it may claim it again; visitors and bookmarks are never
//   sent to a new owner of a recently used name. The hold is computed from `releasedAt` and
//   the current `holdMs`, so changing the setting applies to names already held.
// - Lease expiry is applied on open, on every claim, and whenever the relay calls sweep().
//
// File `<dir>/registry.json`, mode 0600 in a 0700 directory, written atomically (temp +
// rename) on every change of ownership; `lastSeenAt` updates are written at most every
// SEEN_WRITE_INTERVAL_MS (losing a few minutes of it in a crash is harmless against a
// 30-day lease). Read strictly: a file that does not parse, has another version, or holds
// an invalid entry stops the relay (CONFIG_INVALID) rather than forget who owns which name.
// One relay process owns a store: a file replaced behind its back (another process, a hand
// edit) is refused at the next write instead of being overwritten.
//   { "version": 1,
//     "names": { "<name>": { "publicKey": "<base64url>", "createdAt": ms, "lastSeenAt": ms } },
//     "held":  { "<name>": { "publicKey": "<base64url>", "releasedAt": ms, "reason": "release"|"lease"|"moved" } } }
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PortholeError } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../util/fs.js';
import { randomSubdomain, subdomainSyntaxProblem, validateSubdomain } from './names.js';

const DAY = 24 * 60 * 60 * 1000;
export const DEFAULT_LEASE_MS = 30 * DAY;
export const DEFAULT_HOLD_MS = 90 * DAY;
/** How often touches alone cause a write. */
export const SEEN_WRITE_INTERVAL_MS = 5 * 60 * 1000;
export const REGISTRY_FILE = 'registry.json';

export interface RegistryOptions {
  /** Directory for registry.json (created 0700; the file is 0600). Required. */
  dir: string;
  /** A name not seen this long is released automatically. Default 30 days. */
  leaseMs?: number;
  /** A released name is held back this long before another key may take it. Default 90 days. */
  holdMs?: number;
  /** Clock in ms since the epoch. Default Date.now. */
  now?: () => number;
}

export interface Registration {
  name: string;
  /** base64url (no padding) of the raw 32-byte Ed25519 public key. */
  publicKey: string;
  createdAt: number;
  lastSeenAt: number;
}

export type ReleaseReason = 'release' | 'lease' | 'moved';

interface Held {
  publicKey: string;
  releasedAt: number;
  reason: ReleaseReason;
}

export interface Registry {
  /** Claim a name for a key (rules above). Throws SUBDOMAIN_INVALID/TAKEN/HELD, INVALID_ARGUMENT for a bad key. */
  claim(publicKey: string, requested?: string): Registration;
  /** Marks a name seen (its desk is online). Unknown names are ignored. */
  touch(name: string): void;
  /** Frees the key's name, which is then held back. Returns the name, or undefined if it had none. */
  release(publicKey: string): string | undefined;
  /** The live registration of a name (a copy), or undefined. */
  lookup(name: string): Registration | undefined;
  /** Applies lease expiry and ends finished holds; writes if anything changed. */
  sweep(): void;
  /** Writes touches not yet on disk (call on shutdown). */
  flush(): void;
  /** Number of live names (held names not counted). */
  readonly size: number;
  /** Path of the registry file. */
  readonly file: string;
}

/** Opens (or starts) the registry in `options.dir`; applies lease expiry at once. */
export function openRegistry(options: RegistryOptions): Registry {
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const holdMs = options.holdMs ?? DEFAULT_HOLD_MS;
  const clock = options.now ?? Date.now;
  // Whole milliseconds: the file stores integers and is read strictly.
  const now = () => Math.floor(clock());
  if (typeof options.dir !== 'string' || options.dir === '') throw badOption('dir must be a directory path');
  if (!(leaseMs > 0 && Number.isFinite(leaseMs))) throw badOption(`invalid leaseMs ${leaseMs}`);
  if (!(holdMs >= 0 && Number.isFinite(holdMs))) throw badOption(`invalid holdMs ${holdMs}`);

  ensureDir(options.dir, 0o700);
  const file = join(options.dir, REGISTRY_FILE);
  const loaded = readRegistryFile(file);
  let names = loaded.names;
  let held = loaded.held;
  let byKey = indexByKey(names);
  let onDisk = fileIdentity(file);
  let lastWriteAt = now();
  let unsavedSeen = false;

  function save(): void {
    // Refuse to overwrite a file that is not the one we read or last wrote.
    if (fileIdentity(file) !== onDisk) {
      throw new PortholeError(
        'CONFIG_INVALID',
        `${file} was replaced by another process since this relay loaded it. A registry store ` +
          'belongs to one relay process; restart the relay to load the file as it is now.',
      );
    }
    const data = { version: 1, names: Object.fromEntries(names), held: Object.fromEntries(held) };
    writeFileAtomic(file, JSON.stringify(data, null, 1) + '\n', { mode: 0o600, dirMode: 0o700 });
    onDisk = fileIdentity(file);
    lastWriteAt = now();
    unsavedSeen = false;
  }

  /**
   * Runs `change` on copies of the maps and keeps them only once they are on disk; if
   * `change` returns false nothing changed and the copies are dropped unwritten.
   */
  function transact<T>(change: () => T): T {
    const before = { names, held, byKey };
    names = new Map(names);
    held = new Map(held);
    byKey = new Map(byKey);
    try {
      const result = change();
      if (result === false) ({ names, held, byKey } = before);
      else save();
      return result;
    } catch (err) {
      ({ names, held, byKey } = before);
      throw err;
    }
  }

  function sweepAt(t: number): void {
    transact(() => expire(t));
  }

  function releaseName(name: string, reason: ReleaseReason, at: number): void {
    const reg = names.get(name);
    if (reg === undefined) return;
    names.delete(name);
    byKey.delete(reg.publicKey);
    held.set(name, { publicKey: reg.publicKey, releasedAt: at, reason });
  }

  /** Expired leases → held; finished holds → gone. Mutates the current maps; true if any change. */
  function expire(t: number): boolean {
    let changed = false;
    for (const [name, reg] of names) {
      // Held from now, not from lastSeenAt + leaseMs: the name stopped resolving only now
      // (e.g. the relay itself was down), and a longer hold is the safe side.
      if (t - reg.lastSeenAt >= leaseMs) {
        releaseName(name, 'lease', t);
        changed = true;
      }
    }
    for (const [name, h] of held) {
      if (t - h.releasedAt >= holdMs) {
        held.delete(name);
        changed = true;
      }
    }
    return changed;
  }

  function newRandomName(): string {
    for (let i = 0; i < 100; i++) {
      const name = randomSubdomain();
      if (!names.has(name) && !held.has(name)) return name;
    }
    throw new PortholeError('INTERNAL', 'could not find a free random subdomain');
  }

  function create(name: string, publicKey: string, t: number): Registration {
    const reg: Registration = { name, publicKey, createdAt: t, lastSeenAt: t };
    names.set(name, { publicKey, createdAt: t, lastSeenAt: t });
    byKey.set(publicKey, name);
    return reg;
  }

  function claim(publicKey: string, requested?: string): Registration {
    validatePublicKey(publicKey);
    const wanted = requested === undefined ? undefined : validateSubdomain(requested);
    const t = now();
    sweepAt(t);
    const current = byKey.get(publicKey);

    if (wanted === undefined || wanted === current) {
      if (current !== undefined) {
        // Already its name: nothing changes hands, so only the throttled "seen" write.
        touch(current);
        return registrationOf(current)!;
      }
      return transact(() => {
        const back = leaseExpiredNameOf(publicKey);
        if (back !== undefined) held.delete(back);
        return create(back ?? newRandomName(), publicKey, t);
      });
    }

    const owner = names.get(wanted);
    if (owner !== undefined) {
      throw new PortholeError('SUBDOMAIN_TAKEN', `Subdomain "${wanted}" is registered to another desk.`);
    }
    const h = held.get(wanted);
    if (h !== undefined && h.publicKey !== publicKey) {
      const until = new Date(h.releasedAt + holdMs).toISOString();
      throw new PortholeError(
        'SUBDOMAIN_HELD',
        `Subdomain "${wanted}" was in use recently and is held back until ${until}, ` +
          'so its visitors are not sent to a new owner.',
      );
    }
    return transact(() => {
      if (current !== undefined) releaseName(current, 'moved', t);
      held.delete(wanted);
      return create(wanted, publicKey, t);
    });
  }

  /** The most recently lease-expired name this key held, if still held back for it. */
  function leaseExpiredNameOf(publicKey: string): string | undefined {
    let best: [string, number] | undefined;
    for (const [name, h] of held) {
      if (h.publicKey === publicKey && h.reason === 'lease' && (best === undefined || h.releasedAt > best[1])) {
        best = [name, h.releasedAt];
      }
    }
    return best?.[0];
  }

  function touch(name: string): void {
    const entry = names.get(name.toLowerCase());
    if (entry === undefined) return;
    const t = now();
    if (t > entry.lastSeenAt) {
      entry.lastSeenAt = t;
      unsavedSeen = true;
    }
    if (unsavedSeen && t - lastWriteAt >= SEEN_WRITE_INTERVAL_MS) save();
  }

  function registrationOf(name: string): Registration | undefined {
    const entry = names.get(name);
    return entry === undefined ? undefined : { name, ...entry };
  }

  const registry: Registry = {
    claim,
    touch,
    release(publicKey) {
      validatePublicKey(publicKey);
      const name = byKey.get(publicKey);
      if (name === undefined) return undefined;
      transact(() => {
        releaseName(name, 'release', now());
      });
      return name;
    },
    lookup: (name) => registrationOf(name.toLowerCase()),
    sweep: () => sweepAt(now()),
    flush() {
      if (unsavedSeen) save();
    },
    get size() {
      return names.size;
    },
    file,
  };
  registry.sweep();
  return registry;
}

type Entry = Omit<Registration, 'name'>;

/** Canonical unpadded base64url of exactly 32 bytes (a raw Ed25519 public key, RFC 8032 §5.1.5). */
export function isPublicKey(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    /^[A-Za-z0-9_-]{43}$/.test(value) &&
    Buffer.from(value, 'base64url').toString('base64url') === value
  );
}

function validatePublicKey(publicKey: string): void {
  if (!isPublicKey(publicKey)) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      'invalid desk public key: expected 32 bytes of raw Ed25519 key, base64url without padding',
    );
  }
}

function badOption(problem: string): PortholeError {
  return new PortholeError('INVALID_ARGUMENT', `openRegistry: ${problem}`);
}

/** "ino:size:mtime" of the file, or "" if absent: tells whether someone replaced it. */
function fileIdentity(file: string): string {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

function indexByKey(names: Map<string, Entry>): Map<string, string> {
  const byKey = new Map<string, string>();
  for (const [name, e] of names) byKey.set(e.publicKey, name);
  return byKey;
}

interface Loaded {
  names: Map<string, Entry>;
  held: Map<string, Held>;
}

/** Strict parse of registry.json; every problem is reported (CONFIG_INVALID with details). */
function readRegistryFile(file: string): Loaded {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { names: new Map(), held: new Map() };
    throw corrupt(file, [`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`], err);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw corrupt(file, ['is not valid JSON'], err);
  }
  if (!isObject(value)) throw corrupt(file, ['is not a JSON object']);
  if (value['version'] !== 1) {
    throw corrupt(file, [`has version ${JSON.stringify(value['version'])}; this porthole reads version 1`]);
  }
  const problems: string[] = [];
  const extra = Object.keys(value).filter((k) => !['version', 'names', 'held'].includes(k));
  if (extra.length > 0) problems.push(`unknown top-level key(s): ${extra.join(', ')}`);

  const names = new Map<string, Entry>();
  const held = new Map<string, Held>();
  const owners = new Map<string, string>();
  for (const [name, raw] of entriesOf(value['names'], 'names', problems)) {
    const where = `names.${name}`;
    const p = checkEntry(raw, where, { createdAt: 'time', lastSeenAt: 'time' }, problems);
    if (subdomainSyntaxProblem(name) !== undefined) problems.push(`${where}: not a valid subdomain`);
    if (p === undefined) continue;
    const other = owners.get(p.publicKey);
    if (other !== undefined) problems.push(`${where}: the same publicKey also holds "${other}" (one name per key)`);
    owners.set(p.publicKey, name);
    names.set(name, { publicKey: p.publicKey, createdAt: p['createdAt'] as number, lastSeenAt: p['lastSeenAt'] as number });
  }
  for (const [name, raw] of entriesOf(value['held'], 'held', problems)) {
    const where = `held.${name}`;
    const p = checkEntry(raw, where, { releasedAt: 'time', reason: 'reason' }, problems);
    if (subdomainSyntaxProblem(name) !== undefined) problems.push(`${where}: not a valid subdomain`);
    if (names.has(name)) problems.push(`${where}: the name is also in "names"`);
    if (p === undefined) continue;
    held.set(name, { publicKey: p.publicKey, releasedAt: p['releasedAt'] as number, reason: p['reason'] as ReleaseReason });
  }
  if (problems.length > 0) throw corrupt(file, problems);
  return { names, held };
}

function entriesOf(value: unknown, key: string, problems: string[]): [string, unknown][] {
  if (!isObject(value)) {
    problems.push(`"${key}" is missing or not an object`);
    return [];
  }
  return Object.entries(value);
}

type FieldKind = 'time' | 'reason';

function checkEntry(
  raw: unknown,
  where: string,
  fields: Record<string, FieldKind>,
  problems: string[],
): ({ publicKey: string } & Record<string, unknown>) | undefined {
  if (!isObject(raw)) {
    problems.push(`${where}: not an object`);
    return undefined;
  }
  const before = problems.length;
  if (!isPublicKey(raw['publicKey'])) problems.push(`${where}.publicKey: not a base64url Ed25519 public key`);
  for (const [field, kind] of Object.entries(fields)) {
    const v = raw[field];
    const ok =
      kind === 'time' ? Number.isSafeInteger(v) && (v as number) >= 0 : v === 'release' || v === 'lease' || v === 'moved';
    if (!ok) problems.push(`${where}.${field}: ${kind === 'time' ? 'not a time in ms' : 'not release, lease or moved'}`);
  }
  for (const k of Object.keys(raw)) {
    if (k !== 'publicKey' && !(k in fields)) problems.push(`${where}: unknown key "${k}"`);
  }
  return problems.length === before ? (raw as { publicKey: string } & Record<string, unknown>) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function corrupt(file: string, problems: string[], cause?: unknown): PortholeError {
  const n = problems.length;
  return new PortholeError(
    'CONFIG_INVALID',
    `Relay registry ${file} ${n === 1 ? problems[0] : `has ${n} problems: ${problems[0]}; …`}. ` +
      'The relay will not start without it, so as not to forget which desk owns which name: ' +
      'restore it from a backup or fix the entries listed.',
    { cause, details: problems },
  );
}
