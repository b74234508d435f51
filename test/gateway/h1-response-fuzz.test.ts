// Differential fuzz of porthole's upstream response parser (src/gateway/h1-response.ts) against
// Node's own llhttp, strict as Node 20's http client runs it. The parser sits where a response
// read two ways means a desync, so: whenever ours accepts a response, llhttp must accept it too
// and read the same status, fields, body, trailers and end; ours throws nothing but ParseError;
// and how the bytes are split across reads changes nothing. Ours refusing what llhttp accepts is
// allowed (fail closed) and only counted. Seeded, so a failure reproduces: the case is printed
// minimised, as a JSON string.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { type ParsedHead, ParseError, ResponseParser, type ResponseSink } from '../../src/gateway/h1-response.js';

const SEED = 0x9017_4013;
const CASES = 2000;
/** The pool's head limit (h1-pool.ts), given to both parsers. */
const MAX_HEAD = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// What a parser made of the bytes.

interface Message {
  status: number;
  statusText: string;
  /** [name, value, …]; names lower-cased, since llhttp and ours both keep the sender's case. */
  fields: string[];
}

interface Outcome {
  /** Refused: our ParseError's message or llhttp's error code. */
  error?: string;
  /** 1xx heads before the final response. */
  infos: Message[];
  head?: Message;
  keepAlive: boolean;
  body: Buffer;
  trailers: string[];
  /** Bytes that belonged to the response (the rest is not its business). */
  end: number;
}

function message(status: number, statusText: string, fields: readonly string[]): Message {
  return { status, statusText, fields: fields.map((f, i) => (i % 2 === 0 ? f.toLowerCase() : f)) };
}

/** Ours, fed `bytes` in the pieces `cuts` makes, the target closing after the last. */
function ours(bytes: Buffer, cuts: readonly number[]): Outcome {
  const out: Outcome = { infos: [], keepAlive: false, body: Buffer.alloc(0), trailers: [], end: 0 };
  const body: Buffer[] = [];
  const sink: ResponseSink = {
    info: (h: ParsedHead) => out.infos.push(message(h.status, h.statusText, h.fields)),
    head: (h: ParsedHead) => {
      out.head = message(h.status, h.statusText, h.fields);
      out.keepAlive = h.keepAlive;
    },
    body: (chunk) => body.push(Buffer.from(chunk)), // a view valid only during the call
    end: (trailers) => {
      out.trailers = message(0, '', trailers).fields;
    },
  };
  const parser = new ResponseParser(sink, MAX_HEAD);
  parser.reset(false);
  try {
    let from = 0;
    for (const to of [...cuts, bytes.length]) {
      out.end += parser.execute(bytes.subarray(from, to));
      from = to;
      if (parser.done) break;
    }
    if (!parser.done) parser.finish(); // throws unless the body runs until close
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    return { ...out, error: err.message };
  }
  out.body = Buffer.concat(body);
  return out;
}

// Node's in-process binding of llhttp, as _http_client.js drives it.
interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code: string });
  finish(): undefined | (Error & { code: string });
  close(): void;
}
interface LlhttpCtor {
  new (): LlhttpParser;
  RESPONSE: number;
  kLenientNone: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpCtor };

/**
 * llhttp, fed one byte at a time so that where the final response ends is known exactly (it
 * would read on into the next message otherwise), the target closing after the last byte.
 */
