// Strict, incremental parser for the target's HTTP/1.1 responses (RFC 9112), used by the
// upstream client (h1-pool.ts). It exists so that response bodies can be relayed as views of
// the socket's read buffer instead of a fresh copy per chunk (docs/performance.md §7).
//
// Fail closed: anything a lenient parser might read two ways is a ParseError, which the proxy
// answers with 502 (before the head) or a truncated response (after it), and the connection is
// never reused. That covers bare CR or LF, obs-fold, whitespace before the colon, control
// characters in values, Content-Length with Transfer-Encoding, more than one Content-Length,
// transfer codings other than a lone `chunked`, a trailing HTAB in either, framing fields in
// trailers, malformed chunk sizes or extensions and oversized heads. Differentially fuzzed
// against llhttp: test/gateway/h1-response-fuzz.test.ts.
//
// Framing (RFC 9112 §6.3): no body for a HEAD request, 1xx, 204 and 304; `chunked` with
// trailers; Content-Length; otherwise the body runs until the target closes the connection.

export class ParseError extends Error {
  readonly code = 'UPSTREAM_PARSE';
}

export interface ParsedHead {
  status: number;
  statusText: string;
  /** Flat [name, value, …] list as the target sent it (case, order and repeats kept). */
  fields: string[];
  /** Content-Length when the body is length-delimited, else -1. */
  length: number;
  chunked: boolean;
  /** The connection may carry another exchange after this one. */
  keepAlive: boolean;
  /** A `Keep-Alive: timeout=N` hint, in ms. */
  keepAliveMs: number | undefined;
}

/** Where the parser delivers a response. `body` gets a view that is valid only during the call. */
export interface ResponseSink {
  info(head: ParsedHead): void;
  head(head: ParsedHead): void;
  body(chunk: Buffer): void;
  end(trailers: string[]): void;
}

enum State {
  Head,
  Length,
  UntilClose,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  Done,
}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
/** RFC 9110 token (field names, methods) and field-value characters; h1-pool.ts checks requests with them. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// Chunk extensions as `;name[=token|quoted-string]` with none of the whitespace (BWS) RFC 9112
// tolerates: llhttp refuses `1 ;a` and `1; a`, so reading them would be reading them differently.
const CHUNK_SIZE =
  /^([0-9A-Fa-f]{1,13})(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*$/;
/** Fields that frame the body: never in trailers, never with a trailing HTAB. */
const FRAMING_FIELD = /^(?:content-length|transfer-encoding)$/i;
const DIGITS = /^\d{1,16}$/;
/** Longest chunk-size line (with extensions) accepted. */
const MAX_CHUNK_LINE = 4096;

export class ResponseParser {
  private state = State.Done;
  private pending: Buffer | null = null;
  private remaining = 0;
  private headRequest = false;
  private trailers: string[] = [];
  private trailerBytes = 0;
  /** Where the last line search left off in the current input. */
  private cursor = 0;
  /** Set by the owner to stop delivering (the exchange was torn down mid-callback). */
  halted = false;
  /** Bytes of the current response seen so far (for replay decisions). */
  received = 0;

  constructor(
    private readonly sink: ResponseSink,
    private readonly maxHead: number,
  ) {}

