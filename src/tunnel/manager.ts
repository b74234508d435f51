// The tunnel as the gateway runs it: consent, the registration secret, the desk's
// certificate and identity, the reconnecting client, the in-process ingress, the audit
// log, and state events for `serve --json`, `porthole tunnel status` and `status`.
import { readFileSync } from 'node:fs';
import type { PortholeConfig } from '../config/schema.js';
import { PortholeError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../log.js';
import { DEV_REGISTRATION_SECRET } from '../protocol/handshake.js';
import type { StatePaths } from '../secrets/paths.js';
import { readState, updateState } from '../secrets/state.js';
import type { SecretStore } from '../secrets/store.js';
import { appendAudit } from '../util/audit.js';
import { parseHostPort } from '../util/host-port.js';
import { type CertificateKeeper, type CertificateKeeperOptions, type CertificateStatus, createCertificateKeeper } from './certificate.js';
import { connectOnce, createTunnelClient, type TunnelClient, type TunnelState } from './client.js';
import { loadOrCreateIdentity } from './identity.js';
import { createTunnelIngress, type TunnelIngress } from './ingress.js';

/** Bump when the consent text changes: earlier consent then no longer counts. */
export const CONSENT_VERSION = 1;
export const CONSENT_TEXT =
  'Starting the public tunnel makes this desk reachable from the internet at a URL on the relay. ' +
  'Anyone who learns the URL can reach the gateway; every request still needs the token or a paired credential. ' +
  'In passthrough mode the relay sees only encrypted traffic, the visitor addresses and the desk name; ' +
  'its operator, if they also control DNS for the domain, could obtain a certificate for your name and read traffic. ' +
  'A relay in terminate mode decrypts and can read all traffic to this desk.';
export const SECRET_STORE_KEY = 'tunnel-registration-secret';
const STOPPED: TunnelState = { state: 'stopped' };

export interface TunnelManagerOptions {
  gateway: Gateway;
  config: PortholeConfig['tunnel'];
  paths: StatePaths;
  store: SecretStore;
  env: Record<string, string | undefined>;
  logger?: Logger;
  /** The relay is on this machine (the demo): nothing is exposed, so no consent is asked or recorded. */
  localRelay?: boolean;
  /**
   * Checked before every start (before consent is asked or recorded): throws when opening
   * the tunnel now would break an exposure rule (EXPOSURE_CONFLICT, docs/exposure.md).
   */
  guard?: () => void;
  /** ACME retry timing (tests shorten it). */
  certificates?: Pick<CertificateKeeperOptions, 'retry'>;
  /** Client tuning (tests shorten these). */
  client?: { backoff?: { baseMs?: number; maxMs?: number; stableMs?: number }; pingIntervalMs?: number; deadAfterMs?: number };
}

export interface TunnelStatus {
  enabled: boolean;
  relay: string | null;
  consent: boolean;
  state: TunnelState;
  /** While running: where the desk's certificate comes from and, for ACME, how far it got. */
  certificate?: CertificateStatus;
}

export interface TunnelManager {
  /** Starts the tunnel; the first start needs `acceptRisk` (recorded with the consent text's version). */
  start(opts?: { acceptRisk?: boolean }): TunnelStatus;
  stop(): Promise<TunnelStatus>;
  status(): TunnelStatus;
  /**
   * Stops the tunnel and frees this desk's name on the relay (held back there before anyone
   * else may take it). A start while it runs is refused (TUNNEL_BUSY).
   */
  release(): Promise<string | null>;
  /** The operator set a new registration secret: used from the next attempt (the environment's still wins). */
  useSecret(secret: string): void;
  /** Whether `auto_start` may start it now: configured, consented, and once online before. */
  mayAutoStart(): boolean;
  on(event: 'state', listener: (s: TunnelState) => void): void;
  /** The desk's ACME certificate changed state (obtaining, valid, failed). */
  onCertificate(listener: (c: CertificateStatus) => void): void;
  close(): Promise<void>;
}

/** PORTHOLE_TUNNEL_REGISTRATION_SECRET > secret store > the dev default (loopback dev relays only). */
export function registrationSecret(env: Record<string, string | undefined>, store: SecretStore): string {
  return env['PORTHOLE_TUNNEL_REGISTRATION_SECRET'] || store.get(SECRET_STORE_KEY) || DEV_REGISTRATION_SECRET;
}

function hasConsent(paths: StatePaths): boolean {
  const c = readState(paths)['tunnelConsent'] as { version?: number } | undefined;
  return c?.version === CONSENT_VERSION;
}

export function createTunnelManager(o: TunnelManagerOptions): TunnelManager {
  const listeners: ((s: TunnelState) => void)[] = [];
  const certificateListeners: ((c: CertificateStatus) => void)[] = [];
  let client: TunnelClient | undefined;
  let ingress: TunnelIngress | undefined;
  let certificates: CertificateKeeper | undefined;
  /** The registration secret, read once at the first start; `useSecret` replaces it. */
  let secret: string | undefined;
  const currentSecret = (): string => (secret ??= registrationSecret(o.env, o.store));
  /** A release is running: it stopped the tunnel, and a start now would take the name back. */
  let releasing = false;
  /** Best effort: a failing write (full disk) is logged, and never takes the tunnel or the gateway down. */
  const quietly = (what: string, write: () => void): void => {
    try {
      write();
    } catch (err) {
      o.logger?.log('error', `${what} failed`, { error: (err as Error).message });
    }
  };
  const audit = (event: string, fields: Record<string, string | number | null> = {}) =>
    quietly(`audit log write (${event})`, () => appendAudit(o.paths.auditLog, event, { relay: o.config.relay ?? null, ...fields }));
  /** The listeners on the running client, removed when it stops (its late events are not ours). */
  let detach: (() => void) | undefined;

  function requireSettings(): { relay: string; ca: string | undefined } {
    const relay = o.config.relay;
    if (!relay) {
      throw new PortholeError('INVALID_ARGUMENT', 'no relay configured: pass --relay HOST:PORT or set [tunnel] relay');
    }
    return { relay, ca: o.config.ca ? readFileSync(o.config.ca, 'utf8') : undefined };
  }

  function status(): TunnelStatus {
    return {
      enabled: client !== undefined,
      relay: o.config.relay ?? null,
      consent: hasConsent(o.paths),
      state: client?.status() ?? STOPPED,
      ...(certificates ? { certificate: certificates.status() } : {}),
    };
  }

  return {
    start(opts = {}) {
      if (client) return status();
      if (releasing) throw new PortholeError('TUNNEL_BUSY', 'the tunnel is releasing its name on the relay; start it again when that has finished');
      o.guard?.();
      const needsConsent = !o.localRelay && !hasConsent(o.paths);
      if (needsConsent && !opts.acceptRisk) {
        throw new PortholeError('CONSENT_REQUIRED', `the public tunnel needs your consent first. ${CONSENT_TEXT} Run \`porthole tunnel start --accept-risk\` to agree.`);
      }
      // Consent is recorded only for a start that can happen (a relay is configured).
      const s = requireSettings();
      if (needsConsent) {
        updateState(o.paths, (x) => {
          x['tunnelConsent'] = { version: CONSENT_VERSION, at: new Date().toISOString() };
        });
        audit('consent', { version: CONSENT_VERSION });
      }
      const identity = loadOrCreateIdentity(o.paths.identityDir);
      const ing = createTunnelIngress(o.gateway, undefined, { front: o.env['PORTHOLE_HTTP_FRONT'] !== 'off' });
      // Files are read (and ACME settings checked) before anything connects: a bad pair is
      // an error of `tunnel start`, not a handshake failure each visitor sees later.
      const certs = createCertificateKeeper({
        config: o.config,
        relayHost: parseHostPort(s.relay, 'relay address').host,
        acmeDir: o.paths.acmeDir,
        ingress: ing,
        audit,
        logger: o.logger,
        ...o.certificates,
        onChange: (c) => {
          for (const l of certificateListeners) l(c);
        },
      });
      ingress = ing;
      certificates = certs;
      client = createTunnelClient({
        relay: s.relay,
        connectAddress: o.config.connect_address,
        subdomain: o.config.subdomain,
        ca: s.ca,
        identity,
        secret: currentSecret,
        onStream: (stream, meta) => ing.onStream(stream, meta),
        logger: o.logger,
        ...o.client,
      });
      const running = client;
      const onState = (st: TunnelState) => {
        if (st.state === 'online') {
          const hostname = new URL(st.url).hostname;
          o.gateway.addHostName(hostname);
          // A terminate-mode relay holds the certificate; passthrough needs the desk's own.
          if (st.mode === 'passthrough') certs.online(hostname);
          audit('online', { name: st.name, url: st.url, mode: st.mode });
          quietly('state write', () =>
            updateState(o.paths, (x) => {
              x['tunnelEverOnline'] = true;
            }),
          );
        }
        for (const l of listeners) l(st);
      };
      const onOffline = (e: { code: string }) => audit('offline', { reason: e.code });
      const onFailed = (e: { code: string }) => audit('registration failed', { reason: e.code });
      running.on('state', onState);
      running.on('offline', onOffline);
      running.on('failed', onFailed);
      detach = () => {
        running.off('state', onState);
        running.off('offline', onOffline);
        running.off('failed', onFailed);
      };
      client.start();
      audit('start');
      return status();
    },
    async stop() {
      // Its own 'stopped' (and anything late) is not ours: the one below is the only one.
      detach?.();
      detach = undefined;
      const was = client;
      await client?.stop();
      ingress?.close();
      certificates?.stop();
      if (was) audit('stop');
      client = undefined;
      ingress = undefined;
      certificates = undefined;
      // Only a tunnel that ran stops: a gateway shutting down without one reports nothing.
      if (was) for (const l of listeners) l(STOPPED);
      return status();
    },
    status,
    async release() {
      if (releasing) throw new PortholeError('TUNNEL_BUSY', 'a release is already running');
      const s = requireSettings();
      releasing = true;
      try {
        await this.stop();
        const r = (await connectOnce(
          {
            relay: s.relay,
            connectAddress: o.config.connect_address,
            ca: s.ca,
            identity: loadOrCreateIdentity(o.paths.identityDir),
            secret: currentSecret(),
            onStream: (stream) => stream.destroy(),
          },
          'release',
        )) as { released: string | null };
        audit('release', { name: r.released });
        return r.released;
      } catch (err) {
        audit('release failed', { reason: (err as PortholeError).code ?? 'INTERNAL' });
        throw err;
      } finally {
        releasing = false;
      }
    },
    useSecret(value) {
      // The environment's secret wins over the store's (registrationSecret), a new one included.
      if (o.env['PORTHOLE_TUNNEL_REGISTRATION_SECRET']) return;
      secret = value;
      client?.retryNow();
    },
    mayAutoStart() {
      return o.config.auto_start && hasConsent(o.paths) && readState(o.paths)['tunnelEverOnline'] === true;
    },
    on(_event, listener) {
      listeners.push(listener);
    },
    onCertificate(listener) {
      certificateListeners.push(listener);
    },
    async close() {
      await this.stop();
    },
  };
}
