// Shapes of the API answers the console reads (docs/http.md). Kept loose where the
// console only displays a field: an older or newer gateway may add or omit some.
export type Health = 'ok' | 'starting' | 'degraded' | 'off' | 'unknown';
export type MethodId = 'lan' | 'ssh' | 'tailscale' | 'tunnel' | 'reverseProxy';

export interface MethodState {
  on: boolean | null;
  urls: string[];
  health: Health;
  detail: string;
  [extra: string]: unknown;
}

export interface Conflict {
  rule: string;
  methods: MethodId[];
  reason: string;
  fix: string;
}

export interface Exposure {
  methods: Partial<Record<MethodId, MethodState>>;
  conflicts: Conflict[];
}

export interface Status {
  id?: string;
  version?: string;
  exposure?: Exposure;
  [extra: string]: unknown;
}

export interface Identity {
  sub: string;
  cred: string;
  scope: 'admin' | 'read' | 'none';
}

export interface Device {
  id: string;
  name: string;
  kind?: 'browser' | 'sdk';
  scope: 'admin' | 'read';
  status: 'active' | 'pending';
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt?: string | null;
}

export interface PairAnswer {
  code: string;
  shortCode: string;
  link: string;
  expiresAt: string;
  scope: 'admin' | 'read';
  deviceExpiresAt: string | null;
}

export interface TunnelState {
  state: 'stopped' | 'connecting' | 'online' | 'waiting';
  url?: string;
  name?: string;
  attempt?: number;
  retryInMs?: number;
  mode?: string;
  lastError?: { code: string; message: string };
}

export interface TunnelStatus {
  enabled: boolean;
  relay: string | null;
  consent: boolean;
  state: TunnelState;
  secret?: { set: boolean; source: string; masked: string | null };
  /** The desk's certificate (passthrough): from files, or how far ACME got. */
  certificate?: { source: 'files' | 'acme'; state?: 'waiting' | 'obtaining' | 'valid' | 'failed'; name?: string; notAfter?: string; error?: string };
}

export interface Setting {
  value: unknown;
  source: 'file' | 'env' | 'flag' | 'state' | 'default' | string;
}

export type Settings = Record<string, Setting>;