function reference(bytes: Buffer): Outcome {
  const out: Outcome = { infos: [], keepAlive: false, body: Buffer.alloc(0), trailers: [], end: 0 };
  const body: Buffer[] = [];
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {}, MAX_HEAD, HTTPParser.kLenientNone);
  const on = parser as unknown as Record<number, (...args: never[]) => unknown>;
  let flushed: string[] = [];
  let current: Message | undefined;
  let done = false;
  let upgrade = false;
  // Heads beyond 32 fields, and trailers, arrive in batches before the callback that uses them.
  on[HTTPParser.kOnHeaders] = (fields: string[]) => void flushed.push(...fields);
  on[HTTPParser.kOnHeadersComplete] = (
    _major: number,
    _minor: number,
    fields: string[] | undefined,
    _method: unknown,
    _url: unknown,
    status: number,
    statusText: string,
    isUpgrade: boolean,
    keepAlive: boolean,
  ) => {
    current = message(status, statusText, fields ?? flushed);
    flushed = [];
    upgrade ||= isUpgrade;
    if (status >= 200) out.keepAlive = keepAlive;
    return status < 200 ? 1 : 0; // as Node's http client: a 1xx has no body (1 = skip it)
  };
  on[HTTPParser.kOnBody] = (chunk: Buffer) => void body.push(Buffer.from(chunk));
  on[HTTPParser.kOnMessageComplete] = () => {
    if (current!.status < 200) out.infos.push(current!);
    else {
      out.head = current;
      out.trailers = message(0, '', flushed).fields;
      done = true;
    }
    flushed = [];
  };
  try {
    for (let i = 0; i < bytes.length && !done; i++) {
      const r = parser.execute(bytes.subarray(i, i + 1));
      if (typeof r !== 'number') return { ...out, error: r.code };
      if (upgrade) return { ...out, error: 'upgrade' };
      out.end = i + 1;
    }
    if (!done) {
      const r = parser.finish();
      if (r !== undefined) return { ...out, error: r.code };
      if (!done) return { ...out, error: 'incomplete' };
    }
  } finally {
    parser.close();
  }
  out.body = Buffer.concat(body);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Responses: a grammar of valid pieces, then mutations known to matter for smuggling.

type Rng = ReturnType<typeof rng>;

/** mulberry32: small, seedable, good enough to spread cases. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number): number => Math.floor(next() * n),
    chance: (p: number): boolean => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}

interface Line {
  text: string;
  eol: string;
}

interface Chunk {
  size: string;
  eol: string;
  data: string;
  after: string;
}

interface ChunkedBody {
  kind: 'chunked';
  chunks: Chunk[];
  last: string;
  trailers: Line[];
  end: string;
}

type Body = { kind: 'length' | 'close'; data: string } | ChunkedBody;

/** A response as editable pieces (latin1 strings: one char per byte). */
interface Draft {
  interim: string;
  status: Line;
  fields: Line[];
  headEnd: string;
  body: Body;
  trailing: string;
}

const CRLF = '\r\n';
const line = (text: string): Line => ({ text, eol: CRLF });

const COMMON_FIELDS: readonly [string, readonly string[]][] = [
  ['Content-Type', ['text/html; charset=utf-8', 'application/json', 'text/plain']],
  ['Date', ['Tue, 15 Nov 1994 08:12:31 GMT']],
  ['Server', ['app/1.0', '', '(x) y']],
  ['Cache-Control', ['no-store', 'max-age=0, must-revalidate']],
  ['Set-Cookie', ['a=b; Path=/; HttpOnly', 'c="d e"; Secure']],
  ['Vary', ['Accept-Encoding', '*']],
  ['ETag', ['"abc"', 'W/"x"']],
  ['X-Request-Id', ['0f3a', '  padded  ', '\tx\t', 'caf\xe9', 'a, b,, c']],
  ['Connection', ['keep-alive', 'close', 'Keep-Alive', 'upgrade', 'x, close']],
  ['Keep-Alive', ['timeout=5, max=100', 'timeout=1']],
  ['link', ['</s.css>; rel=preload']],
];

function randomData(r: Rng, max: number): string {
  if (r.chance(0.15)) return r.pick(['HTTP/1.1 200 OK\r\n\r\n', '0\r\n\r\n', '\r\n', 'HTTP/1.1 404 X\r\nContent-Length: 0\r\n\r\n']);
  let s = '';
  const n = r.int(max + 1);
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.chance(0.8) ? 0x61 + r.int(26) : r.int(256));
  return s;
}

function randomFields(r: Rng, n: number): Line[] {
  const out: Line[] = [];
  for (let i = 0; i < n; i++) {
    const [name, values] = r.pick(COMMON_FIELDS);
    out.push(line(`${r.chance(0.2) ? name.toLowerCase() : name}:${r.pick([' ', '', '  ', '\t'])}${r.pick(values)}`));
  }
  return out;
}

