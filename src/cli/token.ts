// `porthole init [--rotate-token]`, `porthole token show|rotate`.
import { isPortholeError } from '../errors.js';
import { createTokenKeeper } from '../gateway/token-keeper.js';
import { openSecretStore, resolveToken } from '../secrets/store.js';
import type { StatePaths } from '../secrets/paths.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';
import { callGateway } from './socket-client.js';

/** [auth] token_file of this home's porthole.toml: `serve` reads the token there before the store. */
function configTokenFile(ctx: CliContext, paths: StatePaths): string | undefined {
  return loadCliConfig(ctx, paths, undefined, {}).config.auth.token_file;
}

/** Prints only the token, so `$(porthole token show)` works. */
export function tokenShow(ctx: CliContext): number {
  const paths = homePaths(ctx);
  const t = resolveToken({ paths, store: openSecretStore(paths), env: ctx.env, configTokenFile: configTokenFile(ctx, paths), create: false });
  ctx.stdout.write(`${t.token}\n`);
  return 0;
}

/**
 * Rotates the token. With a gateway running, the gateway does it and answers once it has
 * applied the new token (old one refused, its sessions and streams ended); otherwise the
 * store is rotated directly. The new token is never printed by rotate: `token show` does.
 */
export async function tokenRotate(ctx: CliContext): Promise<number> {
  const paths = homePaths(ctx);
  try {
    const r = await callGateway<{ sessionsEnded: number; connectionsClosed: number }>(paths, 'POST', '/_porthole/api/token/rotate');
    ctx.stderr.write(
      `Token rotated by the running gateway: ${r.sessionsEnded} session(s) ended, ${r.connectionsClosed} connection(s) closed.\n` +
        'Print the new token with `porthole token show`.\n',
    );
    return 0;
  } catch (err) {
    if (!isPortholeError(err, 'GATEWAY_NOT_RUNNING')) throw err;
  }
  const store = openSecretStore(paths);
  // Stopped gateway: rotate the store directly, remembering the old token as retired. A token
  // the next `serve` would take from PORTHOLE_AUTH_TOKEN or [auth] token_file is refused
  // (TOKEN_FIXED): rotating the store would change nothing.
  const current = resolveToken({ paths, store, env: ctx.env, configTokenFile: configTokenFile(ctx, paths), create: true });
  if (current.generated) {
    ctx.stderr.write('No token existed; a new one was issued. Print it with `porthole token show`.\n');
    return 0;
  }
  createTokenKeeper(current, paths, store).rotate();
  ctx.stderr.write('Token rotated (no gateway running). Print it with `porthole token show`.\n');
  return 0;
}

export async function initCommand(ctx: CliContext, opts: { rotateToken?: boolean }): Promise<number> {
  if (opts.rotateToken) return tokenRotate(ctx);
  const paths = homePaths(ctx);
  const t = resolveToken({ paths, store: openSecretStore(paths), env: {}, create: true });
  ctx.stderr.write(
    t.generated
      ? `Initialised ${paths.home}: a new token is stored in the ${t.describe}.\nPrint it with \`porthole token show\`.\n`
      : `Already initialised: the token is in the ${t.describe}.\n`,
  );
  return 0;
}