  /** Prepares for the response to a new request. */
  reset(headRequest: boolean): void {
    this.state = State.Head;
    this.pending = null;
    this.headRequest = headRequest;
    this.trailers = [];
    this.trailerBytes = 0;
    this.halted = false;
    this.received = 0;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** Feeds bytes; returns how many belong to the response (the rest is not this response's). */
  execute(data: Buffer): number {
    const n = data.length;
    this.received += n;
    let off = 0;
    while (off < n && this.state !== State.Done && !this.halted) {
      switch (this.state) {
        case State.Head: {
          const text = this.takeUntil(data, off, HEAD_END, this.maxHead);
          off = this.cursor;
          if (text !== null) this.onHead(text);
          else if (hasBareLf(this.pending!)) throw new ParseError('bare LF in the response head');
          break;
        }
        case State.Length:
        case State.ChunkData: {
          const take = Math.min(this.remaining, n - off);
          this.remaining -= take;
          const from = off;
          off += take;
          this.sink.body(from === 0 && off === n ? data : data.subarray(from, off));
          if (this.remaining === 0) {
            if (this.state === State.Length) this.complete();
            else {
              this.state = State.ChunkEnd;
              this.remaining = 2;
            }
          }
          break;
        }
        case State.UntilClose:
          this.sink.body(off === 0 ? data : data.subarray(off));
          off = n;
          break;
        case State.ChunkEnd:
          // Exactly CRLF after each chunk's data, possibly split across reads.
          if (data[off] !== CRLF[2 - this.remaining]) throw new ParseError('chunk data not followed by CRLF');
          off++;
          if (--this.remaining === 0) this.state = State.ChunkSize;
          break;
        case State.ChunkSize: {
          const line = this.takeUntil(data, off, CRLF, MAX_CHUNK_LINE);
          off = this.cursor;
          if (line !== null) this.onChunkSize(line);
          break;
        }
        case State.Trailers: {
          const line = this.takeUntil(data, off, CRLF, this.maxHead - this.trailerBytes);
          off = this.cursor;
          if (line !== null) this.onTrailerLine(line);
          break;
        }
      }
    }
    this.received -= n - off;
    return off;
  }

  /** The target closed the connection: ends a body that runs until close, else ParseError. */
  finish(): void {
    if (this.state === State.UntilClose) {
      this.complete();
      return;
    }
    if (this.state !== State.Done) throw new ParseError('connection closed mid-response');
  }

  private complete(): void {
    this.state = State.Done;
    this.sink.end(this.trailers);
  }

  private onHead(text: string): void {
    const head = parseHead(text);
    const status = head.status;
    if (status === 101) throw new ParseError('101 Switching Protocols to a request without Upgrade');
    if (status < 200) {
      this.sink.info(head);
      return; // the final response follows
    }
    if (this.headRequest || status === 204 || status === 304) {
      head.chunked = false;
      // A target that wrongly sends a body after HEAD must not desync the next exchange: close.
      if (this.headRequest) head.keepAlive = false;
      this.sink.head(head);
      this.complete();
      return;
    }
    if (head.chunked) this.state = State.ChunkSize;
    else if (head.length >= 0) {
      this.remaining = head.length;
      this.state = State.Length;
    } else {
      head.keepAlive = false;
      this.state = State.UntilClose;
    }
    this.sink.head(head);
    if (this.state === State.Length && this.remaining === 0) this.complete();
  }

  private onChunkSize(line: string): void {
    const m = CHUNK_SIZE.exec(line);
    if (m === null) throw new ParseError('malformed chunk size');
    const size = Number.parseInt(m[1]!, 16);
    if (size === 0) this.state = State.Trailers;
    else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
  }

  private onTrailerLine(line: string): void {
    if (line === '') {
      this.complete();
      return;
    }
    this.trailerBytes += line.length + 2;
    parseFieldLine(line, this.trailers);
    // Framing fields have no place in trailers (RFC 9110 §6.5.1), and llhttp validates them there.
    if (FRAMING_FIELD.test(this.trailers[this.trailers.length - 2]!)) throw new ParseError('framing field in trailers');
  }

  /**
   * The text before `term` (latin1), joining earlier reads kept in `pending`; null when the
   * terminator has not arrived yet (the bytes are kept, copied). Sets `cursor` past what it used.
   */
  private takeUntil(data: Buffer, off: number, term: Buffer, limit: number): string | null {
    const n = data.length;
    const pending = this.pending;
    if (pending === null) {
      const i = data.indexOf(term, off);
      if (i !== -1 && i - off <= limit) {
        this.cursor = i + term.length;
        return data.toString('latin1', off, i);
      }
      if (i !== -1 || n - off > limit) throw new ParseError('response head or line too large');
      this.pending = Buffer.from(data.subarray(off));
      this.cursor = n;
      return null;
    }
    const joined = Buffer.concat([pending, data.subarray(off)]);
    const i = joined.indexOf(term, Math.max(0, pending.length - term.length + 1));
    if (i === -1) {
      if (joined.length > limit) throw new ParseError('response head or line too large');
      this.pending = joined;
      this.cursor = n;
      return null;
    }
    if (i > limit) throw new ParseError('response head or line too large');
    this.pending = null;
    this.cursor = off + i + term.length - pending.length;
    return joined.toString('latin1', 0, i);
  }
}

/** Parses a status line and field lines (without the final CRLF CRLF) and decides the framing. */
export function parseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const status = STATUS_LINE.exec(lines[0]!);
  if (status === null) throw new ParseError('malformed status line');
  const http11 = status[1] === '1';
  const fields: string[] = [];
  for (let i = 1; i < lines.length; i++) parseFieldLine(lines[i]!, fields);

  let lengths: string | undefined;
  let te: string | undefined;
  let connection = '';
  let keepAliveHint: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    const value = fields[i + 1]!;
    if (name === 'content-length') lengths = lengths === undefined ? value : `${lengths},${value}`;
    else if (name === 'transfer-encoding') te = te === undefined ? value : `${te},${value}`;
    else if (name === 'connection') connection += `,${value.toLowerCase()}`;
    else if (name === 'keep-alive') keepAliveHint = value;
  }
  let length = -1;
  let chunked = false;
  if (te !== undefined) {
    if (lengths !== undefined) throw new ParseError('both Content-Length and Transfer-Encoding');
    const codings = te.split(',').map((c) => c.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== 'chunked') throw new ParseError('unsupported transfer coding');
    chunked = true;
  } else if (lengths !== undefined) {
    let seen: string | undefined;
    for (const part of lengths.split(',')) {
      const v = part.trim();
      // Even equal repeats: llhttp refuses `5, 5` and a second Content-Length line.
      if (!DIGITS.test(v) || seen !== undefined) throw new ParseError('invalid Content-Length');
      seen = v;
    }
    length = Number(seen);
    if (!Number.isSafeInteger(length)) throw new ParseError('invalid Content-Length');
  }
  const tokens = connection.split(',').map((t) => t.trim());
  const keepAlive = http11 && !tokens.includes('close');
  return {
    status: Number(status[2]),
    statusText: status[3] ?? '',
    fields,
    length,
    chunked,
    keepAlive,
    keepAliveMs: keepAliveTimeout(keepAliveHint),
  };
}

