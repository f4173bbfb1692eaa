// SPDX-License-Identifier: Apache-2.0
// The messages between a page and the session worker (worker/host.ts). Every message carries
// `v: PROTOCOL_VERSION`; bytes travel as ArrayBuffers in the postMessage transfer list (moved, not
// copied by structured clone). Whatever arrives is checked by parsePageMessage / parseWorkerMessage
// before use: an unknown type, a wrong version, a missing or mistyped field, an oversized payload
// give a WorkerProtocolError (never an exception from deep inside the host or the view).
import type { KeyboardInteractivePrompt } from '../ssh/types.js';
import type { HostKeyInfo } from '../ssh/errors.js';
import {
  WorkerProtocolError,
  bool,
  buffer,
  fail,
  int,
  limits,
  optional,
  parseFailure,
  parseHostKeyInfo,
  rec,
  str,
  strings,
  type Rec,
} from './protocol-read.js';
import {
  idMax,
  parseConnect,
  parseConnectionPageMessage,
  parseConnectionWorkerMessage,
  withEndDetails,
  type ConnectionPageMessage,
  type ConnectionWorkerMessage,
  type WireConnectOptions,
} from './protocol-connection.js';
import { maxJumpHosts, parseSession, type WireSessionOptions } from './protocol-session.js';

export { WorkerProtocolError, limits };
export type { WireAuthMethod, WireJumpHost, WireSessionOptions } from './protocol-session.js';
export type {
  ConnectionEndReason,
  ConnectionPageMessage,
  ConnectionWorkerMessage,
  WireConnectOptions,
} from './protocol-connection.js';

/** Bumped on every incompatible change; the worker name carries it too (client.ts). */
export const PROTOCOL_VERSION = 1;

export type PageMessage =
  /** First message of a page: the Web Lock it holds while alive. */
  | { v: 1; type: 'hello'; pageId: string; lock: string | null }
  | {
      v: 1;
      type: 'open';
      req: number;
      /** A new connection for this session; absent when `connectionId` names a hosted one. */
      connect?: WireConnectOptions;
      /** The hosted connection (`connected`) the session is opened on, sharing its WebSocket. */
      connectionId?: string;
      session: WireSessionOptions;
      graceMs?: number;
      scrollback?: number;
      /**
       * A byte stream (an exec's output, a download), not a terminal: no screen model; the bytes
       * not consumed by the controlling view are kept (bounded by the session's credit) and
       * replayed on attach, so a reattaching page continues byte-exact from `attached.offset`.
       */
      stream?: boolean;
    }
  | {
      v: 1;
      type: 'attach';
      req: number;
      sessionId: string;
      secret: string;
      readOnly: boolean;
      takeOver: boolean;
    }
  | { v: 1; type: 'hostkey-answer'; req: number; accept: boolean }
  /**
   * The answers to keyboard-interactive round `req` (one per prompt; secrets: never logged, never
   * echoed back), or null: the page's handler threw or there is none (the attempt is cancelled).
   */
  | { v: 1; type: 'kbd-answer'; req: number; answers: string[] | null }
  /**
   * The webauthn signature blob for security-key question `req`, or null with the page's
   * SecurityKeyError code (`security_key_cancelled`, ...) and message: the attempt is cancelled.
   */
  | {
      v: 1;
      type: 'sign-answer';
      req: number;
      signature: ArrayBuffer | null;
      code?: string;
      message?: string;
    }
  | { v: 1; type: 'input'; sessionId: string; data: ArrayBuffer }
  | { v: 1; type: 'consume'; sessionId: string; n: number }
  | { v: 1; type: 'resize'; sessionId: string; cols: number; rows: number }
  | { v: 1; type: 'detach'; sessionId: string }
  | { v: 1; type: 'close'; sessionId: string }
  /** The page is going away (pagehide): detach all its views now. */
  | { v: 1; type: 'bye' }
  | ConnectionPageMessage;

/** Why a session ended (`session-ended`). */
export type SessionEndReason = 'exit' | 'closed' | 'error' | 'detached-too-long';

/** Error codes of `error` replies. */
export type WorkerErrorCode =
  | 'protocol'
  | 'version'
  | 'unknown-session'
  | 'bad-secret'
  | 'busy'
  | 'not-attached'
  | 'read-only'
  | 'open-failed'
  | 'limit'
  | 'unknown-connection';

