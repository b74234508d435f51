// createGateway()'s start-up checks and helpers: which state directory an app gets, whether a
// trusted-proxy setup is safe to start, the identity key, the session sweep interval, and a
// paired device's state as the control plane's verdict.
import { randomBytes } from 'node:crypto';
import type { PortholeConfig } from '../config/schema.js';
import { PortholeError } from '../errors.js';
import type { DeviceCheck } from '../pairing/devices.js';
import { resolveHome } from '../secrets/paths.js';
import type { SecretStore } from '../secrets/store.js';
import type { GatewayOptions } from './gateway-types.js';

export function resolveOwnHome(options: GatewayOptions): string {
  if ((options.stateDir === undefined) === (options.appName === undefined)) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      'createGateway needs exactly one of stateDir and appName: two apps must never share porthole state (and its token) by accident',
    );
  }
  // The per-OS base directory still follows XDG_CONFIG_HOME / APPDATA; PORTHOLE_HOME is
  // deliberately ignored: it names the sidecar's state, not this app's.
  const { XDG_CONFIG_HOME, APPDATA } = process.env;
  return resolveHome({ home: options.stateDir, appName: options.appName, env: { XDG_CONFIG_HOME, APPDATA } });
}

/**
 * trusted-proxy mode starts only with proxies to trust and without a shared token: the SSO
 * in front is then the only way in for remote visitors (docs/auth-modes.md). The master
 * token in the secret store still exists, for the CLI over the Unix socket.
 */
export function assertTrustedProxySetup(config: PortholeConfig, options: GatewayOptions): void {
  if (config.gateway.trusted_proxies.length === 0) {
    throw new PortholeError(
      'CONFIG_INVALID',
      'auth.mode is "trusted-proxy" but gateway.trusted_proxies is empty: list the proxy addresses allowed to name the user ' +
        '(--trusted-proxies 10.0.0.5 or [gateway] trusted_proxies = ["10.0.0.5"])',
    );
  }
  const shared: string[] = [];
  if (options.token !== undefined) shared.push('createGateway({ token })');
  if (options.tokenFlags?.authToken !== undefined) shared.push('--auth-token');
  if (options.tokenFlags?.authTokenFile !== undefined) shared.push('--auth-token-file');
  if (options.env?.['PORTHOLE_AUTH_TOKEN']) shared.push('PORTHOLE_AUTH_TOKEN');
  if (config.auth.token_file !== undefined && options.tokenFlags?.authTokenFile === undefined) shared.push('[auth] token_file');
  if (shared.length > 0) {
    throw new PortholeError(
      'CONFIG_INVALID',
      `auth.mode is "trusted-proxy" but a shared token is supplied (${shared.join(', ')}). In this mode the proxy signs ` +
        'users in and porthole tokens are not accepted remotely, so a shared token would only be a secret to leak. ' +
        'Remove it, or use auth.mode = "token".',
    );
  }
}

/** A device's state as the control plane's verdict (src/control/server.ts). */
export function deviceVerdict(c: DeviceCheck) {
  if (c.status === 'active') return { credential: `device:${c.device.id}`, sub: `device:${c.device.id}`, scope: c.device.scope };
  if (c.status === 'pending') return { refused: { code: 'DEVICE_PENDING' as const, message: 'this device waits for approval on the desk' } };
  if (c.status === 'revoked' || c.status === 'expired') {
    return { refused: { code: 'AUTH_REVOKED' as const, message: `this device was ${c.status === 'revoked' ? 'revoked' : 'paired too long ago (expired)'}; pair it again` } };
  }
  return undefined;
}

/**
 * How often expired sessions are swept (seconds in, ms out): a quarter of the shorter expiry,
 * between 1 s and 30 s. What an expired session opened outlives it by at most this long.
 */
export function sessionSweepMs(idleSeconds: number, maxSeconds: number): number {
  return Math.min(30_000, Math.max(1_000, Math.floor((Math.min(idleSeconds, maxSeconds) * 1000) / 4)));
}

export function hostOfOrigin(entry: string): string {
  if (!entry.includes('://')) return entry;
  try {
    return new URL(entry).hostname;
  } catch {
    return '';
  }
}

export function loadIdentityKey(store: SecretStore): Buffer {
  const existing = store.get('identity-key');
  if (existing) return Buffer.from(existing, 'base64url');
  const key = randomBytes(32);
  store.set('identity-key', key.toString('base64url'));
  return key;
}
