// porthole's public API: named re-exports only.
export { PortholeError, isPortholeError, ERROR_CODES } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { Logger, LogLevel, LogFields } from './log.js';
