// `Symbol.dispose` for `using` (TypeScript 5.2+, ES2026 explicit resource management). Runtimes
// without it (Node < 18.18, older browsers) get a local symbol, so nothing global is patched and
// the `[Symbol.dispose]` methods simply stay unused there.

/** The runtime's Symbol.dispose, or a stand-in where the runtime has none. */
export const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ??
  (Symbol.for('mana.websocket.dispose') as typeof Symbol.dispose);