/**
 * The typed error of a failed `open` (an SshAuthError, HostKeyError, ... of the worker's session),
 * rebuilt as the same class in the page (worker/failure.ts).
 */
export interface WireFailure {
  /** The error class: SshAuthError, HostKeyError, SshError, SessionLostError, AuthError, ... */
  name: string;
  code: string;
  origin: 'local' | 'remote';
  message: string;
  sshCode?: number;
  /** SshAuthError: the methods the server allows. */
  methods?: string[];
  /** HostKeyError: the key that was refused. */
  hostKey?: HostKeyInfo;
  wsCode?: number;
  appCode?: number;
}

export type WorkerMessage =
  | {
      v: 1;
      type: 'ready';
      mode: 'shared' | 'dedicated' | 'page';
      /**
       * The worker returns input room in `writable` (views limit write() to it); absent from
       * workers of before that (a SharedWorker of an older release may still run after a deploy).
       */
      inputRoom?: boolean;
      /**
       * The worker runs `session.via` (jump hosts); a worker of before that would ignore the
       * field and open the session to `target` directly, so the page refuses `via` without it.
       */
      via?: boolean;
      /** The worker asks the page to sign `securityKey` methods (`sign`); older workers refuse them. */
      securityKey?: boolean;
    }
  | { v: 1; type: 'opened'; req: number; sessionId: string; secret: string }
  | {
      v: 1;
      type: 'attached';
      req: number;
      sessionId: string;
      readOnly: boolean;
      screen: string;
      /**
       * Output bytes the attach starts after: a stream session replays from here (the bytes the
       * controlling view consumed so far); a terminal session's screen stands for this many.
       */
      offset: number;
    }
  /**
   * A host key of the session being opened by request `open` (absent from older workers); `hop`:
   * of its bastion `via[hop]`, absent: of the target.
   */
  | { v: 1; type: 'hostkey'; req: number; info: HostKeyInfo; open?: number; hop?: number }
  /**
   * One keyboard-interactive round of the session being opened by request `open` (the page runs
   * that request's handler and answers with `kbd-answer` `req`); `hop`: of its bastion `via[hop]`
   * (that bastion's handler), absent: of the target.
   */
  | {
      v: 1;
      type: 'kbd';
      req: number;
      open: number;
      hop?: number;
      name: string;
      instruction: string;
      prompts: KeyboardInteractivePrompt[];
    }
  /**
   * The session being opened by request `open` needs its security key's signature over `data`
   * (the page runs signWithSecurityKey, or the method's `sign`, and answers `sign-answer` `req`).
   */
  | { v: 1; type: 'sign'; req: number; open: number; data: ArrayBuffer }
  | { v: 1; type: 'data'; sessionId: string; data: ArrayBuffer; stream: 'stdout' | 'stderr' }
  | { v: 1; type: 'writable'; sessionId: string; room: number }
  | { v: 1; type: 'exit'; sessionId: string; code?: number; signal?: string }
  /** This view lost the session (another page took it over, or it was too slow). */
  | { v: 1; type: 'detached'; sessionId: string; reason: 'taken-over' | 'overrun' }
  | {
      v: 1;
      type: 'session-ended';
      sessionId: string;
      reason: SessionEndReason;
      code?: string;
      message?: string;
    }
  | {
      v: 1;
      type: 'error';
      req?: number;
      sessionId?: string;
      code: WorkerErrorCode;
      message: string;
      /** `open-failed`: the session's typed error. */
      failure?: WireFailure;
    }
  | ConnectionWorkerMessage;

function header(raw: unknown): { m: Rec; type: string } {
  const m = rec(raw, 'message');
  if (m.v !== PROTOCOL_VERSION) {
    throw new WorkerProtocolError(
      `version ${String(m.v)} is not ${PROTOCOL_VERSION} (a page and a worker of different releases)`,
      { code: 'version', origin: 'remote' },
    );
  }
  return { m, type: str(m, 'type', 32) };
}

const sessionIdMax = 64;

