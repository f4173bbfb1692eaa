// Turns the numbers-only embind surface of the SSH engine (RawSshEngine,
// wasm/src/ssh_bindings.cpp) into the SshEngineHandle that src/ssh/ uses. The per-chunk path
// (pushInput, write, takeOutput and the data events of pollEvent) costs one call into wasm and one
// TypedArray copy through the module's heap views; only rare events are built by embind
// (eventDetail()).
import type {
  RawSshEngine,
  RawSshModule,
  SshEngineConfig,
  SshEngineEvent,
  SshEngineHandle,
  SshEngineState,
  SshModule,
} from './ssh-types.js';

// EventKind of ssh_bindings.cpp.
const eventData = 1;
const eventOther = 2;

class WasmSshEngine implements SshEngineHandle {
  readonly #mod: RawSshModule;
  readonly #raw: RawSshEngine;
  /** Index of fields() in HEAPF64. */
  readonly #fields: number;

  constructor(mod: RawSshModule, config: SshEngineConfig) {
    this.#mod = mod;
    this.#raw = new mod.SshEngine(config);
    this.#fields = this.#raw.fields() / Float64Array.BYTES_PER_ELEMENT;
  }

  /** Copies `bytes` into the engine's input buffer; returns their length. */
  #input(bytes: Uint8Array): number {
    const at = this.#raw.inputBuffer(bytes.length);
    // Read HEAPU8 after the call: growing the memory replaces it.
    this.#mod.HEAPU8.set(bytes, at);
    return bytes.length;
  }

  /** A copy of `length` heap bytes at `at` (valid until the next poll of the engine). */
  #bytes(at: number, length: number): Uint8Array {
    return this.#mod.HEAPU8.slice(at, at + length);
  }

  pushInput(data: Uint8Array): boolean {
    return this.#raw.pushInput(this.#input(data));
  }

  write(data: Uint8Array): number {
    return this.#raw.write(this.#input(data));
  }

  takeOutput(max: number): Uint8Array {
    const n = this.#raw.takeOutput(max);
    if (n === 0) return new Uint8Array(0);
    return this.#bytes(this.#mod.HEAPF64[this.#fields] ?? 0, n);
  }

  pollEvent(): SshEngineEvent | null {
    const kind = this.#raw.pollEvent();
    if (kind === eventData) {
      const f = this.#mod.HEAPF64;
      const i = this.#fields;
      return {
        type: 'data',
        stream: f[i] === 1 ? 'stderr' : 'stdout',
        data: this.#bytes(f[i + 1] ?? 0, f[i + 2] ?? 0),
      };
    }
    if (kind === eventOther) return this.#raw.eventDetail();
    return null;
  }

  state(): SshEngineState {
    return this.#raw.state();
  }
  takeInputConsumed(): number {
    return this.#raw.takeInputConsumed();
  }
  transportClosed(): void {
    this.#raw.transportClosed();
  }
  outputBytes(): number {
    return this.#raw.outputBytes();
  }
  bytesSent(): number {
    return this.#raw.bytesSent();
  }
  bytesReceived(): number {
    return this.#raw.bytesReceived();
  }
  step(now: number): void {
    this.#raw.step(now);
  }
  nextTimeout(): number | null {
    return this.#raw.nextTimeout();
  }
  hostKeyDecision(accept: boolean): void {
    this.#raw.hostKeyDecision(accept);
  }
  kbdAnswers(answers: string[] | null): void {
    this.#raw.kbdAnswers(answers);
  }
  signResult(signature: Uint8Array | null): void {
    this.#raw.signResult(signature);
  }
  writeRoom(): number {
    return this.#raw.writeRoom();
  }
  writeQueued(): number {
    return this.#raw.writeQueued();
  }
  consume(n: number): void {
    this.#raw.consume(n);
  }
  unconsumed(): number {
    return this.#raw.unconsumed();
  }
  resize(cols: number, rows: number): void {
    this.#raw.resize(cols, rows);
  }
  signal(name: string): boolean {
    return this.#raw.signal(name);
  }
  sendEof(): void {
    this.#raw.sendEof();
  }
  close(): void {
    this.#raw.close();
  }
  delete(): void {
    this.#raw.delete();
  }
  isDeleted(): boolean {
    return this.#raw.isDeleted();
  }
}

/** The SshModule over a loaded Emscripten module. */
export function wrapSshModule(mod: RawSshModule): SshModule {
  if (!(mod.HEAPU8 instanceof Uint8Array) || !(mod.HEAPF64 instanceof Float64Array)) {
    throw new Error('mana-ssh: the module exposes no HEAPU8/HEAPF64 heap views');
  }
  return {
    SshEngine: class extends WasmSshEngine {
      constructor(config: SshEngineConfig) {
        super(mod, config);
      }
    },
    liveEngines: () => mod.liveEngines(),
    supportedAlgorithms: (kind) => {
      const list = mod.supportedAlgorithms(kind);
      return list === '' ? [] : list.split(',');
    },
  };
}
