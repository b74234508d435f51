// The relay's side of a desk's registration (docs/relay-protocol.md §3): challenge,
// verify both proofs against this TLS connection, claim the name, answer. Returns the
// registered name and leaves the socket ready for the multiplexer.
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import {
  type Challenge,
  checkSecretProof,
  encodeMessage,
  EXPORTER_LABEL,
  EXPORTER_LENGTH,
  PROTOCOL_VERSION,
  readMessage,
  type Refused,
  transcript,
  verifyTranscript,
} from '../protocol/handshake.js';
import { isPortholeError } from '../errors.js';
import { validateSubdomain } from './names.js';
import type { Registry } from './registry.js';

export type HandshakeOutcome =
  | { ok: true; name: string; publicKey: string; rest: Buffer }
  /** A proven `release`: the name is freed (and held back); answer and close. */
  | { ok: 'released'; name: string | undefined; publicKey: string }
  | { ok: false; refused: Refused; audit: string };

export interface RelayHandshakeContext {
  relayName: string;
  /** Every secret this relay accepts (the configured one; the dev default on loopback dev relays). */
  secrets: readonly string[];
  registry: Registry;
  timeoutMs: number;
}

function readOne(socket: TLSSocket, timeoutMs: number): Promise<{ message: unknown; rest: Buffer } | { error: string }> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (r: { message: unknown; rest: Buffer } | { error: string }) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const r = readMessage(buf);
      if (r.status === 'message') done({ message: r.message, rest: r.rest });
      else if (r.status === 'invalid') done({ error: r.reason });
    };
    const onClose = () => done({ error: 'connection closed during the handshake' });
    const timer = setTimeout(() => done({ error: 'handshake timed out' }), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}

function refuse(code: string, message: string, audit = message): HandshakeOutcome {
  return { ok: false, refused: { type: 'error', code, message }, audit };
}

export async function relayHandshake(socket: TLSSocket, ctx: RelayHandshakeContext): Promise<HandshakeOutcome> {
  const nonce = randomBytes(32).toString('base64url');
  const challenge: Challenge = { type: 'challenge', version: PROTOCOL_VERSION, relay: ctx.relayName, nonce };
  socket.write(encodeMessage(challenge));
  const got = await readOne(socket, ctx.timeoutMs);
  if ('error' in got) return refuse('TUNNEL_PROTOCOL_ERROR', got.error);
  const m = got.message as Record<string, unknown>;
  const kind = m['type'];
  if ((kind !== 'register' && kind !== 'release') || m['version'] !== PROTOCOL_VERSION) {
    return refuse('TUNNEL_PROTOCOL_ERROR', `expected register or release, version ${PROTOCOL_VERSION}`);
  }
  const { publicKey, subdomain, signature, secretProof } = m;
  if (
    typeof publicKey !== 'string' ||
    typeof signature !== 'string' ||
    typeof secretProof !== 'string' ||
    (subdomain !== null && typeof subdomain !== 'string')
  ) {
    return refuse('TUNNEL_PROTOCOL_ERROR', 'malformed register message');
  }
  const exporter = socket.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0));
  const t = transcript(ctx.relayName, subdomain, nonce, exporter);
  // Check every accepted secret, always all of them: no early exit to time.
  let secretOk = false;
  for (const s of ctx.secrets) if (checkSecretProof(s, t, secretProof)) secretOk = true;
  if (!secretOk) return refuse('REGISTRATION_DENIED', 'registration secret not accepted', 'bad registration secret');
  if (!verifyTranscript(publicKey, t, signature)) {
    return refuse('REGISTRATION_DENIED', 'identity proof not accepted', 'bad identity signature');
  }
  try {
    if (kind === 'release') return { ok: 'released', name: ctx.registry.release(publicKey), publicKey };
    const requested = subdomain === null ? undefined : validateSubdomain(subdomain);
    const reg = ctx.registry.claim(publicKey, requested);
    return { ok: true, name: reg.name, publicKey, rest: got.rest };
  } catch (err) {
    // The name rules' answers go to the desk; anything else (the store cannot be written, a
    // bug) is the relay's own trouble: the desk is told to come back later, the audit log says why.
    if (isPortholeError(err) && NAME_CODES.has(err.code)) return refuse(err.code, err.message);
    return {
      ok: false,
      refused: { type: 'error', code: 'RATE_LIMITED', message: 'the relay cannot register names right now', retryAfter: 60 },
      audit: `registry: ${(err as Error).message}`,
    };
  }
}

/** Refusals by the name rules (registry.ts), passed to the desk as they are. */
const NAME_CODES = new Set(['SUBDOMAIN_INVALID', 'SUBDOMAIN_TAKEN', 'SUBDOMAIN_HELD']);
