// Loads the configuration the way every command does: file + env + flags + state.json.
import { loadConfig, type ConfigFlags, type LoadedConfig } from '../config/load.js';
import { readState } from '../secrets/state.js';
import type { StatePaths } from '../secrets/paths.js';
import type { CliContext } from './context.js';

export function loadCliConfig(ctx: CliContext, paths: StatePaths, configFile: string | undefined, flags: ConfigFlags): LoadedConfig {
  const settings = readState(paths).settings ?? {};
  return loadConfig({ home: paths.home, configFile, env: ctx.env, flags, state: settings });
}