/** Validates a message from a page. Throws WorkerProtocolError. */
export function parsePageMessage(raw: unknown): PageMessage {
  const { m, type } = header(raw);
  const v = PROTOCOL_VERSION;
  switch (type) {
    case 'hello': {
      const lock = m.lock === null ? null : str(m, 'lock', 256);
      return { v, type, pageId: str(m, 'pageId', 64), lock };
    }
    case 'open': {
      const msg: PageMessage = {
        v,
        type,
        req: int(m, 'req', 0, Number.MAX_SAFE_INTEGER),
        session: parseSession(m.session),
      };
      // Exactly one of the two: a new connection, or a hosted one.
      if ((m.connect === undefined) === (m.connectionId === undefined)) {
        fail('open: connect or connectionId expected (one of them)');
      }
      if (m.connect !== undefined) msg.connect = parseConnect(m.connect);
      else msg.connectionId = str(m, 'connectionId', idMax);
      const grace = optional(m, 'graceMs', (r, k) =>
        int(r, k, limits.minGraceMs, limits.maxGraceMs),
      );
      if (grace !== undefined) msg.graceMs = grace;
      const scrollback = optional(m, 'scrollback', (r, k) => int(r, k, 0, 100_000));
      if (scrollback !== undefined) msg.scrollback = scrollback;
      const stream = optional(m, 'stream', bool);
      if (stream !== undefined) msg.stream = stream;
      return msg;
    }
    case 'attach':
      return {
        v,
        type,
        req: int(m, 'req', 0, Number.MAX_SAFE_INTEGER),
        sessionId: str(m, 'sessionId', sessionIdMax),
        secret: str(m, 'secret', 128),
        readOnly: bool(m, 'readOnly'),
        takeOver: bool(m, 'takeOver'),
      };
    case 'hostkey-answer':
      return {
        v,
        type,
        req: int(m, 'req', 0, Number.MAX_SAFE_INTEGER),
        accept: bool(m, 'accept'),
      };
    case 'kbd-answer':
      return {
        v,
        type,
        req: int(m, 'req', 0, Number.MAX_SAFE_INTEGER),
        answers:
          m.answers === null
            ? null
            : strings(m.answers, 'answers', limits.maxKbdPrompts, limits.maxSecretText),
      };
    case 'sign-answer': {
      const out: PageMessage = {
        v,
        type,
        req: int(m, 'req', 0, Number.MAX_SAFE_INTEGER),
        signature: m.signature === null ? null : buffer(m, 'signature', limits.maxSignatureBytes),
      };
      const code = optional(m, 'code', (r, k) => str(r, k, 64));
      if (code !== undefined) out.code = code;
      const message = optional(m, 'message', (r, k) => str(r, k));
      if (message !== undefined) out.message = message;
      return out;
    }
    case 'input':
      return {
        v,
        type,
        sessionId: str(m, 'sessionId', sessionIdMax),
        data: buffer(m, 'data', limits.maxInputBytes),
      };
    case 'consume':
      return {
        v,
        type,
        sessionId: str(m, 'sessionId', sessionIdMax),
        n: int(m, 'n', 0, Number.MAX_SAFE_INTEGER),
      };
    case 'resize':
      return {
        v,
        type,
        sessionId: str(m, 'sessionId', sessionIdMax),
        cols: int(m, 'cols', 1, limits.maxCols),
        rows: int(m, 'rows', 1, limits.maxRows),
      };
    case 'detach':
    case 'close':
      return { v, type, sessionId: str(m, 'sessionId', sessionIdMax) };
    case 'bye':
      return { v, type };
    default:
      return (
        parseConnectionPageMessage(m, type) ?? fail(`unknown message type ${JSON.stringify(type)}`)
      );
  }
}

const endReasons: readonly string[] = ['exit', 'closed', 'error', 'detached-too-long'];

