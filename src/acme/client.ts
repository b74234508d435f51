// porthole's own ACME client (RFC 8555): one certificate for one DNS name, proven with http-01.
// The desk answers GET /.well-known/acme-challenge/<token> from the AcmeChallengeStore (the
// relay forwards those requests to it). Node built-ins only: node:https and node:crypto.
//
// Fail closed: every URL the CA hands us must be https, every body is size-bounded, every
// request has a time-out, the whole issuance has a deadline, and the issued leaf must name
// the requested host and certify the caller's key before it is returned.
import { createPublicKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import https from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { PortholeError } from '../errors.js';
import { checkAcmeName, createCsr } from './csr.js';
import { type HttpResponse, httpsRequest } from './http.js';
import { type AccountKey, keyAuthorization, loadAccountKey, loadEcKey, signJws } from './jws.js';

export interface AcmeChallengeStore {
  set(token: string, keyAuthorization: string): void;
  delete(token: string): void;
}

export interface AcmeOptions {
  /** The CA's directory URL; https:// only, else INVALID_ARGUMENT. */
  directoryUrl: string;
  /** PEM CA(s) to trust for the ACME server's HTTPS (pebble, private CAs). Default: the system roots. */
  ca?: string;
  /** The account key: PKCS#8 PEM, ECDSA P-256 (generateAcmeKeyPem). */
  accountKeyPem: string;
  /** Contact address, sent as mailto:. Default: none. */
  email?: string;
  /** Where the key authorizations go while the CA validates; the desk serves them. */
  challenges: AcmeChallengeStore;
  /** Bound on the whole issuance, in ms. Default 120 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Progress notes; never carries keys, nonces or key authorizations. Default: silent. */
  log?: (message: string, fields?: Record<string, string | number>) => void;
}

export interface IssuedCert {
  /** The full chain as the CA served it, leaf first. */
  certPem: string;
  notBefore: Date;
  notAfter: Date;
  /** The CA's terms of service URL, agreed to when the account was created. */
  termsOfService?: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;
/** One HTTP exchange with the CA; the issuance deadline may cut it shorter. */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * badNonce is retryable (RFC 8555 §6.5). Each retry costs one round trip, and a CA that
 * rejects many nonces (pebble's PEBBLE_WFE_NONCEREJECT) must not fail an issuance by luck;
 * the bound only stops a loop against a CA that rejects every nonce.
 */
const MAX_BAD_NONCE_RETRIES = 10;
/** Polling: Retry-After is honoured but clamped; without it, back off 250 ms → 2 s. */
const MIN_POLL_MS = 250;
const MAX_BACKOFF_MS = 2_000;
const MAX_RETRY_AFTER_MS = 10_000;
const ERROR_PREFIX = 'urn:ietf:params:acme:error:';
/** RFC 8555 §6.5.1: a nonce is base64url. */
const NONCE = /^[A-Za-z0-9_-]+$/;
/** RFC 8555 §8.3: a token is base64url with ≥ 128 bits of entropy; it becomes a URL path segment. */
const TOKEN = /^[A-Za-z0-9_-]{22,256}$/;
const USER_AGENT = 'porthole-acme (RFC 8555)';

type Step =
  | 'directory'
  | 'newNonce'
  | 'newAccount'
  | 'newOrder'
  | 'authorization'
  | 'challenge'
  | 'finalize'
  | 'order'
  | 'certificate'
  | 'check';

interface Problem {
  type?: string;
  detail?: string;
}

interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  termsOfService: string | undefined;
}

interface Order {
  status: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: Problem;
}

interface Challenge {
  type: string;
  url: string;
  status: string;
  token?: string;
  error?: Problem;
}

interface Authorization {
  status: string;
  identifier?: { type?: string; value?: string };
  challenges: Challenge[];
}

interface Settings {
  directoryUrl: string;
  account: AccountKey;
  certKey: KeyObject;
  name: string;
  email: string | undefined;
  timeoutMs: number;
}

/** A new ECDSA P-256 private key as PKCS#8 PEM, for an account or a certificate. */
export function generateAcmeKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/**
 * Registers (or finds) the account, orders a certificate for `name`, answers its http-01
 * challenge through `o.challenges`, finalizes with a CSR for `certKeyPem` and returns the
 * chain. Errors: INVALID_ARGUMENT for bad options, ACME_FAILED naming the step otherwise.
 */
export async function obtainCertificate(o: AcmeOptions, name: string, certKeyPem: string): Promise<IssuedCert> {
  const settings = checkOptions(o, name, certKeyPem);
  const deadline = AbortSignal.timeout(settings.timeoutMs);
  const signal = o.signal ? AbortSignal.any([deadline, o.signal]) : deadline;
  const agent = new https.Agent({ keepAlive: true, maxSockets: 2, ...(o.ca !== undefined ? { ca: o.ca } : {}) });
  const session = new Session(agent, settings.account, signal, o.log);
  const tokens = new Set<string>();
  try {
    return await issue(session, settings, o.challenges, tokens);
  } catch (err) {
    throw session.failure(err, deadline.aborted ? `timed out after ${settings.timeoutMs} ms` : undefined);
  } finally {
    for (const token of tokens) {
      try {
        o.challenges.delete(token);
      } catch {
        o.log?.('acme: challenge store failed to delete a token');
      }
    }
    agent.destroy();
  }
}

async function issue(session: Session, s: Settings, store: AcmeChallengeStore, tokens: Set<string>): Promise<IssuedCert> {
  const directory = await session.directory(s.directoryUrl);
  await session.register(directory, s.email);
  const { order, orderUrl } = await session.newOrder(directory, s.name);
  for (const url of order.authorizations) await authorize(session, httpsUrl(url, 'authorization', 'authorization URL'), s.name, store, tokens);

  let current = await session.poll<Order>('order', orderUrl, ['pending'], checkOrder);
  if (current.status === 'ready') {
    const csr = createCsr(s.name, s.certKey).toString('base64url');
    current = checkOrder((await session.postJson('finalize', httpsUrl(current.finalize, 'finalize', 'finalize URL'), { csr })).json);
    if (current.status !== 'valid') current = await session.poll<Order>('order', orderUrl, ['processing', 'ready'], checkOrder);
  }
  if (current.status !== 'valid' || current.certificate === undefined) {
    throw acmeFailed('order', `order for ${s.name} is ${current.status}${problemText(current.error)}`);
  }
  session.log?.('acme: order valid, downloading the certificate');
  const certUrl = httpsUrl(current.certificate, 'certificate', 'certificate URL');
  const res = await session.post('certificate', certUrl, undefined, 'application/pem-certificate-chain');
  const issued = checkChain(res.body.toString('utf8'), s.name, s.certKey);
  return { ...issued, ...(directory.termsOfService !== undefined ? { termsOfService: directory.termsOfService } : {}) };
}

/** RFC 8555 §7.5: fetch the authorization, answer its http-01 challenge, poll until settled. */
async function authorize(session: Session, url: string, name: string, store: AcmeChallengeStore, tokens: Set<string>): Promise<void> {
  let authz = checkAuthorization((await session.postJson('authorization', url)).json);
  const id = authz.identifier;
  if (id?.type !== 'dns' || typeof id.value !== 'string' || id.value.toLowerCase() !== name) {
    throw acmeFailed('authorization', `the CA sent an authorization for another identifier than ${name}`);
  }
  if (authz.status === 'valid') return; // reused from an earlier order (RFC 8555 §7.1.3)
  if (authz.status !== 'pending') throw acmeFailed('authorization', `authorization for ${name} is ${authz.status}`);
  const challenge = authz.challenges.find((c) => c.type === 'http-01');
  if (challenge === undefined) throw acmeFailed('authorization', `the CA offered no http-01 challenge for ${name}`);
  const token = challenge.token;
  if (typeof token !== 'string' || !TOKEN.test(token)) throw acmeFailed('challenge', 'the CA sent a malformed http-01 token');
  tokens.add(token);
  store.set(token, keyAuthorization(token, session.account.thumbprint));
  if (challenge.status === 'pending') {
    await session.postJson('challenge', httpsUrl(challenge.url, 'challenge', 'challenge URL'), {});
  }
  session.log?.('acme: challenge answered, waiting for validation', { name });
  authz = await session.poll<Authorization>('authorization', url, ['pending'], checkAuthorization);
  if (authz.status !== 'valid') {
    const failed = authz.challenges.find((c) => c.error !== undefined)?.error;
    throw acmeFailed('authorization', `authorization for ${name} is ${authz.status}${problemText(failed)}`);
  }
}

/** The HTTP side of an ACME session: nonces, JWS signing, bounded bodies, polling. */
class Session {
  private nonce: string | undefined;
  private nonceUrl: string | undefined;
  private kid: string | undefined;
  private step: Step = 'directory';

  constructor(
    private readonly agent: https.Agent,
    readonly account: AccountKey,
    private readonly signal: AbortSignal,
    readonly log: AcmeOptions['log'],
  ) {}

  async directory(url: string): Promise<Directory> {
    const res = await this.request('directory', url, 'GET');
    if (res.status !== 200) throw acmeFailed('directory', `the directory answered HTTP ${res.status}${problemText(parseProblem(res))}`);
    const body = parseJson(res, 'directory');
    const entry = (key: string) => httpsUrl(body[key], 'directory', `directory ${key}`);
    const meta = body['meta'];
    const tos = isRecord(meta) && typeof meta['termsOfService'] === 'string' ? meta['termsOfService'] : undefined;
    return { newNonce: entry('newNonce'), newAccount: entry('newAccount'), newOrder: entry('newOrder'), termsOfService: tos };
  }

  /** RFC 8555 §7.3: newAccount returns 201 (created) or 200 (the key's existing account). */
  async register(directory: Directory, email: string | undefined): Promise<void> {
    this.nonceUrl = directory.newNonce;
    const payload = { termsOfServiceAgreed: true, ...(email !== undefined ? { contact: [`mailto:${email}`] } : {}) };
    const { res, json } = await this.postJson('newAccount', directory.newAccount, payload);
    if (res.status !== 200 && res.status !== 201) throw acmeFailed('newAccount', `unexpected HTTP ${res.status}`);
    if (json['status'] !== undefined && json['status'] !== 'valid') throw acmeFailed('newAccount', `the account is ${String(json['status'])}`);
    this.kid = httpsUrl(res.headers.location, 'newAccount', 'account URL (Location)');
    this.log?.('acme: account ready', { status: res.status });
  }

  async newOrder(directory: Directory, name: string): Promise<{ order: Order; orderUrl: string }> {
    const { res, json } = await this.postJson('newOrder', directory.newOrder, { identifiers: [{ type: 'dns', value: name }] });
    const order = checkOrder(json);
    if (order.authorizations.length === 0) throw acmeFailed('newOrder', 'the order lists no authorizations');
    this.log?.('acme: order created', { authorizations: order.authorizations.length });
    return { order, orderUrl: httpsUrl(res.headers.location, 'newOrder', 'order URL (Location)') };
  }

  /** A signed POST whose answer is JSON; `payload` undefined is POST-as-GET. */
  async postJson(step: Step, url: string, payload?: unknown): Promise<{ res: HttpResponse; json: Record<string, unknown> }> {
    const res = await this.post(step, url, payload, 'application/json');
    return { res, json: parseJson(res, step) };
  }

  /** A signed POST (RFC 8555 §6.2), retried with a fresh nonce on badNonce (§6.5). */
  async post(step: Step, url: string, payload: unknown, accept: string): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const nonce = this.nonce ?? (await this.freshNonce());
      this.nonce = undefined; // single use, whatever the answer
      const jws = signJws(this.account, { nonce, url, ...(this.kid !== undefined ? { kid: this.kid } : {}) }, payload);
      const res = await this.request(step, url, 'POST', JSON.stringify(jws), { 'content-type': 'application/jose+json', accept });
      if (res.status < 300) return res;
      const problem = parseProblem(res);
      if (problem.type === `${ERROR_PREFIX}badNonce` && attempt < MAX_BAD_NONCE_RETRIES) {
        this.log?.('acme: badNonce, retrying with a fresh nonce', { step, attempt: attempt + 1 });
        continue;
      }
      throw acmeFailed(step, `HTTP ${res.status}${problemText(problem)}`);
    }
  }

  /** POST-as-GET `url` until its status leaves `pending`, honouring Retry-After (bounded). */
  async poll<T extends { status: string }>(step: Step, url: string, pending: string[], check: (json: Record<string, unknown>) => T): Promise<T> {
    for (let round = 0; ; round++) {
      const { res, json } = await this.postJson(step, url);
      const value = check(json);
      if (!pending.includes(value.status)) return value;
      const wait = pollDelay(res.headers['retry-after'], round);
      this.log?.('acme: polling', { step, status: value.status, waitMs: wait });
      await delay(wait, undefined, { signal: this.signal });
    }
  }

  private async freshNonce(): Promise<string> {
    if (this.nonceUrl === undefined) throw acmeFailed('newNonce', 'no newNonce URL');
    const res = await this.request('newNonce', this.nonceUrl, 'HEAD');
    const nonce = this.nonce;
    this.nonce = undefined;
    if (res.status >= 300 || nonce === undefined) throw acmeFailed('newNonce', `no Replay-Nonce (HTTP ${res.status})`);
    return nonce;
  }

  private async request(step: Step, url: string, method: string, body?: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    this.step = step;
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    let res: HttpResponse;
    try {
      const signal = AbortSignal.any([this.signal, timeout]);
      res = await httpsRequest(this.agent, new URL(url), method, { 'user-agent': USER_AGENT, ...headers }, body, signal);
    } catch (err) {
      if (timeout.aborted && !this.signal.aborted) throw acmeFailed(step, `no answer within ${REQUEST_TIMEOUT_MS} ms`, err);
      throw err;
    }
    const nonce = res.headers['replay-nonce'];
    if (typeof nonce === 'string' && NONCE.test(nonce)) this.nonce = nonce;
    return res;
  }

  /** Any error of the issuance as ACME_FAILED naming the step it happened in. */
  failure(err: unknown, timedOut: string | undefined): PortholeError {
    if (err instanceof PortholeError && err.code === 'ACME_FAILED') return err;
    if (timedOut !== undefined) return acmeFailed(this.step, timedOut, err);
    if (this.signal.aborted) return acmeFailed(this.step, 'aborted', err);
    if (err instanceof PortholeError) return err;
    return acmeFailed(this.step, err instanceof Error ? err.message : String(err), err);
  }
}