function chunkedBody(r: Rng): ChunkedBody {
  const chunks: Chunk[] = [];
  for (let n = r.int(4); n > 0; n--) {
    const data = randomData(r, 20) || 'x';
    chunks.push({ size: data.length.toString(16), eol: CRLF, data, after: CRLF });
  }
  const trailers = r.chance(0.3) ? [line('X-Trailer: t'), line('Server-Timing: db;dur=5')].slice(0, 1 + r.int(2)) : [];
  return { kind: 'chunked', chunks, last: '0', trailers, end: CRLF };
}

function interim(r: Rng): string {
  let s = '';
  for (let n = r.chance(0.15) ? 1 + r.int(2) : 0; n > 0; n--) {
    const status = r.pick(['100 Continue', '102 Processing', '103 Early Hints']);
    s += `HTTP/1.1 ${status}${CRLF}${r.chance(0.5) ? `Link: </a.js>; rel=preload${CRLF}` : ''}${CRLF}`;
  }
  return s;
}

function draft(r: Rng): Draft {
  const status = r.pick(['200 OK', '200 OK', '201 Created', '204 No Content', '206 Partial', '301 Moved', '304 Not Modified', '404 Not Found', '500 ', '299 x\ty']);
  const fields = randomFields(r, r.int(5));
  const kind = r.pick(['length', 'length', 'chunked', 'chunked', 'close'] as const);
  let body: Body;
  if (kind === 'chunked') {
    body = chunkedBody(r);
    fields.splice(r.int(fields.length + 1), 0, line('Transfer-Encoding: chunked'));
  } else {
    body = { kind, data: randomData(r, 40) };
    if (kind === 'length') fields.splice(r.int(fields.length + 1), 0, line(`Content-Length: ${body.data.length}`));
  }
  const version = r.chance(0.85) ? '1.1' : '1.0';
  return { interim: interim(r), status: line(`HTTP/${version} ${status}`), fields, headEnd: CRLF, body, trailing: '' };
}

function serialize(d: Draft): Buffer {
  let s = d.interim + d.status.text + d.status.eol;
  for (const f of d.fields) s += f.text + f.eol;
  s += d.headEnd;
  const b = d.body;
  if (b.kind === 'chunked') {
    for (const c of b.chunks) s += c.size + c.eol + c.data + c.after;
    s += b.last + CRLF;
    for (const t of b.trailers) s += t.text + t.eol;
    s += b.end;
  } else s += b.data;
  return Buffer.from(s + d.trailing, 'latin1');
}

// Mutation helpers.
const CTLS = ['\0', '\x01', '\x08', '\x0b', '\x0c', '\r', '\n', '\x1b', '\x7f'];
const insertAt = (s: string, i: number, c: string): string => s.slice(0, i) + c + s.slice(i);
const fieldIndex = (d: Draft, name: RegExp): number => d.fields.findIndex((f) => name.test(f.text));

function setField(d: Draft, r: Rng, name: RegExp, text: string): void {
  const i = fieldIndex(d, name);
  if (i === -1) d.fields.splice(r.int(d.fields.length + 1), 0, line(text));
  else d.fields[i] = line(text);
}

/** Makes the body Content-Length framed (if it is not) and returns its data. */
function asLength(d: Draft, r: Rng): string {
  if (d.body.kind !== 'length') {
    d.fields = d.fields.filter((f) => !/^transfer-encoding:/i.test(f.text));
    d.body = { kind: 'length', data: randomData(r, 30) };
  }
  setField(d, r, /^content-length:/i, `Content-Length: ${d.body.data.length}`);
  return d.body.data;
}

/** Makes the body chunked (if it is not) and returns it. */
function asChunked(d: Draft, r: Rng): ChunkedBody {
  let b = d.body;
  if (b.kind !== 'chunked') {
    d.fields = d.fields.filter((f) => !/^content-length:/i.test(f.text));
    b = d.body = chunkedBody(r);
    setField(d, r, /^transfer-encoding:/i, 'Transfer-Encoding: chunked');
  }
  if (b.chunks.length === 0) b.chunks.push({ size: '3', eol: CRLF, data: 'abc', after: CRLF });
  return b;
}

function someLine(d: Draft, r: Rng): Line {
  if (d.fields.length === 0) d.fields.push(...randomFields(r, 1));
  return r.pick(d.fields);
}

