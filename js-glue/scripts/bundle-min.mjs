// Writes to stdout the package's TypeScript output as a bundler serves it to a page: esbuild
// bundles build/js/package/dist/index.js (every module it imports, the lazily imported SSH part
// included) into one minified ES module. The Emscripten glue (internal/*.mjs, shipped minified)
// stays external: it has its own rows in `make js-size` and bench/browser/run.mjs, which measure
// this output with the same method as the other rows. The package itself ships dist/ readable.
// No keepNames: every error class sets its `name` explicitly, so a default minifier keeps
// `e.name` readable (js-glue/test/minified-names.test.mjs).
//
//   node js-glue/scripts/bundle-min.mjs [PACKAGE_DIR]   (default build/js/package)
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = resolve(process.argv[2] ?? join(root, 'build', 'js', 'package'));
const entry = join(pkg, 'dist', 'index.js');
if (!existsSync(entry)) {
  console.error(`bundle-min: ${entry} is missing; run \`make js\` first`);
  process.exit(1);
}
const result = await build({
  entryPoints: [entry],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  external: ['*.mjs'],
  write: false,
  logLevel: 'error',
});
if (result.outputFiles.length !== 1) {
  console.error(`bundle-min: expected one output file, got ${result.outputFiles.length}`);
  process.exit(1);
}
process.stdout.write(result.outputFiles[0].contents);
