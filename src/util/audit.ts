// $PORTHOLE_HOME/audit.log: JSON lines of security-relevant events (tunnel, consent,
// registration, rotation). Appended, 0600, never a secret: callers pass names and codes.
import { appendFileSync, chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

export type AuditFields = Record<string, string | number | boolean | null | undefined>;

export function appendAudit(file: string, event: string, fields: AuditFields = {}): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Create with 0600 before the first append, whatever the umask.
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  appendFileSync(file, `${JSON.stringify({ ts: new Date().toISOString(), event, ...fields })}\n`);
}