/** A LF not preceded by CR: the head will never end in CRLF CRLF, so say so now instead of timing out. */
function hasBareLf(buf: Buffer): boolean {
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) if (i === 0 || buf[i - 1] !== 13) return true;
  return false;
}

/** Appends one `name: value` line's pair to `out`, or throws (RFC 9112 §5). */
function parseFieldLine(line: string, out: string[]): void {
  const colon = line.indexOf(':');
  // A first character of SP/HTAB is obs-fold; whitespace before the colon fails TOKEN.
  if (colon <= 0) throw new ParseError('malformed field line');
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) throw new ParseError('malformed field name');
  const value = trimOws(line.slice(colon + 1));
  if (!FIELD_VALUE.test(value)) throw new ParseError('invalid character in field value');
  // llhttp takes no trailing HTAB as whitespace here: `chunked\t` is not chunked to it (it reads
  // until close), `5\t` no length. Refuse rather than frame the body another way.
  if (/\t[\t ]*$/.test(line) && FRAMING_FIELD.test(name)) throw new ParseError('HTAB after a framing field value');
  out.push(name, value);
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** `Keep-Alive: timeout=5, max=100` → 5000. */
function keepAliveTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /(?:^|[,;\s])timeout=(\d{1,9})/i.exec(value);
  return m === null ? undefined : Number(m[1]) * 1000;
}
