// Plumbing for the end-to-end suites (test/e2e/) besides the CLI itself (that is
// test/helpers/cli.ts): cleanup in reverse order, raw-socket exchanges for hostile peers,
// process memory, and the parsers for error codes. Every wait is bounded.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { TestContext } from 'node:test';

const stacks = new WeakMap<TestContext, (() => unknown)[]>();

/**
 * Registers `fn` to run after the test, in reverse order of registration (t.after runs
 * hooks first-in first-out, which would remove a home before its gateway has stopped).
 */
export function defer(t: TestContext, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (stack === undefined) {
    const s: (() => unknown)[] = [];
    stack = s;
    stacks.set(t, s);
    t.after(async () => {
      for (const f of s.reverse()) await f();
    });
  }
  stack.push(fn);
}

/** Resident and peak memory of a process from /proc/<pid>/status, in bytes. */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export interface RawAnswer {
  /** Everything received, as latin1 text. */
  raw: string;
  /** Status code of the first response, undefined when none arrived. */
  status: number | undefined;
  /** The first response's body (by Content-Length), when it has one. */
  body: string;
  /** Whether the peer closed the connection. */
  closed: boolean;
}

/** Parses one HTTP/1.1 response from the start of `raw`, if complete (Content-Length framed or ended). */
export function parseRawResponse(raw: string, ended: boolean): { status: number; body: string } | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  if (!m) return undefined;
  const head = raw.slice(0, end);
  const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const body = raw.slice(end + 4);
  if (len) {
    const n = Number(len[1]);
    if (body.length < n) return undefined;
    return { status: Number(m[1]), body: body.slice(0, n) };
  }
  if (!ended) return undefined;
  return { status: Number(m[1]), body };
}

/**
 * Connects to 127.0.0.1:`port`, writes `payload`, and collects the answer until one whole
 * response has arrived or the peer closes, bounded by `timeoutMs` (then `status` is
 * whatever was parsed, possibly undefined). Write errors (the peer closing while a large
 * payload is still going out) are expected from hostile requests and ignored.
 */
export async function rawExchange(port: number, payload: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  let raw = '';
  let closed = false;
  return new Promise<RawAnswer>((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseRawResponse(raw, true);
      resolve({ raw, status: parsed?.status, body: parsed?.body ?? '', closed });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      if (parseRawResponse(raw, false)) finish();
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(payload);
  });
}

/** The `error.code` of a JSON error body, or undefined. */
export function errorCodeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** `[CODE]` as the CLI prints it on stderr. */
export function cliCode(stderr: string): string | undefined {
  return /\[([A-Z][A-Z_]+)\]/.exec(stderr)?.[1];
}
