// The configuration model and its field table: every key porthole.toml may hold, with its
// type, default and meaning. The table is typed against PortholeConfig, so a key added to
// one and not the other fails to compile. docs/config.md documents the same table.
import {
  checkCidr,
  checkEmail,
  checkHeaderName,
  checkHost,
  checkHostPort,
  checkHttpsUrl,
  checkLabel,
  checkOrigin,
  checkPublicPath,
  checkPublicUrl,
  checkRemoteUrl,
  checkSshTarget,
  checkTlsPin,
  checkWord,
  type Checked,
  bad,
  ok,
} from './validate.js';

/** tunnel.acme_directory's default: Let's Encrypt's production directory. */
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

export type AuthMode = 'token' | 'password' | 'trusted-proxy';
export type TailscaleMode = 'off' | 'serve' | 'funnel';
export type RemoteTransport = 'http' | 'ssh';

export interface GatewayConfig {
  host: string;
  port: number;
  target?: string;
  public_url?: string;
  allowed_origins: string[];
  trusted_proxies: string[];
  allow_cidrs: string[];
  target_timeout: number;
  stall_timeout: number;
  max_requests_per_client: number;
  tls: GatewayTlsMode;
  tls_cert?: string;
  tls_key?: string;
}

export type GatewayTlsMode = 'off' | 'self-signed';

export interface RateLimitConfig {
  max_failures: number;
  window: number;
  ban: number;
}

export interface AuthConfig {
  mode: AuthMode;
  loopback_exempt: boolean;
  public_paths: string[];
  token_file?: string;
  session_idle: number;
  session_max: number;
  rate_limit: RateLimitConfig;
  trusted_proxy: { user_header: string; required_headers: string[]; allow_users: string[]; use_x_real_ip: boolean };
}

export interface TunnelConfig {
  enabled: boolean;
  auto_start: boolean;
  relay?: string;
  connect_address?: string;
  subdomain?: string;
  ca?: string;
  tls_cert?: string;
  tls_key?: string;
  acme: boolean;
  acme_directory: string;
  acme_ca?: string;
  acme_email?: string;
}

export interface TailscaleConfig {
  mode: TailscaleMode;
  reset_on_exit: boolean;
  allow_users: string[];
}

export interface RemoteConfig {
  url?: string;
  token_file?: string;
  transport: RemoteTransport;
  ssh_target?: string;
  tls_pin?: string;
}

/** The whole configuration, keys as in porthole.toml. Optional keys are absent when unset. */
export interface PortholeConfig {
  version: 1;
  gateway: GatewayConfig;
  auth: AuthConfig;
  tunnel: TunnelConfig;
  tailscale: TailscaleConfig;
  remote: RemoteConfig;
}

type Scalar = string | number | boolean | readonly unknown[] | undefined;
/** Dotted names of every leaf of T: "gateway.port", "auth.rate_limit.ban", … */
type Leaves<T, P extends string = ''> = {
  [K in keyof T & string]: T[K] extends Scalar ? `${P}${K}` : Leaves<T[K], `${P}${K}.`>;
}[keyof T & string];
type ValueAt<T, K extends string> = K extends `${infer H}.${infer R}`
  ? H extends keyof T
    ? ValueAt<T[H], R>
    : never
  : K extends keyof T
    ? T[K]
    : never;

/** A dotted config key, e.g. "gateway.public_url". */
export type ConfigKey = Leaves<PortholeConfig>;
export type FieldKind = 'string' | 'integer' | 'number' | 'boolean' | 'string[]';

export interface FieldSpec<V = unknown> {
  kind: FieldKind;
  /** One line for `config check` and docs/config.md. */
  doc: string;
  /** Absent: the key is optional and unset unless configured. */
  default?: V;
  choices?: readonly string[];
  /** Inclusive bounds for integers. */
  min?: number;
  max?: number;
  /** A filesystem path: relative values are resolved against the file's directory. */
  path?: boolean;
  /** Validates (and may normalise) a scalar value. Method syntax keeps the table assignable. */
  check?(value: NonNullable<V>): Checked<unknown>;
  /** Validates (and may normalise) each element of a list. */
  item?(value: string): Checked<string>;
}

const positive = (v: number): Checked<number> =>
  Number.isFinite(v) && v > 0 ? ok(v) : bad(`expected a number of seconds greater than 0, got ${v}`);
const DAY = 86_400;

