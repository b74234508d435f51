// Streaming throughput: downloads `/stream?bytes=N` once and reports MB/s (10^6 bytes/s),
// timed from sending the request to the body's last byte. The data is counted and dropped.
// Two clients: curl (default), which reads the bearer from a 0600 header file so the token is
// not in its argv, or node:http in this process (BENCH_STREAM_CLIENT=node).
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { ProcessSet } from './procs.js';

export type StreamClient = 'node' | 'curl';

export interface StreamRun {
  port: number;
  bytes: number;
  bearer: string;
  timeoutMs: number;
}

export async function measureStream(client: StreamClient, procs: ProcessSet, dir: string, run: StreamRun): Promise<number> {
  return client === 'curl' ? curlStream(procs, dir, run) : nodeStream(run);
}

function nodeStream(run: StreamRun): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let received = 0;
    const req = http.get(
      {
        host: '127.0.0.1',
        port: run.port,
        path: `/stream?bytes=${run.bytes}`,
        headers: { authorization: `Bearer ${run.bearer}` },
        agent: false,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`stream: HTTP ${res.statusCode} from 127.0.0.1:${run.port}`));
          return;
        }
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
        });
        res.once('end', () => {
          const seconds = Number(process.hrtime.bigint() - start) / 1e9;
          if (received !== run.bytes) reject(new Error(`stream: got ${received} of ${run.bytes} bytes`));
          else resolve(received / seconds / 1e6);
        });
        res.once('error', reject);
      },
    );
    req.setTimeout(run.timeoutMs, () => req.destroy(new Error(`stream: no progress for ${run.timeoutMs} ms`)));
    req.once('error', reject);
  });
}

async function curlStream(procs: ProcessSet, dir: string, run: StreamRun): Promise<number> {
  const headerFile = join(dir, 'curl-headers.txt');
  writeFileSync(headerFile, `Authorization: Bearer ${run.bearer}\n`, { mode: 0o600 });
  const args = [
    '--silent',
    '--show-error',
    '--fail',
    '--max-time',
    String(Math.ceil(run.timeoutMs / 1000)),
    '-H',
    `@${headerFile}`,
    '-o',
    '/dev/null',
    '-w',
    '%{size_download} %{time_total}',
    `http://127.0.0.1:${run.port}/stream?bytes=${run.bytes}`,
  ];
  const proc = procs.spawn('curl', 'curl', args, { pipeStdout: true });
  let out = '';
  proc.child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await proc.exited;
  if (code !== 0) throw new Error(`curl exited (${code}):\n${proc.tail()}`);
  const [size, seconds] = out.trim().split(/\s+/).map(Number);
  if (size !== run.bytes || !seconds) throw new Error(`stream: curl got ${size} of ${run.bytes} bytes`);
  return size / seconds / 1e6;
}