/** Validates a message from the worker (the page trusts nothing it did not check). */
export function parseWorkerMessage(raw: unknown): WorkerMessage {
  const { m, type } = header(raw);
  const v = PROTOCOL_VERSION;
  const req = () => int(m, 'req', 0, Number.MAX_SAFE_INTEGER);
  const sid = () => str(m, 'sessionId', sessionIdMax);
  switch (type) {
    case 'ready': {
      const mode = str(m, 'mode', 16);
      if (mode !== 'shared' && mode !== 'dedicated' && mode !== 'page') fail('mode: unknown');
      const out: WorkerMessage = { v, type, mode };
      if (m.inputRoom === true) out.inputRoom = true;
      if (m.via === true) out.via = true;
      if (m.securityKey === true) out.securityKey = true;
      return out;
    }
    case 'opened':
      return { v, type, req: req(), sessionId: sid(), secret: str(m, 'secret', 128) };
    case 'attached':
      return {
        v,
        type,
        req: req(),
        sessionId: sid(),
        readOnly: bool(m, 'readOnly'),
        screen: str(m, 'screen', limits.maxScreenChars),
        offset: int(m, 'offset', 0, Number.MAX_SAFE_INTEGER),
      };
    case 'hostkey': {
      const out: WorkerMessage = {
        v,
        type,
        req: req(),
        info: parseHostKeyInfo(m.info, 'info', ['new', 'match']),
      };
      const open = optional(m, 'open', (r, k) => int(r, k, 0, Number.MAX_SAFE_INTEGER));
      if (open !== undefined) out.open = open;
      const hop = optional(m, 'hop', (r, k) => int(r, k, 0, maxJumpHosts - 1));
      if (hop !== undefined) out.hop = hop;
      return out;
    }
    case 'kbd': {
      const ps = m.prompts;
      if (!Array.isArray(ps) || ps.length > limits.maxKbdPrompts) {
        fail(`prompts: not a list of <= ${limits.maxKbdPrompts} prompts`);
      }
      const out: WorkerMessage = {
        v,
        type,
        req: req(),
        open: int(m, 'open', 0, Number.MAX_SAFE_INTEGER),
        name: str(m, 'name'),
        instruction: str(m, 'instruction'),
        prompts: ps.map((p: unknown) => {
          const r = rec(p, 'prompt');
          return { prompt: str(r, 'prompt'), echo: bool(r, 'echo') };
        }),
      };
      const hop = optional(m, 'hop', (r, k) => int(r, k, 0, maxJumpHosts - 1));
      if (hop !== undefined) out.hop = hop;
      return out;
    }
    case 'sign':
      return {
        v,
        type,
        req: req(),
        open: int(m, 'open', 0, Number.MAX_SAFE_INTEGER),
        data: buffer(m, 'data', limits.maxSignBytes),
      };
    case 'data': {
      const stream = m.stream === 'stderr' ? 'stderr' : 'stdout';
      return { v, type, sessionId: sid(), data: buffer(m, 'data', 64 * 1024 * 1024), stream };
    }
    case 'writable':
      return { v, type, sessionId: sid(), room: int(m, 'room', 0, Number.MAX_SAFE_INTEGER) };
    case 'exit': {
      const out: WorkerMessage = { v, type, sessionId: sid() };
      const code = optional(m, 'code', (r, k) => int(r, k, -(2 ** 31), 2 ** 31));
      if (code !== undefined) out.code = code;
      const signal = optional(m, 'signal', (r, k) => str(r, k, 64));
      if (signal !== undefined) out.signal = signal;
      return out;
    }
    case 'detached': {
      const reason = str(m, 'reason', 32);
      if (reason !== 'taken-over' && reason !== 'overrun') fail('reason: unknown');
      return { v, type, sessionId: sid(), reason };
    }
    case 'session-ended': {
      const reason = str(m, 'reason', 32);
      if (!endReasons.includes(reason)) fail('reason: unknown');
      const out: WorkerMessage = {
        v,
        type,
        sessionId: sid(),
        reason: reason as SessionEndReason,
      };
      return withEndDetails(m, out);
    }
    case 'error': {
      const out: WorkerMessage = {
        v,
        type,
        code: str(m, 'code', 32) as WorkerErrorCode,
        message: str(m, 'message'),
      };
      const r = optional(m, 'req', (x, k) => int(x, k, 0, Number.MAX_SAFE_INTEGER));
      if (r !== undefined) out.req = r;
      const s = optional(m, 'sessionId', (x, k) => str(x, k, sessionIdMax));
      if (s !== undefined) out.sessionId = s;
      if (m.failure !== undefined) out.failure = parseFailure(m.failure);
      return out;
    }
    default:
      return (
        parseConnectionWorkerMessage(m, type) ??
        fail(`unknown message type ${JSON.stringify(type)}`)
      );
  }
}

/** Where messages go: a MessagePort, a Worker, or a DedicatedWorkerGlobalScope. */
export interface PortLike {
  postMessage(message: unknown, transfer: Transferable[]): void;
}

/**
 * Posts `bytes` as a transferred ArrayBuffer. A view onto a larger buffer (or onto wasm memory)
 * is copied once into its own buffer first; a whole buffer is moved as it is.
 */
export function transferable(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer;
  }
  return new Uint8Array(bytes).buffer; // a copy: Buffer#slice would be a view
}
