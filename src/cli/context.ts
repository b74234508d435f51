// What every command gets: its streams and environment (so commands are testable
// functions), and the shared ways to find state and report errors.
import { isPortholeError, type ErrorCode } from '../errors.js';
import { resolveHome, statePaths, type StatePaths } from '../secrets/paths.js';

export interface CliContext {
  env: Record<string, string | undefined>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export function homePaths(ctx: CliContext): StatePaths {
  return statePaths(resolveHome({ env: ctx.env }));
}

/** Exit codes: 0 ok, 1 failure, 2 usage or configuration, 3 no gateway running. */
const USAGE_CODES = new Set<ErrorCode>([
  'CONFIG_INVALID',
  'EXPOSURE_CONFLICT',
  'CONFIG_SECRET_IN_FILE',
  'PASSWORD_NOT_SET',
  'PASSWORD_WEAK',
  'INVALID_ARGUMENT',
  'TARGET_INVALID',
  'TOKEN_WEAK',
  'SSH_TARGET_INVALID',
  'TLS_PIN_INVALID',
  'CONTROL_INSECURE_URL',
]);

export function exitCodeFor(err: unknown): number {
  if (!isPortholeError(err)) return 1;
  if (USAGE_CODES.has(err.code)) return 2;
  if (err.code === 'GATEWAY_NOT_RUNNING' || err.code === 'REMOTE_UNREACHABLE') return 3;
  return 1;
}

/** "porthole: <message> [CODE]" plus every detail on its own line. */
export function reportError(ctx: CliContext, err: unknown): number {
  if (isPortholeError(err)) {
    ctx.stderr.write(`porthole: ${err.message} [${err.code}]\n`);
    for (const d of err.details ?? []) ctx.stderr.write(`  - ${d}\n`);
  } else {
    const e = err as NodeJS.ErrnoException;
    ctx.stderr.write(`porthole: ${e?.message ?? String(err)}\n`);
  }
  return exitCodeFor(err);
}
