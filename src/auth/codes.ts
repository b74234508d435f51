// One-time codes (`phc_` + 256 bits): a browser's first load with `?code=` trades one for
// a device and its session; the pairing API trades one (or its short code) for a device
// credential. The store lives in src/pairing/codes.ts (docs/pairing.md).
export {
  type CodeGrant,
  type CodeResult,
  type CodeStore,
  type CodeStoreOptions,
  type IssuedCode,
  createCodeStore,
} from '../pairing/codes.js';