export const CONFIG_FIELDS: { readonly [K in ConfigKey]: FieldSpec<ValueAt<PortholeConfig, K>> } = {
  version: {
    kind: 'integer',
    default: 1,
    doc: 'Config format version; only 1 exists.',
    check: (v) => (v === 1 ? ok(1) : bad(`unsupported version ${v} (this porthole reads version 1)`)),
  },
  'gateway.host': {
    kind: 'string',
    default: '127.0.0.1',
    doc: 'Address to bind. Loopback by default: nothing else reaches it until you choose an exposure.',
    check: checkHost,
  },
  'gateway.port': { kind: 'integer', default: 7070, min: 0, max: 65535, doc: 'Port to bind; 0 picks a free one.' },
  'gateway.target': {
    kind: 'string',
    doc: 'The app behind the gateway: a URL, a port, or unix:PATH (sidecar mode).',
  },
  'gateway.public_url': {
    kind: 'string',
    doc: 'The https origin a reverse proxy serves the gateway at (no path).',
    check: checkPublicUrl,
  },
  'gateway.allowed_origins': {
    kind: 'string[]',
    default: [],
    doc: 'Browser origins allowed cross-origin: scheme://host[:port] exactly, or a bare host (any scheme/port).',
    item: checkOrigin,
  },
  'gateway.trusted_proxies': {
    kind: 'string[]',
    default: [],
    doc: 'Proxy addresses (IPs or CIDRs) whose X-Forwarded-For is believed.',
    item: checkCidr,
  },
  'gateway.allow_cidrs': {
    kind: 'string[]',
    default: [],
    doc: 'Networks (IPs or CIDRs) allowed to connect off-loopback; others are dropped before any auth work. Empty: any.',
    item: checkCidr,
  },
  'gateway.target_timeout': {
    kind: 'number',
    default: 30,
    doc: "Seconds to wait for the target's response headers.",
    check: positive,
  },
  'gateway.stall_timeout': {
    kind: 'number',
    default: 60,
    doc: 'Seconds a body or an upgraded connection may go without moving a byte while one side waits on the other; the exchange then ends.',
    check: positive,
  },
  'gateway.max_requests_per_client': {
    kind: 'integer',
    default: 256,
    min: 0,
    doc: 'Requests and upgraded connections one client (ban key) may have in progress to the app at once; more get 429 CLIENT_BUSY. Local clients are not counted. 0: no limit.',
  },
  'gateway.tls': {
    kind: 'string',
    default: 'off',
    choices: ['off', 'self-signed'],
    doc: 'Serve HTTPS (TLS 1.3): "self-signed" makes a certificate once in $PORTHOLE_HOME/tls. tls_cert/tls_key use given files.',
  },
  'gateway.tls_cert': { kind: 'string', path: true, doc: 'Certificate (PEM) to serve HTTPS with; needs gateway.tls_key.' },
  'gateway.tls_key': { kind: 'string', path: true, doc: 'Private key (PEM, mode 0600) for gateway.tls_cert.' },
  'auth.mode': {
    kind: 'string',
    default: 'token',
    choices: ['token', 'password', 'trusted-proxy'],
    doc: 'How remote visitors authenticate.',
  },
  'auth.loopback_exempt': {
    kind: 'boolean',
    default: true,
    doc: 'Let same-host, same-site requests to app routes skip the credential (derived default, see docs).',
  },
  'auth.public_paths': {
    kind: 'string[]',
    default: [],
    doc: 'App path prefixes reachable without a credential (webhooks).',
    item: checkPublicPath,
  },
  'auth.token_file': { kind: 'string', path: true, doc: 'File to read a fixed gateway token from.' },
  'auth.session_idle': {
    kind: 'integer',
    default: 7 * DAY,
    min: 1,
    doc: 'Seconds a browser session survives without use.',
  },
  'auth.session_max': {
    kind: 'integer',
    default: 30 * DAY,
    min: 1,
    doc: 'Seconds a browser session lives at most.',
  },
  'auth.rate_limit.max_failures': {
    kind: 'integer',
    default: 5,
    min: 1,
    doc: 'Failed porthole credentials allowed per client within the window.',
  },
  'auth.rate_limit.window': {
    kind: 'integer',
    default: 900,
    min: 1,
    doc: 'Seconds over which failures are counted.',
  },
  'auth.rate_limit.ban': { kind: 'integer', default: 300, min: 1, doc: 'Seconds a client stays banned.' },
  'auth.trusted_proxy.user_header': {
    kind: 'string',
    default: 'X-Forwarded-User',
    doc: 'Header a trusted proxy names the signed-in user in (auth.mode = "trusted-proxy").',
    check: checkHeaderName,
  },
  'auth.trusted_proxy.required_headers': {
    kind: 'string[]',
    default: [],
    doc: 'Headers the trusted proxy must also send, non-empty, or the request is refused (e.g. X-Forwarded-Email).',
    item: checkHeaderName,
  },
  'auth.trusted_proxy.allow_users': {
    kind: 'string[]',
    default: [],
    doc: 'Users (exact, case-sensitive) the proxy may sign in; empty means any user the proxy names.',
    item: checkWord,
  },
  'auth.trusted_proxy.use_x_real_ip': {
    kind: 'boolean',
    default: false,
    doc: "Take the client address from a trusted proxy's X-Real-IP instead of walking X-Forwarded-For.",
  },
  'tunnel.enabled': { kind: 'boolean', default: false, doc: 'Open the relay tunnel when the gateway starts.' },
  'tunnel.auto_start': {
    kind: 'boolean',
    default: false,
    doc: 'Reopen the tunnel at start if it was running before (consent already given).',
  },
  'tunnel.relay': { kind: 'string', doc: 'Relay to dial, host:port.', check: checkHostPort },
  'tunnel.connect_address': {
    kind: 'string',
    doc: "Address to dial instead of resolving the relay's name (like curl --connect-to); SNI and certificate checks still use the name.",
  },
  'tunnel.subdomain': { kind: 'string', doc: 'Requested subdomain: one DNS label.', check: checkLabel },
  'tunnel.ca': { kind: 'string', path: true, doc: "CA certificate (PEM) to verify the relay's certificate." },
  'tunnel.tls_cert': {
    kind: 'string',
    path: true,
    doc: "Certificate (PEM) for the desk's name (passthrough mode).",
  },
  'tunnel.tls_key': { kind: 'string', path: true, doc: 'Private key (PEM) for tunnel.tls_cert.' },
  'tunnel.acme': {
    kind: 'boolean',
    default: false,
    doc: "Obtain the desk's certificate by ACME (HTTP-01 through the relay) when tls_cert is not set; agrees to the CA's terms.",
  },
  'tunnel.acme_directory': {
    kind: 'string',
    default: LETS_ENCRYPT_DIRECTORY,
    doc: 'ACME directory URL (https) used when tunnel.acme is on.',
    check: checkHttpsUrl,
  },
  'tunnel.acme_ca': { kind: 'string', path: true, doc: "CA certificate (PEM) to verify the ACME server's HTTPS (private CAs, tests)." },
  'tunnel.acme_email': { kind: 'string', doc: 'Contact address given to the ACME CA (expiry notices); optional.', check: checkEmail },
  'tailscale.mode': {
    kind: 'string',
    default: 'off',
    choices: ['off', 'serve', 'funnel'],
    doc: 'Expose through Tailscale Serve (tailnet) or Funnel (internet).',
  },
  'tailscale.reset_on_exit': {
    kind: 'boolean',
    default: false,
    doc: 'Remove the serve/funnel routes porthole made when it exits.',
  },
  'tailscale.allow_users': {
    kind: 'string[]',
    default: [],
    doc: 'Tailscale logins that may skip the credential; empty means the node owner only.',
    item: checkWord,
  },
  'remote.url': { kind: 'string', doc: 'Gateway URL the remote client talks to.', check: checkRemoteUrl },
  'remote.token_file': { kind: 'string', path: true, doc: 'File holding the remote token.' },
  'remote.transport': {
    kind: 'string',
    default: 'http',
    choices: ['http', 'ssh'],
    doc: 'How the remote client reaches the gateway.',
  },
  'remote.ssh_target': { kind: 'string', doc: 'user@host for transport = "ssh".', check: checkSshTarget },
  'remote.tls_pin': {
    kind: 'string',
    doc: 'Pin of the gateway\'s TLS certificate: "sha256/<base64>" (public key) or "AA:BB:…" (certificate SHA-256).',
    check: checkTlsPin,
  },
};

/** Every key, in table order (the order `config check` prints). */
export const CONFIG_KEYS = Object.keys(CONFIG_FIELDS) as ConfigKey[];

export function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(CONFIG_FIELDS, key);
}

export function fieldSpec(key: ConfigKey): FieldSpec {
  return CONFIG_FIELDS[key] as FieldSpec;
}

/** Section names ("gateway", "auth.rate_limit", …): tables the file may contain. */
export const CONFIG_SECTIONS: ReadonlySet<string> = new Set(
  CONFIG_KEYS.flatMap((key) => {
    const parts = key.split('.');
    return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('.'));
  }),
);
