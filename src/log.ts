// Logging: the library never writes to the console. Callers pass a Logger; the default
// forwards to util.debuglog('porthole') (NODE_DEBUG=porthole). Log fields must never
// carry secrets — tokens, codes, cookies, passwords.
import { debuglog } from 'node:util';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  log(level: LogLevel, msg: string, fields?: LogFields): void;
}

const debug = debuglog('porthole');

/** Default logger: silent unless NODE_DEBUG=porthole. */
export const debugLogger: Logger = {
  log(level, msg, fields) {
    debug('%s %s %j', level, msg, fields ?? {});
  },
};

export const noopLogger: Logger = { log() {} };