type Mutation = (d: Draft, r: Rng) => void;

const MUTATIONS: Record<string, Mutation> = {
  'cl-repeated': (d, r) => {
    const data = asLength(d, r);
    const n = r.pick([data.length, data.length, data.length + 1, Math.max(0, data.length - 1)]);
    d.fields.splice(r.int(d.fields.length + 1), 0, line(`${r.pick(['Content-Length', 'content-length'])}: ${n}`));
  },
  'cl-list': (d, r) => {
    const n = asLength(d, r).length;
    setField(d, r, /^content-length:/i, `Content-Length: ${r.pick([`${n}, ${n}`, `${n},${n}`, `${n}, ${n + 1}`, `${n},`, `,${n}`])}`);
  },
  'cl-value': (d, r) => {
    const n = asLength(d, r).length;
    const v = r.pick([`+${n}`, `-${n}`, `0x${n.toString(16)}`, `00${n}`, `${'0'.repeat(15)}${n % 10}`, `${n}.0`, `${n} ${n}`, '', ' ', `${n}\t`, `\t${n}`, `${n} `, '99999999999999999999', '18446744073709551617', '9007199254740993', `${n}a`, `"${n}"`]);
    setField(d, r, /^content-length:/i, `Content-Length: ${v}`);
  },
  'cl-body-mismatch': (d, r) => {
    const data = asLength(d, r);
    if (d.body.kind === 'length') d.body.data = r.chance(0.5) ? data.slice(0, -1) : data + r.pick(['z', 'HTTP/1.1 200 OK\r\n\r\n']);
  },
  'cl-with-te': (d, r) => {
    const b = asChunked(d, r);
    d.fields.splice(r.int(d.fields.length + 1), 0, line(`Content-Length: ${r.pick([0, 5, b.chunks[0]!.data.length])}`));
  },
  'te-value': (d, r) => {
    asChunked(d, r);
    const v = r.pick(['chunked, gzip', 'gzip, chunked', 'Chunked', 'CHUNKED', ' chunked', '\tchunked', 'chunked\t', 'chunked ', 'chunked \t', 'chunked,', ',chunked', 'chunked, chunked', 'identity', 'chunked;q=1', '"chunked"', 'xchunked', 'chunkedx', 'chunk', '', 'gzip']);
    setField(d, r, /^transfer-encoding:/i, `${r.pick(['Transfer-Encoding', 'transfer-encoding', 'TRANSFER-ENCODING'])}:${r.pick([' ', ''])}${v}`);
  },
  'te-repeated': (d, r) => {
    asChunked(d, r);
    d.fields.splice(r.int(d.fields.length + 1), 0, line(`Transfer-Encoding: ${r.pick(['chunked', 'gzip', 'identity', ''])}`));
  },
  'te-on-close-body': (d, r) => {
    d.fields = d.fields.filter((f) => !/^(content-length|transfer-encoding):/i.test(f.text));
    d.body = { kind: 'close', data: randomData(r, 30) };
    d.fields.push(line(`Transfer-Encoding: ${r.pick(['gzip', 'identity', 'chunked\t', 'chunked;x'])}`));
  },
  'obs-fold': (d, r) => {
    const i = r.int(d.fields.length + 1);
    d.fields.splice(i, 0, line(`${r.pick([' ', '\t', '  '])}${r.pick(['folded', 'chunked', 'Content-Length: 0', ''])}`));
  },
  'ws-before-colon': (d, r) => {
    const f = someLine(d, r);
    const c = f.text.indexOf(':');
    if (c > 0) f.text = insertAt(f.text, c, r.pick([' ', '\t', ' \t']));
  },
  'ws-before-name': (d, r) => {
    const f = someLine(d, r);
    f.text = r.pick([' ', '\t']) + f.text;
  },
  'bare-eol': (d, r) => {
    const where = r.int(3);
    const eol = r.pick(['\n', '\r', '\r\r\n', '\n\r']);
    if (where === 0) d.status.eol = eol;
    else if (where === 1) someLine(d, r).eol = eol;
    else d.headEnd = eol;
  },
  'lf-only-head': (d) => {
    d.status.eol = '\n';
    for (const f of d.fields) f.eol = '\n';
    d.headEnd = '\n';
  },
  'ctl-in-value': (d, r) => {
    const f = someLine(d, r);
    const c = f.text.indexOf(':');
    f.text = insertAt(f.text, c + 1 + r.int(f.text.length - c), r.pick(CTLS));
  },
  'ctl-in-name': (d, r) => {
    const f = someLine(d, r);
    f.text = insertAt(f.text, r.int(Math.max(1, f.text.indexOf(':'))), r.pick(CTLS));
  },
  'bad-name': (d, r) => {
    d.fields.splice(r.int(d.fields.length + 1), 0, line(r.pick([': empty-name', 'No-Colon', 'X(y): 1', 'X"y": 1', 'X/y: 1', 'X@y: 1', 'Caf\xe9: 1', 'X y: 1', 'X-\x7f: 1', '::', 'X:: y'])));
  },
  'value-chars': (d, r) => {
    d.fields.splice(r.int(d.fields.length + 1), 0, line(`X-Value: ${r.pick(['\xe9\xff\x80', 'a\tb', '\t', ' ', '""', 'a\x7fb', '\\', '=?utf-8?', '\xa0x\xa0'])}`));
  },
  'status-line': (d, r) => {
    d.status.text = r.pick(['HTTP/1.1 200', 'HTTP/1.1 200 ', 'HTTP/1.1  200 OK', 'HTTP/1.1 200  OK', 'HTTP/1.2 200 OK', 'HTTP/2.0 200 OK', 'HTTP/2 200', 'http/1.1 200 OK', 'HTTP/1.1 20 OK', 'HTTP/1.1 2000 OK', 'HTTP/1.1 099 OK', 'HTTP/1.1 000 OK', 'HTTP/1.1 600 OK', 'HTTP/1.1 999 X', 'HTTP/1.1 200 O\x01K', 'HTTP/1.1 200\tOK', 'HTTP/1.1 200 OK\x7f', 'HTTP/1.1 200 \xe9\xff', ' HTTP/1.1 200 OK', 'HTTP/1.1 101 Switching Protocols', 'HTTP/1.1 199 Odd', 'HTTP/1.1 150 Odd', 'HTTP/0.9 200 OK', 'HTTP/1.10 200 OK', 'HTTP/1.1 +20 OK', 'ICE/1.1 200 OK', 'HTTP/1.1 200 OK\0']);
  },
  'leading-bytes': (d, r) => {
    d.interim = r.pick(['\r\n', '\n', ' ', '\0']) + d.interim;
  },
  'interim-with-body': (d, r) => {
    const data = randomData(r, 10);
    d.interim += `HTTP/1.1 ${r.pick(['100', '102', '103', '150', '199'])} X\r\n${r.pick([`Content-Length: ${data.length}`, 'Transfer-Encoding: chunked', 'X: y'])}\r\n\r\n${r.chance(0.5) ? data : ''}`;
  },
  'no-body-status': (d, r) => {
    d.status.text = `HTTP/1.1 ${r.pick(['204 No Content', '304 Not Modified'])}`;
  },
  'chunk-size': (d, r) => {
    const c = r.pick(asChunked(d, r).chunks);
    const hex = c.data.length.toString(16);
    c.size = r.pick([hex.toUpperCase(), `000${hex}`, hex.padStart(13, '0'), hex.padStart(14, '0'), hex.padStart(20, '0'), `1${'0'.repeat(16)}`, 'f'.repeat(17), 'f'.repeat(13), `-${hex}`, `0x${hex}`, `+${hex}`, `${hex} `, ` ${hex}`, `${hex}\t`, '', 'g', `${hex}g`, `${hex}\0`]);
  },
  'chunk-ext': (d, r) => {
    const b = asChunked(d, r);
    const ext = r.pick([';a', ';a=b', ';a="b c"', ';a=b;c=d', '; a=b', ' ;a=b', '\t;a', ';a = b', ';a= b', ';a =b', ';a=b ', ';a=b\t', ';', ';=b', ';a="\\"x"', ';a=\xe9', ';a="\xe9"', ';a="\t"', ';a;', ';a=b,c', ';a="', ';a=""', ';a=\x01', ';a="\x01"', ';a="\x7f"', ';a\x7f', `;${'e'.repeat(5000)}`]);
    if (r.chance(0.5)) r.pick(b.chunks).size += ext;
    else b.last += ext;
  },
  'chunk-eol': (d, r) => {
    const c = r.pick(asChunked(d, r).chunks);
    if (r.chance(0.5)) c.eol = r.pick(['\n', '\r', '\r\r\n']);
    else c.after = r.pick(['', '\n', '\r', 'x\r\n', '\r\n\r\n', '\rx']);
  },
  'chunk-data-mismatch': (d, r) => {
    const c = r.pick(asChunked(d, r).chunks);
    c.data = r.chance(0.5) ? c.data.slice(0, -1) : c.data + r.pick(['z', '\r\n']);
  },
  'last-chunk': (d, r) => {
    const b = asChunked(d, r);
    if (r.chance(0.6)) b.last = r.pick(['00', '0000000000000', '0 ', ' 0', '', '0\t']);
    else b.end = r.pick(['', '\n', '\r', 'x']);
  },
  trailers: (d, r) => {
    const b = asChunked(d, r);
    b.trailers.push(line(r.pick(['X-T: v', 'Content-Length: 5', 'Transfer-Encoding: chunked', ' folded', 'X-T : v', 'X-T: a\0b', 'X-T: a\rb', 'Bad Name: v', 'X-T:', 'X-T: \xe9'])));
    if (r.chance(0.2)) b.trailers.at(-1)!.eol = r.pick(['\n', '\r']);
  },
  'trailing-bytes': (d, r) => {
    d.trailing = r.pick(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'junk', '\r\n', '\0', 'HTTP/1.1 200 OK\r\n']);
  },
  'huge-head': (d, r) => {
    d.fields.push(line(`X-Big: ${'b'.repeat(r.pick([20_000, MAX_HEAD + 100]))}`));
  },
};

