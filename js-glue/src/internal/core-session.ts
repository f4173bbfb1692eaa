// Turns the numbers-only embind surface of the core (RawCoreSession, wasm/src/bindings.cpp) into
// the CoreSession the package uses. The per-chunk path (receive, write, pollOutput, and the data
// and credit events of pollEvent) costs one call into wasm and one TypedArray copy through the
// module's heap views; only rare events are built by embind (eventDetail()).
import type {
  CoreChannelStats,
  CoreConfig,
  CoreError,
  CoreEvent,
  CoreModule,
  CoreOutput,
  CoreSession,
  CoreState,
  RawCoreModule,
  RawCoreSession,
} from './core-types.js';

// OutputKind / EventKind of bindings.cpp.
const outputText = 1;
const outputBinary = 2;
const outputClose = 3;
const eventData = 1;
const eventWritable = 2;
const eventOther = 3;

let decoder: TextDecoder | undefined;

class WasmCoreSession implements CoreSession {
  readonly #mod: RawCoreModule;
  readonly #raw: RawCoreSession;
  /** Index of fields() in HEAPF64. */
  readonly #fields: number;

  constructor(mod: RawCoreModule, config: CoreConfig, now: number) {
    this.#mod = mod;
    this.#raw = new mod.ClientSession(config, now);
    this.#fields = this.#raw.fields() / Float64Array.BYTES_PER_ELEMENT;
  }

  /** Copies `bytes` into the session's input buffer; returns their length. */
  #input(bytes: Uint8Array): number {
    const at = this.#raw.inputBuffer(bytes.length);
    // Read HEAPU8 after the call: growing the memory replaces it.
    this.#mod.HEAPU8.set(bytes, at);
    return bytes.length;
  }

  /** A copy of `length` heap bytes at `at` (valid until the next poll of the session). */
  #bytes(at: number, length: number): Uint8Array {
    return this.#mod.HEAPU8.slice(at, at + length);
  }

  receive(text: boolean, message: Uint8Array, now: number): void {
    this.#raw.receive(text, this.#input(message), now);
  }

  write(id: number, data: Uint8Array, now: number): number | CoreError {
    return this.#raw.write(id, this.#input(data), now);
  }

  pollOutput(): CoreOutput | null {
    const kind = this.#raw.pollOutput();
    const f = this.#mod.HEAPF64;
    const i = this.#fields;
    const at = f[i] ?? 0;
    const length = f[i + 1] ?? 0;
    switch (kind) {
      case outputText:
        decoder ??= new TextDecoder();
        return { type: 'text', text: decoder.decode(this.#mod.HEAPU8.subarray(at, at + length)) };
      case outputBinary:
        return { type: 'binary', data: this.#bytes(at, length) };
      case outputClose:
        return { type: 'close', code: f[i + 2] ?? 0, reason: this.#raw.outputCloseReason() };
      default:
        return null;
    }
  }

  pollEvent(): CoreEvent | null {
    const kind = this.#raw.pollEvent();
    const f = this.#mod.HEAPF64;
    const i = this.#fields;
    switch (kind) {
      case eventData:
        return {
          type: 'channelData',
          id: f[i] ?? 0,
          stream: f[i + 1] === 1 ? 'stderr' : 'stdout',
          data: this.#bytes(f[i + 2] ?? 0, f[i + 3] ?? 0),
        };
      case eventWritable:
        return { type: 'channelWritable', id: f[i] ?? 0, available: f[i + 1] ?? 0 };
      case eventOther:
        return this.#raw.eventDetail() ?? { type: 'unexpected' };
      default:
        return null;
    }
  }

  state(): CoreState {
    return this.#raw.state();
  }
  transportOpen(now: number): CoreError | undefined {
    return this.#raw.transportOpen(now);
  }
  receiveClose(code: number, reason: string, now: number): void {
    this.#raw.receiveClose(code, reason, now);
  }
  transportLost(now: number): void {
    this.#raw.transportLost(now);
  }
  nextTimeout(): number | null {
    return this.#raw.nextTimeout();
  }
  handleTimeout(now: number): void {
    this.#raw.handleTimeout(now);
  }
  outputBytes(): number {
    return this.#raw.outputBytes();
  }
  openChannel(host: string, port: number, kind: string, now: number): number | CoreError {
    return this.#raw.openChannel(host, port, kind, now);
  }
  available(id: number): number {
    return this.#raw.available(id);
  }
  consume(id: number, n: number, now: number): CoreError | undefined {
    return this.#raw.consume(id, n, now);
  }
  closeChannel(id: number, reason: string, now: number): CoreError | undefined {
    return this.#raw.closeChannel(id, reason, now);
  }
  resize(id: number, cols: number, rows: number, now: number): CoreError | undefined {
    return this.#raw.resize(id, cols, rows, now);
  }
  setPaused(reason: number, on: boolean, now: number): void {
    this.#raw.setPaused(reason, on, now);
  }
  pauseBits(): number {
    return this.#raw.pauseBits();
  }
  close(code: number, reason: string, now: number): void {
    this.#raw.close(code, reason, now);
  }
  resumeToken(): string | null {
    return this.#raw.resumeToken();
  }
  adoptResumeToken(token: string): CoreError | undefined {
    return this.#raw.adoptResumeToken(token);
  }
  rtt(): number | null {
    return this.#raw.rtt();
  }
  channelCount(): number {
    return this.#raw.channelCount();
  }
  channelStats(id: number): CoreChannelStats | null {
    return this.#raw.channelStats(id);
  }
  delete(): void {
    this.#raw.delete();
  }
  isDeleted(): boolean {
    return this.#raw.isDeleted();
  }
}

/** The CoreModule over a loaded Emscripten module. */
export function wrapCoreModule(mod: RawCoreModule): CoreModule {
  if (!(mod.HEAPU8 instanceof Uint8Array) || !(mod.HEAPF64 instanceof Float64Array)) {
    throw new Error('mana-core: the module exposes no HEAPU8/HEAPF64 heap views');
  }
  return {
    ClientSession: class extends WasmCoreSession {
      constructor(config: CoreConfig, now: number) {
        super(mod, config, now);
      }
    },
    liveSessions: () => mod.liveSessions(),
    closeCodeName: (code) => mod.closeCodeName(code),
    closeCodeResumable: (code) => mod.closeCodeResumable(code),
  };
}
