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
  /** Frees this desk's name on the relay (held back there before anyone else may take it). */
  release(): Promise<string | null>;
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
  let lastState: TunnelState = { state: 'stopped' };
  const audit = (event: string, fields: Record<string, string | number | null> = {}) =>
    appendAudit(o.paths.auditLog, event, { relay: o.config.relay ?? null, ...fields });

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
      state: lastState,
      ...(certificates ? { certificate: certificates.status() } : {}),
    };
  }

  return {
    start(opts = {}) {
      if (client) return status();
      o.guard?.();
      if (!o.localRelay && !hasConsent(o.paths)) {
        if (!opts.acceptRisk) {
          throw new PortholeError('CONSENT_REQUIRED', `the public tunnel needs your consent first. ${CONSENT_TEXT} Run \`porthole tunnel start --accept-risk\` to agree.`);
        }
        updateState(o.paths, (s) => {
          s['tunnelConsent'] = { version: CONSENT_VERSION, at: new Date().toISOString() };
        });
        audit('consent', { version: CONSENT_VERSION });
      }
      const s = requireSettings();
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
        secret: registrationSecret(o.env, o.store),
        onStream: (stream, meta) => ing.onStream(stream, meta),
        logger: o.logger,
        ...o.client,
      });
      client.on('state', (st: TunnelState) => {
        lastState = st;
        if (st.state === 'online') {
          const hostname = new URL(st.url).hostname;
          o.gateway.addHostName(hostname);
          // A terminate-mode relay holds the certificate; passthrough needs the desk's own.
          if (st.mode === 'passthrough') certs.online(hostname);
          audit('online', { name: st.name, url: st.url, mode: st.mode });
          updateState(o.paths, (x) => {
            x['tunnelEverOnline'] = true;
          });
        }
        for (const l of listeners) l(st);
      });
      client.on('offline', (e: { code: string }) => audit('offline', { reason: e.code }));
      client.on('failed', (e: { code: string }) => audit('registration failed', { reason: e.code }));
      client.start();
      audit('start');
      return status();
    },
    async stop() {
      await client?.stop();
      ingress?.close();
      certificates?.stop();
      if (client) audit('stop');
      client = undefined;
      ingress = undefined;
      certificates = undefined;
      lastState = { state: 'stopped' };
      for (const l of listeners) l(lastState);
      return status();
    },
    status,
    async release() {
      const s = requireSettings();
      const r = (await connectOnce(
        {
          relay: s.relay,
          connectAddress: o.config.connect_address,
          ca: s.ca,
          identity: loadOrCreateIdentity(o.paths.identityDir),
          secret: registrationSecret(o.env, o.store),
          onStream: (stream) => stream.destroy(),
        },
        'release',
      )) as { released: string | null };
      audit('release', { name: r.released });
      return r.released;
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