const KINDS = Object.keys(MUTATIONS);

/** Case `i`: a valid response, or one with one to three mutations. */
function generate(i: number): { kinds: string[]; bytes: Buffer; cuts: number[] } {
  const r = rng(SEED + i);
  const d = draft(r);
  const kinds: string[] = [];
  if (r.chance(0.8)) {
    for (let n = 1 + (r.chance(0.3) ? r.int(3) : 0); n > 0; n--) {
      const kind = r.pick(KINDS);
      MUTATIONS[kind]!(d, r);
      kinds.push(kind);
    }
  }
  const bytes = serialize(d);
  const cuts = Array.from({ length: r.int(3) }, () => r.int(bytes.length + 1)).sort((a, b) => a - b);
  return { kinds: kinds.length === 0 ? ['valid'] : kinds, bytes, cuts };
}

// ---------------------------------------------------------------------------------------------
// Properties.

/** Why ours and llhttp (or ours and itself, split) disagree, or null. */
function disagreement(a: Outcome, b: Outcome): string | null {
  if (b.error !== undefined) return `the reference refused it (${b.error})`;
  for (const key of ['infos', 'head', 'body', 'trailers', 'end'] as const)
    if (!isDeepStrictEqual(a[key], b[key])) return `${key}: ${show(a[key])} vs ${show(b[key])}`;
  return null;
}

