// webpack 5 needs no loader for @mana/websocket: it turns the package's
// `new URL('./mana-core.wasm', import.meta.url)` into an emitted asset, and the lazily imported
// SSH engine into its own chunk.
const path = require('node:path');

module.exports = {
  entry: './main.js',
  output: { path: path.resolve(__dirname, 'dist'), filename: 'main.js', clean: true },
  performance: { hints: false },
};
