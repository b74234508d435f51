#!/usr/bin/env node
// Tiny shim: the CLI lives in dist/cli/main.js (built by `npm ci` through `prepare`).
import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  process.stderr.write(`porthole: ${err?.message ?? err}\n`);
  process.exitCode = 1;
});