function pollDelay(retryAfter: string | undefined, round: number): number {
  const backoff = Math.min(MIN_POLL_MS * 2 ** round, MAX_BACKOFF_MS);
  if (retryAfter === undefined) return backoff;
  // RFC 9110 §10.2.3: delay-seconds or an HTTP-date.
  const ms = /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter.trim()) * 1000 : Date.parse(retryAfter) - Date.now();
  if (!Number.isFinite(ms)) return backoff;
  return Math.min(Math.max(ms, MIN_POLL_MS), MAX_RETRY_AFTER_MS);
}

/** Leaf first; it must name `name`, certify `certKey`, and each certificate be signed by the next. */
function checkChain(pem: string, name: string, certKey: KeyObject): Omit<IssuedCert, 'termsOfService'> {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw acmeFailed('check', 'the CA served no PEM certificate');
  let certs: X509Certificate[];
  try {
    certs = blocks.map((block) => new X509Certificate(block));
  } catch (err) {
    throw acmeFailed('check', 'the CA served a certificate that does not parse', err);
  }
  const leaf = certs[0]!;
  if (leaf.checkHost(name, { wildcards: false }) === undefined) throw acmeFailed('check', `the issued certificate does not name ${name}`);
  const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });
  if (!spki(leaf.publicKey).equals(spki(createPublicKey(certKey)))) {
    throw acmeFailed('check', 'the issued certificate does not certify the requested key');
  }
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i]!.checkIssued(certs[i + 1]!) || !certs[i]!.verify(certs[i + 1]!.publicKey)) {
      throw acmeFailed('check', `certificate ${i + 1} of the served chain is not signed by the next one`);
    }
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime()) || notAfter.getTime() <= Date.now()) {
    throw acmeFailed('check', 'the issued certificate has an unreadable or past validity period');
  }
  return { certPem: blocks.map((b) => `${b.replace(/\r/g, '')}\n`).join(''), notBefore, notAfter };
}

