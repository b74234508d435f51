// The freedesktop Secret Service (GNOME Keyring, KeePassXC, KWallet) as a keyring backend,
// driven through two stock tools: `gdbus` (libglib2.0-bin) asks the service about its
// collections, `secret-tool` (libsecret-tools) stores, looks up and clears items. The
// secret goes to `secret-tool store` on stdin and comes back from `lookup` on stdout: never
// in argv (readable by every local user) or the environment. No shell; every call is bounded
// by a timeout. Spec: https://specifications.freedesktop.org/secret-service-spec/latest/
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { type KeyringBackend, type KeyringProbe, keyringUnavailable } from './keyring.js';
import { findTool, firstLine, KEYRING_TOOL_TIMEOUT_MS, pickEnv, runTool, type ToolResult } from './tool.js';

const BUS_NAME = 'org.freedesktop.secrets';
const SERVICE_PATH = '/org/freedesktop/secrets';
/**
 * GNOME Keyring's in-memory collection: it is forgotten when the daemon stops, so a token
 * kept there would be lost on reboot. The Secret Service API has no "persistent" property;
 * every other collection of the known implementations is stored on disk.
 */
const SESSION_COLLECTION = '/org/freedesktop/secrets/collection/session';
/** Every item porthole stores carries service=porthole, home=<realpath of the home>, name=<secret>. */
const SERVICE_ATTRIBUTE = 'porthole';

export interface SecretServiceOptions {
  /** Where the session bus is: DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus. Also PATH. */
  env: Record<string, string | undefined>;
  /** Default KEYRING_TOOL_TIMEOUT_MS (5 s). */
  timeoutMs?: number;
}

const INSTALL_HINT: Record<string, string> = {
  gdbus: 'gdbus is not installed (Debian/Ubuntu: libglib2.0-bin)',
  'secret-tool': 'secret-tool is not installed (Debian/Ubuntu: libsecret-tools)',
};

export function createSecretServiceBackend(options: SecretServiceOptions): KeyringBackend {
  const timeoutMs = options.timeoutMs ?? KEYRING_TOOL_TIMEOUT_MS;
  const bus = sessionBus(options.env);
  /** The collection a successful probe found; items must live there. */
  let collection: string | undefined;

  /**
   * The child gets only what it needs: PATH, the bus address, a fixed locale for parsable
   * output, and no DISPLAY, so GDBus never autolaunches a bus of its own.
   */
  const childEnv = (address: string): Record<string, string> => ({
    ...pickEnv(options.env, ['PATH', 'HOME', 'XDG_RUNTIME_DIR']),
    DBUS_SESSION_BUS_ADDRESS: address,
    LC_ALL: 'C',
  });

  const run = (file: string, args: string[], input = ''): ToolResult => {
    if (bus.address === undefined) return { ok: false, status: null, stdout: '', stderr: '', failure: bus.problem };
    return runTool(file, args, { env: childEnv(bus.address), timeoutMs, input, missing: INSTALL_HINT[file] ?? `${file} is not installed` });
  };

  /** `gdbus call` on the Secret Service; the GVariant text it prints, or a reason it failed. */
  const call = (objectPath: string, method: string, ...args: string[]): { out: string } | { problem: string } => {
    const r = run('gdbus', ['call', '--session', '--dest', BUS_NAME, '--object-path', objectPath, '--method', method, ...args]);
    if (r.ok) return { out: r.stdout.trim() };
    return { problem: r.failure ?? (firstLine(r.stderr) || `gdbus exited with ${r.status}`) };
  };

  const probe = (): KeyringProbe => {
    collection = undefined;
    if (bus.address === undefined) return { ok: false, reason: bus.problem };
    if (!findTool('secret-tool', options.env)) return { ok: false, reason: INSTALL_HINT['secret-tool']! };
    if (!findTool('gdbus', options.env)) return { ok: false, reason: INSTALL_HINT['gdbus']! };
    // Ask the bus who owns the name first: a plain call would D-Bus-activate a keyring
    // daemon, which on a headless host starts with a locked or missing login keyring.
    const owner = run('gdbus', [
      'call', '--session', '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus',
      '--method', 'org.freedesktop.DBus.NameHasOwner', BUS_NAME,
    ]);
    if (!owner.ok) {
      return { ok: false, reason: `the D-Bus session bus does not answer: ${owner.failure ?? firstLine(owner.stderr)}` };
    }
    if (!/\btrue\b/.test(owner.stdout)) return { ok: false, reason: 'no Secret Service is running on the D-Bus session bus' };

    const alias = call(SERVICE_PATH, 'org.freedesktop.Secret.Service.ReadAlias', 'default');
    if ('problem' in alias) return { ok: false, reason: `the Secret Service did not name its default collection: ${alias.problem}` };
    const path = /objectpath '([^']*)'/.exec(alias.out)?.[1];
    if (path === undefined || path === '/') return { ok: false, reason: 'the Secret Service has no default collection' };
    if (path === SESSION_COLLECTION) {
      return { ok: false, reason: `the default collection is the in-memory session collection (${path}), which is forgotten on reboot` };
    }
    const locked = call(path, 'org.freedesktop.DBus.Properties.Get', 'org.freedesktop.Secret.Collection', 'Locked');
    if ('problem' in locked) return { ok: false, reason: `cannot tell whether ${path} is locked: ${locked.problem}` };
    if (/<false>/.test(locked.out)) {
      collection = path;
      return { ok: true, where: `Secret Service collection ${path}` };
    }
    return { ok: false, reason: /<true>/.test(locked.out) ? `the collection ${path} is locked` : `cannot tell whether ${path} is locked` };
  };

  /** Probes unless a probe already succeeded; throws KEYRING_UNAVAILABLE with the reason. */
  const ensure = (what: string): string => {
    if (collection !== undefined) return collection;
    const p = probe();
    if (!p.ok) throw keyringUnavailable(`Cannot ${what} in the OS keyring: ${p.reason}.`);
    return collection!;
  };

  const attrs = (home: string, name?: string): string[] => {
    const a = ['service', SERVICE_ATTRIBUTE, 'home', home];
    if (name !== undefined) a.push('name', name);
    return a;
  };

  const failed = (what: string, r: ToolResult): never => {
    collection = undefined;
    throw keyringUnavailable(`Cannot ${what} in the OS keyring: ${r.failure ?? (firstLine(r.stderr) || `secret-tool exited with ${r.status}`)}.`);
  };

  return {
    name: 'Secret Service',
    id: SECRET_SERVICE_BACKEND,
    probe,
    get(home, name) {
      ensure(`read the secret "${name}"`);
      const r = run('secret-tool', ['lookup', ...attrs(home, name)]);
      if (r.ok) return r.stdout;
      // Exit 1 and silence means "no such item" — or a locked collection, which libsecret
      // reports the same way. Look again before calling it absent.
      if (r.failure === undefined && r.status === 1 && r.stderr === '') {
        collection = undefined;
        ensure(`read the secret "${name}"`);
        return undefined;
      }
      return failed(`read the secret "${name}"`, r);
    },
    set(home, name, value) {
      const where = ensure(`store the secret "${name}"`);
      const label = `porthole ${name} (${home})`;
      const r = run('secret-tool', ['store', `--label=${label}`, ...attrs(home, name)], value);
      if (!r.ok) failed(`store the secret "${name}"`, r);
      // The item must have landed in the persistent collection checked above, not in
      // whatever the default alias points at by now.
      const found = search(call, home, name);
      if ('problem' in found) throw keyringUnavailable(`Cannot check the stored secret "${name}": ${found.problem}.`);
      if (found.unlocked.length === 0 || found.unlocked.some((p) => !p.startsWith(`${where}/`)) || found.locked.length > 0) {
        collection = undefined;
        throw keyringUnavailable(
          `The secret "${name}" was not stored in ${where} alone (the default collection changed, or copies exist elsewhere).`,
        );
      }
    },
    delete(home, name) {
      ensure(`delete the secret "${name}"`);
      const r = run('secret-tool', ['clear', ...attrs(home, name)]);
      if (r.ok) return;
      if (r.failure === undefined && r.status === 1 && r.stderr === '') {
        // Nothing matched, or the collection locked meanwhile: only the first is success.
        collection = undefined;
        ensure(`delete the secret "${name}"`);
        return;
      }
      failed(`delete the secret "${name}"`, r);
    },
    list(home) {
      ensure('list secrets');
      const found = search(call, home);
      if ('problem' in found) throw keyringUnavailable(`Cannot list porthole's secrets in the OS keyring: ${found.problem}.`);
      if (found.locked.length > 0) throw keyringUnavailable('Cannot list porthole\'s secrets in the OS keyring: some are in a locked collection.');
      const names = new Set<string>();
      for (const item of found.unlocked) {
        const a = call(item, 'org.freedesktop.DBus.Properties.Get', 'org.freedesktop.Secret.Item', 'Attributes');
        if ('problem' in a) throw keyringUnavailable(`Cannot read the attributes of ${item}: ${a.problem}.`);
        const name = /'name': '([a-z0-9-]+)'/.exec(a.out)?.[1];
        if (name !== undefined) names.add(name);
      }
      return [...names].sort();
    },
  };
}

