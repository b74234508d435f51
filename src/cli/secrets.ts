// `porthole secrets status` (which store holds this home's secrets) and
// `porthole secrets migrate --to file|keyring` (the explicit, only way to move them).
import { isPortholeError, PortholeError } from '../errors.js';
import { migrateSecrets } from '../secrets/migrate.js';
import { readState } from '../secrets/state.js';
import { hasPersistentKeyring, openSecretStore, secretStoreMode } from '../secrets/store.js';
import { homePaths, type CliContext } from './context.js';
import { callGateway } from './socket-client.js';

export function secretsStatus(ctx: CliContext, opts: { json?: boolean }): number {
  const paths = homePaths(ctx);
  const mode = secretStoreMode(ctx.env);
  const recorded = readState(paths).secretStore;
  const store = openSecretStore(paths, { env: ctx.env });
  const keyring = hasPersistentKeyring({ env: ctx.env });
  const info = { store: store.kind, where: store.describe(), recorded: recorded?.kind ?? null, mode, persistentKeyring: keyring };
  if (opts.json) ctx.stdout.write(`${JSON.stringify(info)}\n`);
  else {
    ctx.stdout.write(
      `store      ${store.kind} (${info.where})\n` +
        `recorded   ${recorded ? `${recorded.kind} since ${recorded.since}` : 'not yet (chosen at the first secret written)'}\n` +
        `mode       PORTHOLE_SECRET_STORE=${mode}\n` +
        `keyring    ${keyring ? 'a persistent OS keyring is available' : 'no persistent OS keyring available'}\n`,
    );
  }
  return 0;
}

export async function secretsMigrate(ctx: CliContext, opts: { to: string }): Promise<number> {
  if (opts.to !== 'file' && opts.to !== 'keyring') {
    throw new PortholeError('INVALID_ARGUMENT', `--to must be file or keyring, not ${JSON.stringify(opts.to)}`);
  }
  const paths = homePaths(ctx);
  // A running gateway keeps the store it opened: a rotation would write to the old one.
  try {
    await callGateway(paths, 'GET', '/_porthole/api/status');
    throw new PortholeError('GATEWAY_ALREADY_RUNNING', `a gateway is running for ${paths.home}: stop it before moving its secrets`);
  } catch (err) {
    if (!isPortholeError(err, 'GATEWAY_NOT_RUNNING')) throw err;
  }
  const r = migrateSecrets(paths, opts.to, { env: ctx.env });
  ctx.stderr.write(
    r.from === r.to
      ? `The secrets of ${paths.home} are already in the ${r.to} store; that choice is now recorded.\n`
      : `Moved ${r.moved.length} secret(s) (${r.moved.join(', ') || 'none'}) from the ${r.from} store to the ${r.to} store.\n`,
  );
  return 0;
}