function checkOptions(o: AcmeOptions, name: string, certKeyPem: string): Settings {
  const invalid = (message: string) => new PortholeError('INVALID_ARGUMENT', message);
  let url: URL;
  try {
    url = new URL(o.directoryUrl);
  } catch {
    throw invalid('invalid directoryUrl: not a URL');
  }
  if (url.protocol !== 'https:') throw invalid('invalid directoryUrl: https:// is required (the CA vouches for the certificate over it)');
  if (url.username !== '' || url.password !== '') throw invalid('invalid directoryUrl: credentials do not belong in the URL');
  if (o.ca !== undefined && typeof o.ca !== 'string') throw invalid('invalid ca: PEM text is required');
  if (typeof o.challenges?.set !== 'function' || typeof o.challenges?.delete !== 'function') {
    throw invalid('invalid challenges: an AcmeChallengeStore with set() and delete() is required');
  }
  const email = o.email;
  if (email !== undefined && (typeof email !== 'string' || !/^[^\s@<>(),;:"\\[\]]+@[A-Za-z0-9.-]+$/.test(email))) {
    throw invalid('invalid email: a plain address such as ops@example.com is required');
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2 ** 31 - 1) {
    throw invalid('invalid timeoutMs: a positive number of milliseconds is required');
  }
  const account = loadAccountKey(o.accountKeyPem);
  const certKey = loadEcKey(certKeyPem, 'certKeyPem');
  const spki = (key: KeyObject) => createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (spki(account.key).equals(spki(certKey))) {
    // RFC 8555 §11.1: the account key must not be certified; CAs refuse such a CSR.
    throw invalid('certKeyPem is the account key: use a separate key for the certificate');
  }
  return { directoryUrl: url.href, account, certKey, name: checkAcmeName(name), email, timeoutMs };
}

function parseJson(res: HttpResponse, step: Step): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw acmeFailed(step, `the CA answered HTTP ${res.status} with a body that is not JSON`);
  }
  if (!isRecord(value)) throw acmeFailed(step, 'the CA answered with JSON that is not an object');
  return value;
}

