// `porthole config check [--json]`: validates without starting; shows each value's source,
// and where the token would come from (never the token).
import { configReportJson, formatConfigReport } from '../config/check.js';
import { isPortholeError } from '../errors.js';
import { parseTarget } from '../gateway/target.js';
import { openSecretStore, resolveToken } from '../secrets/store.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';
import { remoteSettings } from './remote.js';

export function configCheckCommand(ctx: CliContext, opts: { json?: boolean; config?: string }): number {
  const paths = homePaths(ctx);
  const loaded = loadCliConfig(ctx, paths, opts.config, {});
  if (loaded.config.gateway.target !== undefined) parseTarget(loaded.config.gateway.target);
  // [remote] (with PORTHOLE_URL): what `porthole status` and the other remote commands would refuse.
  remoteSettings(ctx.env, loaded.config);
  let token: { source: string; describe: string } | { source: null; describe: string };
  try {
    const t = resolveToken({
      paths,
      store: openSecretStore(paths),
      env: ctx.env,
      configTokenFile: loaded.config.auth.token_file,
      create: false,
    });
    token = { source: t.source, describe: t.describe };
  } catch (err) {
    if (!isPortholeError(err, 'TOKEN_MISSING')) throw err;
    token = { source: null, describe: 'none yet: `porthole init` or the first `porthole serve` issues one' };
  }
  if (opts.json) {
    ctx.stdout.write(`${JSON.stringify({ ...configReportJson(loaded), token })}\n`);
  } else {
    ctx.stdout.write(`${formatConfigReport(loaded)}\ntoken: ${token.describe}\nconfiguration OK\n`);
  }
  return 0;
}
