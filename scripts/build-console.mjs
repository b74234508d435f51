// Builds the web console (console/ → dist/console): one ES module bundle and one stylesheet
// with content hashes in their names (served `immutable`), and index.html naming them
// (served `no-store`). No source maps or inline code: the console runs under a strict CSP.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/console`;
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/assets`, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: 'console/src/main.tsx' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome111', 'firefox115', 'safari16.4'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  legalComments: 'none',
  entryNames: '[name]-[hash]',
  outdir: `${out}/assets`,
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((n) => n.endsWith('.js'));
const css = outputs.find((n) => n.endsWith('.css'));
if (!js || !css) throw new Error(`console build: expected a .js and a .css output, got ${outputs.join(', ')}`);
const html = readFileSync(`${root}console/index.html`, 'utf8').replace('%JS%', js).replace('%CSS%', css);
writeFileSync(`${out}/index.html`, html);
const size = (n) => `${(readFileSync(`${out}/assets/${n}`).length / 1024).toFixed(1)} KiB`;
process.stdout.write(`console: dist/console/assets/${js} (${size(js)}), ${css} (${size(css)})\n`);