function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

/** JSON, with DEL and the upper half escaped too (JSON.stringify leaves them invisible). */
const show = (v: unknown): string =>
  JSON.stringify(Buffer.isBuffer(v) ? v.toString('latin1') : v).replace(/[\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);

/** What is wrong with case `bytes` (split at `cuts`), or null. Throws if ours throws anything but ParseError. */
function check(bytes: Buffer, cuts: readonly number[]): string | null {
  const whole = ours(bytes, []);
  const split = ours(bytes, cuts);
  if ((whole.error === undefined) !== (split.error === undefined)) return `split at ${cuts}: ${whole.error ?? 'accepted'} vs ${split.error ?? 'accepted'}`;
  if (whole.error !== undefined) return null;
  const bySplit = disagreement(split, whole);
  if (bySplit !== null) return `split at ${cuts}: ${bySplit}`;
  const ref = reference(bytes);
  const byRef = disagreement(whole, ref);
  if (byRef !== null) return `ours accepts, llhttp disagrees: ${byRef}`;
  // Reusing a connection llhttp would close is how a desync starts; the other way is safe.
  if (whole.keepAlive && !ref.keepAlive) return 'ours keeps alive a connection llhttp would close';
  return null;
}

/** Shrinks a failing case (greedy: drop spans, then single bytes) while it still fails. */
function minimise(bytes: Buffer, fails: (b: Buffer) => boolean): Buffer {
  let cur = bytes;
  for (let span = Math.max(1, cur.length >> 1); span >= 1; span >>= 1) {
    for (let i = 0; i + span <= cur.length; ) {
      const next = Buffer.concat([cur.subarray(0, i), cur.subarray(i + span)]);
      if (fails(next)) cur = next;
      else i += span;
    }
  }
  return cur;
}

describe('upstream response parser: differential fuzz against llhttp', () => {
  it(`agrees with llhttp on every response it accepts (${CASES} seeded cases)`, (t) => {
    const failures: string[] = [];
    const refused = new Map<string, number>(); // ours refuses, llhttp accepts (fail closed)
    let accepted = 0;
    let bothRefused = 0;
    for (let i = 0; i < CASES && failures.length < 5; i++) {
      const { kinds, bytes, cuts } = generate(i);
      const problem = check(bytes, cuts);
      if (problem !== null) {
        const cutsFree = check(bytes, []) !== null;
        const small = minimise(bytes, (b) => check(b, cutsFree ? [] : cuts.filter((c) => c <= b.length)) !== null);
        failures.push(`case ${i} [${kinds}] ${problem}\n  input: ${show(bytes)}\n  minimised: ${show(small)} → ${check(small, cutsFree ? [] : cuts.filter((c) => c <= small.length))}`);
        continue;
      }
      if (ours(bytes, []).error === undefined) accepted++;
      else if (reference(bytes).error !== undefined) bothRefused++;
      else for (const kind of kinds) refused.set(kind, (refused.get(kind) ?? 0) + 1);
    }
    t.diagnostic(`accepted by both: ${accepted}, refused by both: ${bothRefused}`);
    const byKind = [...refused].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
    t.diagnostic(`refused by ours only (fail closed), by mutation: ${byKind.join(', ') || 'none'}`);
    assert.deepEqual(failures, []);
  });

  it('refuses what this fuzz found llhttp reads otherwise (minimised)', () => {
    const cases: [string, string][] = [
      // llhttp: not chunked, the body runs until close; read as chunks it would be a desync.
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 'HTAB after'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\t\r\n\r\nabc', 'HTAB after'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc', 'Content-Length'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc', 'Content-Length'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 ;a=b\r\nabc\r\n0\r\n\r\n', 'chunk size'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3; a=b\r\nabc\r\n0\r\n\r\n', 'chunk size'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0;\r\n\r\n', 'chunk size'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length:\r\n\r\n', 'trailers'],
    ];
    for (const [text, error] of cases) {
      const bytes = Buffer.from(text, 'latin1');
      assert.match(String(ours(bytes, []).error), new RegExp(error), text);
    }
    assert.equal(reference(Buffer.from(cases[0]![0], 'latin1')).body.toString(), '3\r\nabc\r\n0\r\n\r\n');
    // What stays accepted, and agreed on: extensions and trailers in their strict form.
    const fine = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked \r\n\r\n3;a=b;c="d \\" e"\r\nabc\r\n0;x\r\nX-T: v\r\n\r\n';
    assert.equal(check(Buffer.from(fine, 'latin1'), [20, 50]), null);
    assert.equal(ours(Buffer.from(fine, 'latin1'), []).body.toString(), 'abc');
  });

  it('the harness can fail: it sees a body, an end or a refusal that differs', () => {
    const ok = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n', 'latin1');
    assert.equal(check(ok, [5, 30]), null);
    const mine = ours(ok, []);
    const ref = reference(ok);
    assert.equal(mine.end, 40);
    assert.match(String(disagreement(mine, { ...ref, end: ok.length })), /^end/);
    assert.match(String(disagreement(mine, { ...ref, body: Buffer.from('ok!') })), /^body/);
    assert.match(String(disagreement(mine, { ...ref, error: 'HPE_X' })), /refused/);
  });
});
