// Builds the demo page into build/web-demo/ (offline: only the installed node_modules and the
// built @mana/websocket package in build/js/package, which `make js` produces).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..', 'build', 'js', 'package', 'dist', 'index.js');
if (!existsSync(pkg)) throw new Error(`${pkg} is missing: run \`make js\` first`);

export default defineConfig({
  root: here,
  base: './',
  logLevel: 'warn',
  resolve: { alias: { '@mana/websocket': pkg } },
  // Dependency pre-bundling would move the Emscripten module away from its .wasm (dev mode).
  optimizeDeps: { exclude: ['@mana/websocket'] },
  build: {
    outDir: join(here, '..', 'build', 'web-demo'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 2048,
  },
});
