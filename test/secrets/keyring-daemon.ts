// A real, private Secret Service for tests: its own D-Bus session bus (dbus-daemon with a
// config that activates nothing) and a gnome-keyring-daemon whose keyring files live in a
// temp dir, unlocked with a password fed on stdin. Readiness is `gdbus wait` for the bus
// name; everything is stopped by PID.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { findExecutable, skipUnless } from '../helpers/peers.js';

const execFileP = promisify(execFile);
const TOOLS = ['dbus-daemon', 'gnome-keyring-daemon', 'secret-tool', 'gdbus'] as const;
export const LOGIN_COLLECTION = '/org/freedesktop/secrets/collection/login';
export const SESSION_COLLECTION = '/org/freedesktop/secrets/collection/session';
const WAIT_MS = 15_000;

/** For describe's skip option: every tool the keyring tests drive. */
export function skipUnlessSecretService(): string | false {
  const missing = TOOLS.filter((t) => !findExecutable(t));
  return skipUnless(
    'Secret Service (dbus, gnome-keyring, libsecret-tools, libglib2.0-bin)',
    missing.length ? `missing ${missing.join(', ')}` : undefined,
  );
}

export interface SecretServicePeer {
  /** DBUS_SESSION_BUS_ADDRESS of the private bus. */
  address: string;
  /** The environment a porthole child needs to reach it (no XDG_RUNTIME_DIR bus fallback). */
  env: Record<string, string>;
  /** gdbus call on org.freedesktop.secrets; stdout. */
  call(objectPath: string, method: string, ...args: string[]): Promise<string>;
  /** `secret-tool lookup` of porthole's item; undefined when absent. */
  lookup(home: string, name: string): Promise<string | undefined>;
  setDefaultAlias(collection: string): Promise<void>;
  lock(collection?: string): Promise<void>;
  /** Stops and starts the keyring daemon (same files, same password): what a reboot keeps. */
  restartKeyring(): Promise<void>;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

export async function startSecretService(): Promise<SecretServicePeer> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-keyring-'));
  const runtime = join(dir, 'run');
  for (const d of ['home', 'data', runtime]) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  const conf = join(dir, 'bus.conf');
  // No <servicedir>: nothing is D-Bus-activated, so the only keyring is the one started here.
  writeFileSync(
    conf,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:dir=${dir}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n`,
  );
  const bus = spawn('dbus-daemon', [`--config-file=${conf}`, '--nofork', '--print-address=1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let keyring: ChildProcess | undefined;
  const cleanup = async () => {
    await stopChild(keyring);
    await stopChild(bus);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const address = await firstLine(bus.stdout!, 'dbus-daemon');
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      DBUS_SESSION_BUS_ADDRESS: address,
      XDG_RUNTIME_DIR: runtime,
    };
    const gdbus = async (args: string[]) => (await execFileP('gdbus', args, { env, timeout: WAIT_MS })).stdout;
    const startKeyring = async () => {
      // Wait for the name in parallel with the start, so its appearance cannot be missed.
      const ready = gdbus(['wait', '--session', '--timeout', String(WAIT_MS / 1000), 'org.freedesktop.secrets']);
      keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
        env: { ...env, HOME: join(dir, 'home'), XDG_DATA_HOME: join(dir, 'data') },
        // Its stderr is chatty (GLib warnings about re-registered items): kept out of the test output.
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      keyring.stdin!.end('test-keyring-password');
      await ready;
    };
    await startKeyring();
    const call = (objectPath: string, method: string, ...args: string[]) =>
      gdbus(['call', '--session', '--dest', 'org.freedesktop.secrets', '--object-path', objectPath, '--method', method, ...args]);
    return {
      address,
      env,
      call,
      async lookup(home, name) {
        try {
          const r = await execFileP('secret-tool', ['lookup', 'service', 'porthole', 'home', home, 'name', name], { env, timeout: WAIT_MS });
          return r.stdout;
        } catch (err) {
          if ((err as { code?: number }).code === 1) return undefined;
          throw err;
        }
      },
      async setDefaultAlias(collection) {
        await call('/org/freedesktop/secrets', 'org.freedesktop.Secret.Service.SetAlias', 'default', collection);
      },
      async lock(collection = LOGIN_COLLECTION) {
        await call('/org/freedesktop/secrets', 'org.freedesktop.Secret.Service.Lock', `['${collection}']`);
      },
      async restartKeyring() {
        await stopChild(keyring);
        await startKeyring();
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function firstLine(stream: NodeJS.ReadableStream, what: string): Promise<string> {
  const rl = createInterface({ input: stream });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      new Promise<string>((resolve) => rl.once('line', resolve)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} printed no address within ${WAIT_MS} ms`)), WAIT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    rl.close();
  }
}
