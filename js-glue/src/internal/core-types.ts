// Types of the core module. RawCoreSession / RawCoreModule are the embind surface
// (wasm/src/bindings.cpp), seen by src/internal/ only; CoreSession / CoreModule are what
// core-session.ts makes of it for the rest of the package (plain objects per event).
import type { ServerInfo } from '../connection-types.js';

export interface CoreError {
  error: string;
  origin: 'local' | 'remote';
  detail: string;
  closeCode: number;
}

export type CoreOutput =
  | { type: 'text'; text: string }
  | { type: 'binary'; data: Uint8Array }
  | { type: 'close'; code: number; reason: string };

export type CoreState =
  | 'connecting'
  | 'awaiting_hello'
  | 'authenticating'
  | 'ready'
  | 'reconnecting'
  | 'detached'
  | 'closed';

export type CoreEvent =
  | { type: 'stateChanged'; from: CoreState; to: CoreState }
  | ({ type: 'ready'; resumed: boolean } & ServerInfo)
  | { type: 'channelOpened'; id: number }
  | { type: 'channelOpenFailed'; id: number; code: string; message: string }
  | { type: 'channelData'; id: number; stream: 'stdout' | 'stderr'; data: Uint8Array }
  | { type: 'channelWritable'; id: number; available: number }
  | { type: 'channelResized'; id: number; cols: number; rows: number }
  | { type: 'channelSignal'; id: number; signal: string }
  | { type: 'channelExit'; id: number; code: number | null; signal: string | null }
  | { type: 'channelClosed'; id: number; reason: string; origin: 'local' | 'remote' }
  | { type: 'policy'; kind: string; id: number; reasons: number; amount: number; detail: string }
  | { type: 'diagnostic'; code: string; at: number; phase: CoreState; detail: string }
  | {
      type: 'closed';
      code: number;
      codeName: string;
      origin: 'local' | 'remote';
      error: string;
      reason: string;
      resumable: boolean;
    }
  | { type: 'unexpected' };

export interface CoreConfig {
  profile?: string;
  bearer?: string;
  windowInitial?: number;
  windowMax?: number;
  replayCapacity?: number;
  heartbeatMs?: number;
  heartbeatMisses?: number;
  handshakeTimeoutMs?: number;
  resume?: boolean;
  maxFrame?: number;
}

export interface CoreChannelStats {
  sent: number;
  sendLimit: number;
  acked: number;
  received: number;
  consumed: number;
  recvLimit: number;
  window: number;
  replayBytes: number;
}

/** One wasm ClientSession handle; must be released with delete(). */
export interface CoreSession {
  state(): CoreState;
  transportOpen(now: number): CoreError | undefined;
  receive(text: boolean, message: Uint8Array, now: number): void;
  receiveClose(code: number, reason: string, now: number): void;
  transportLost(now: number): void;
  nextTimeout(): number | null;
  handleTimeout(now: number): void;
  pollOutput(): CoreOutput | null;
  outputBytes(): number;
  pollEvent(): CoreEvent | null;
  openChannel(host: string, port: number, kind: string, now: number): number | CoreError;
  write(id: number, data: Uint8Array, now: number): number | CoreError;
  available(id: number): number;
  consume(id: number, n: number, now: number): CoreError | undefined;
  closeChannel(id: number, reason: string, now: number): CoreError | undefined;
  resize(id: number, cols: number, rows: number, now: number): CoreError | undefined;
  setPaused(reason: number, on: boolean, now: number): void;
  pauseBits(): number;
  close(code: number, reason: string, now: number): void;
  resumeToken(): string | null;
  /** Before the first transportOpen(): resume this stored token with no channels. */
  adoptResumeToken(token: string): CoreError | undefined;
  rtt(): number | null;
  channelCount(): number;
  channelStats(id: number): CoreChannelStats | null;
  delete(): void;
  isDeleted(): boolean;
}

export interface CoreModule {
  ClientSession: new (config: CoreConfig, now: number) => CoreSession;
  liveSessions(): number;
  closeCodeName(code: number): string;
  closeCodeResumable(code: number): boolean;
}

/**
 * The embind class itself. Per-chunk calls carry numbers only: bytes go in through
 * inputBuffer(n) (a heap address) and come out as address + length in the Float64 fields at
 * fields(), valid until the next pollOutput() / pollEvent(); see bindings.cpp.
 */
export interface RawCoreSession {
  state(): CoreState;
  transportOpen(now: number): CoreError | undefined;
  inputBuffer(n: number): number;
  fields(): number;
  receive(text: boolean, n: number, now: number): void;
  receiveClose(code: number, reason: string, now: number): void;
  transportLost(now: number): void;
  nextTimeout(): number | null;
  handleTimeout(now: number): void;
  /** OutputKind of bindings.cpp: 0 none, 1 text, 2 binary, 3 close. */
  pollOutput(): number;
  outputCloseReason(): string;
  outputBytes(): number;
  /** EventKind of bindings.cpp: 0 none, 1 data, 2 writable, 3 other (see eventDetail()). */
  pollEvent(): number;
  eventDetail(): CoreEvent | null;
  openChannel(host: string, port: number, kind: string, now: number): number | CoreError;
  write(id: number, n: number, now: number): number | CoreError;
  available(id: number): number;
  consume(id: number, n: number, now: number): CoreError | undefined;
  closeChannel(id: number, reason: string, now: number): CoreError | undefined;
  resize(id: number, cols: number, rows: number, now: number): CoreError | undefined;
  setPaused(reason: number, on: boolean, now: number): void;
  pauseBits(): number;
  close(code: number, reason: string, now: number): void;
  resumeToken(): string | null;
  adoptResumeToken(token: string): CoreError | undefined;
  rtt(): number | null;
  channelCount(): number;
  channelStats(id: number): CoreChannelStats | null;
  delete(): void;
  isDeleted(): boolean;
}

/** The Emscripten module object (createManaCore's result). */
export interface RawCoreModule {
  ClientSession: new (config: CoreConfig, now: number) => RawCoreSession;
  liveSessions(): number;
  closeCodeName(code: number): string;
  closeCodeResumable(code: number): boolean;
  /** The heap views; replaced when memory grows, so read them after every call into wasm. */
  HEAPU8: Uint8Array;
  HEAPF64: Float64Array;
}

export function isCoreError(v: unknown): v is CoreError {
  return typeof v === 'object' && v !== null && 'error' in v;
}
