// A small closed-loop HTTP/1.1 load generator for bench/tunnel.ts, over plain TCP or TLS.
//
// Why not wrk: wrk 4.1 takes the TLS SNI from the URL's host and resolves that same host to
// connect, so it cannot send SNI `<name>.tunnel.example.test` while dialling 127.0.0.1
// without an /etc/hosts entry (a Host header does not change the SNI). Here each
// connection sets `servername` explicitly, as test/helpers/tunnel.ts does.
//
// Each of N keep-alive connections sends one pre-built GET, waits for the whole answer
// (Content-Length framing only: the bench app always sends it), records the latency and
// sends the next. One Node thread drives every connection, so at 50 connections the
// generator itself can be the limit; it is the same generator for every target.
import net from 'node:net';
import tls from 'node:tls';

export interface LoadTarget {
  port: number;
  /** Set for TLS targets: SNI and Host name, with the CA that signed the desk's certificate. */
  tls?: { servername: string; ca: string };
  bearer: string;
  path: string;
  /** Host header for plain targets that route by it (localtunnel); default 127.0.0.1:port. */
  host?: string;
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  /** Requests still unanswered 2 s after the measuring window closed (their sockets are destroyed). */
  stuck: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

function connect(t: LoadTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = t.tls
      ? tls.connect({ host: '127.0.0.1', port: t.port, servername: t.tls.servername, ca: t.tls.ca })
      : net.connect({ host: '127.0.0.1', port: t.port });
    s.setNoDelay(true);
    s.once(t.tls ? 'secureConnect' : 'connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('connect timeout')));
  });
}

/** Runs `connections` closed loops for `seconds` and returns req/s and latency percentiles. */
export async function runLoad(t: LoadTarget, connections: number, seconds: number): Promise<LoadResult> {
  const host = t.tls ? `${t.tls.servername}:${t.port}` : (t.host ?? `127.0.0.1:${t.port}`);
  const request = Buffer.from(`GET ${t.path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${t.bearer}\r\n\r\n`);
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let measuring = true;
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(t)));
  const start = performance.now();
  const loops = sockets.map(
    (s) =>
      new Promise<void>((resolve) => {
        let buf: Buffer = Buffer.alloc(0);
        let sentAt = 0;
        let need = -1;
        const send = (): void => {
          if (!measuring) {
            s.destroy();
            resolve();
            return;
          }
          sentAt = performance.now();
          need = -1;
          s.write(request);
        };
        s.setTimeout(10_000, () => s.destroy(new Error('response timeout')));
        s.on('data', (chunk: Buffer) => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          for (;;) {
            if (need < 0) {
              const end = buf.indexOf(HEADER_END);
              if (end < 0) return;
              const head = buf.subarray(0, end).toString('latin1');
              const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
              if (!len) {
                s.destroy(new Error(`no content-length in answer: ${head.slice(0, 200)}`));
                return;
              }
              if (!head.startsWith('HTTP/1.1 2')) non2xx++;
              need = end + 4 + Number(len[1]);
            }
            if (buf.length < need) return;
            buf = buf.subarray(need);
            if (measuring) latencies.push(performance.now() - sentAt);
            send();
            if (buf.length === 0) return;
          }
        });
        s.once('error', () => {
          if (measuring) errors++;
        });
        s.once('close', () => resolve());
        send();
      }),
  );
  let stoppedAt = 0;
  let stuck = 0;
  const timer = setTimeout(() => {
    measuring = false;
    stoppedAt = performance.now();
  }, seconds * 1000);
  // Bounded: every connection ends after its current answer; any still waiting 2 s after the
  // window are counted as stuck and destroyed.
  const grace = setTimeout(() => {
    for (const s of sockets) {
      if (!s.destroyed) {
        stuck++;
        s.destroy();
      }
    }
  }, seconds * 1000 + 2_000);
  await Promise.all(loops);
  clearTimeout(timer);
  clearTimeout(grace);
  const elapsed = ((stoppedAt || performance.now()) - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length === 0 ? Number.NaN : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!);
  return {
    rps: latencies.length / elapsed,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    requests: latencies.length,
    non2xx,
    errors,
    stuck,
  };
}