/** The id recorded in state.json. */
export const SECRET_SERVICE_BACKEND = 'secret-service';

type Call = (objectPath: string, method: string, ...args: string[]) => { out: string } | { problem: string };

/** SearchItems for porthole's items of one home (and name): unlocked and locked item paths. */
function search(call: Call, home: string, name?: string): { unlocked: string[]; locked: string[] } | { problem: string } {
  const fields = [`'service': ${gvariantString(SERVICE_ATTRIBUTE)}`, `'home': ${gvariantString(home)}`];
  if (name !== undefined) fields.push(`'name': ${gvariantString(name)}`);
  const r = call(SERVICE_PATH, 'org.freedesktop.Secret.Service.SearchItems', `{${fields.join(', ')}}`);
  if ('problem' in r) return r;
  // "([objectpath '/a/1', …], @ao [])" or "([], [objectpath …])": two arrays of paths.
  const arrays = /^\((@ao )?\[(.*?)\], (@ao )?\[(.*?)\]\)$/.exec(r.out);
  if (!arrays) return { problem: `unexpected answer from SearchItems: ${r.out.slice(0, 200)}` };
  const paths = (s: string) => [...s.matchAll(/'([^']*)'/g)].map((m) => m[1]!);
  return { unlocked: paths(arrays[2]!), locked: paths(arrays[4]!) };
}

/** A GVariant text-format string literal (gdbus parses its arguments as GVariant text). */
function gvariantString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The session bus address: DBUS_SESSION_BUS_ADDRESS, else the systemd user bus at
 * $XDG_RUNTIME_DIR/bus. Never autolaunched: no bus means no keyring.
 */
function sessionBus(env: Record<string, string | undefined>): { address: string; problem?: undefined } | { address?: undefined; problem: string } {
  const address = env['DBUS_SESSION_BUS_ADDRESS'];
  if (address) return { address };
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime) {
    const socket = join(runtime, 'bus');
    try {
      if (statSync(socket).isSocket()) return { address: `unix:path=${socket}` };
    } catch {
      // No user bus there.
    }
  }
  return {
    problem: 'there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus does not exist; typical over SSH or in a service)',
  };
}