function parseProblem(res: HttpResponse): Problem {
  try {
    const value: unknown = JSON.parse(res.body.toString('utf8'));
    if (!isRecord(value)) return {};
    return {
      ...(typeof value['type'] === 'string' ? { type: value['type'] } : {}),
      ...(typeof value['detail'] === 'string' ? { detail: value['detail'] } : {}),
    };
  } catch {
    return {};
  }
}

function checkOrder(json: Record<string, unknown>): Order {
  const { status, authorizations, finalize, certificate, error } = json;
  if (typeof status !== 'string' || !Array.isArray(authorizations) || typeof finalize !== 'string') {
    throw acmeFailed('order', 'the CA sent a malformed order');
  }
  return {
    status,
    authorizations: authorizations.map(String),
    finalize,
    ...(typeof certificate === 'string' ? { certificate } : {}),
    ...(isRecord(error) ? { error: error as Problem } : {}),
  };
}

function checkAuthorization(json: Record<string, unknown>): Authorization {
  const { status, identifier, challenges } = json;
  if (typeof status !== 'string' || !Array.isArray(challenges) || !challenges.every(isRecord)) {
    throw acmeFailed('authorization', 'the CA sent a malformed authorization');
  }
  return {
    status,
    ...(isRecord(identifier) ? { identifier: identifier as Authorization['identifier'] } : {}),
    challenges: challenges.map((c) => ({
      type: String(c['type']),
      url: String(c['url']),
      status: String(c['status']),
      ...(typeof c['token'] === 'string' ? { token: c['token'] } : {}),
      ...(isRecord(c['error']) ? { error: c['error'] as Problem } : {}),
    })),
  };
}

function httpsUrl(value: unknown, step: Step, what: string): string {
  if (typeof value === 'string') {
    try {
      if (new URL(value).protocol === 'https:') return value;
    } catch {}
  }
  throw acmeFailed(step, `the CA sent no https ${what}`);
}

/**
 * ": <type> — <detail>" for a message. The detail is the CA's text, so it is cut short and
 * stripped of control characters; a badNonce detail may quote the nonce, so it is dropped.
 */
function problemText(problem: Problem | undefined): string {
  if (problem === undefined) return '';
  const type = typeof problem.type === 'string' ? clean(problem.type, 100) : undefined;
  const detail = typeof problem.detail === 'string' && type !== `${ERROR_PREFIX}badNonce` ? clean(problem.detail, 300) : undefined;
  if (type === undefined && detail === undefined) return '';
  return `: ${[type, detail].filter((x) => x !== undefined && x !== '').join(' — ')}`;
}

function clean(text: string, max: number): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function acmeFailed(step: Step, message: string, cause?: unknown): PortholeError {
  return new PortholeError('ACME_FAILED', `ACME ${step} failed: ${message}`, cause === undefined ? {} : { cause });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
