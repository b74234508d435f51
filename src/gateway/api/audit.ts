// GET /_porthole/api/audit?limit=N (admin): the newest N entries of $PORTHOLE_HOME/audit.log
// (JSON lines, src/util/audit.ts), newest first. The file is read from its end in blocks,
// so a long log costs what N entries cost; lines that are not JSON objects are skipped.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { PortholeError } from '../../errors.js';

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 500;
const BLOCK = 64 * 1024;
/** Bound on what is read, whatever the lines look like (500 entries are far smaller). */
const MAX_READ = 8 * 1024 * 1024;

/** `limit` from the query: absent → 100; otherwise an integer 1…500, else BAD_REQUEST. */
export function parseAuditLimit(raw: string | null): number {
  if (raw === null || raw === '') return AUDIT_DEFAULT_LIMIT;
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > AUDIT_MAX_LIMIT) {
    throw new PortholeError('BAD_REQUEST', `limit must be an integer from 1 to ${AUDIT_MAX_LIMIT}`);
  }
  return Number(raw);
}

/** The last `limit` entries of the audit log, newest first; [] when there is no log yet. */
export function readAuditTail(file: string, limit: number): Record<string, unknown>[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Record<string, unknown>[] = [];
  try {
    let pos = fstatSync(fd).size;
    let carry = Buffer.alloc(0); // the start of a line whose beginning is in an earlier block
    let read = 0;
    while (out.length < limit && (pos > 0 || carry.length > 0)) {
      let lines: Buffer[];
      if (pos > 0 && read < MAX_READ) {
        const n = Math.min(BLOCK, pos);
        pos -= n;
        read += n;
        const block = Buffer.alloc(n);
        readSync(fd, block, 0, n, pos);
        const buf = Buffer.concat([block, carry]);
        const first = buf.indexOf(0x0a);
        if (first < 0 || pos === 0) {
          // No line boundary yet (or this is the file's start): keep collecting.
          if (pos > 0) {
            carry = buf;
            continue;
          }
          lines = split(buf);
          carry = Buffer.alloc(0);
        } else {
          carry = buf.subarray(0, first);
          lines = split(buf.subarray(first + 1));
        }
      } else {
        // Nothing more to read (or the bound is reached): a remaining partial line is dropped.
        break;
      }
      for (let i = lines.length - 1; i >= 0 && out.length < limit; i--) {
        const entry = parseLine(lines[i]!);
        if (entry) out.push(entry);
      }
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function split(buf: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, start)) {
    lines.push(buf.subarray(start, i));
    start = i + 1;
  }
  if (start < buf.length) lines.push(buf.subarray(start));
  return lines;
}

function parseLine(line: Buffer): Record<string, unknown> | undefined {
  if (line.length === 0) return undefined;
  try {
    const v = JSON.parse(line.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
