// SPDX-License-Identifier: Apache-2.0
// Typed errors. Every failure is a new instance (never a shared singleton) of a ManaError subclass
// carrying where it came from and whether the connection may resume. Which class a core error
// gets is the core's error table (core/include/mana/core/errc.def, generated into
// ./generated/errc.ts): the Errc's group names the class, as it names the C++ ErrcCondition.
import { errcGroup, groupErrorClasses, type ErrcName } from './generated/errc.js';

export type ErrorOrigin = 'local' | 'remote';

export interface ManaErrorInit {
  /** Library error code, e.g. `auth_failed`, `credit_overrun`, `transport_lost`. */
  code: string;
  origin: ErrorOrigin;
  /** WebSocket close code seen or sent (e.g. 1006, 4003); undefined when no close happened. */
  wsCode?: number | undefined;
  /** The protocol's close code (docs/close-codes.md, 4000-4999) when the close carried one. */
  appCode?: number | undefined;
  resumable?: boolean;
  cause?: unknown;
}

/**
 * Which SSH layer of a jump-host session (`via`) an error belongs to: `bastion` (hop 0 is the
 * outermost bastion, the one the gateway connects to) or `target` (hop = number of bastions).
 */
export interface SshLayer {
  role: 'bastion' | 'target';
  hop: number;
  host: string;
  port: number;
}

export class ManaError extends Error {
  readonly code: string;
  readonly origin: ErrorOrigin;
  readonly wsCode: number | undefined;
  readonly appCode: number | undefined;
  readonly resumable: boolean;
  /** Set on the errors of SSH sessions opened with `via`: the layer that failed. */
  sshLayer: SshLayer | undefined;

  constructor(message: string, init: ManaErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.origin = init.origin;
    this.wsCode = init.wsCode;
    this.appCode = init.appCode;
    this.resumable = init.resumable ?? false;
  }
}

/**
 * The peer (or we) broke the protocol: bad frame, unexpected message, oversized message; or an
 * implementation failed inside (4015 `internal`, 1011). Final: report it, do not retry unchanged.
 */
export class ProtocolError extends ManaError {}
/** Credit accounting was violated (credit_overrun, credit_overflow). */
export class FlowControlError extends ManaError {}
/** The gateway refused the credentials (4003). */
export class AuthError extends ManaError {}
/** Policy refused the connection or a limit was hit (4004, 4006, 1008, rate limits). */
export class PolicyError extends ManaError {}
/** A resume was refused or is impossible (4011, expired token, attempts exhausted). */
export class ResumeError extends ManaError {}
/** A handshake or heartbeat deadline passed (4012). */
export class ConnectionTimeoutError extends ManaError {}
/**
 * The transport failed, the server went away or shed load (1001, 1006, 4010, WebSocket errors):
 * reconnect with backoff; 1006 and 4010 are resumed by the connection itself.
 */
export class TransportError extends ManaError {}
/** The gateway refused a channel (open_err); `code` is the gateway's reason. */
export class ChannelOpenError extends ManaError {}
/** Local API misuse: a call in the wrong state or with a bad argument. Never from the peer. */
export class InvalidStateError extends ManaError {}
/** The connection was closed by the application (close() / dispose()). */
export class ClosedError extends ManaError {}

/** The InvalidStateError of an argument out of its domain (`invalid_argument`, local). */
export function invalidArgument(message: string): InvalidStateError {
  return new InvalidStateError(message, { code: 'invalid_argument', origin: 'local' });
}

/**
 * @internal Gives each class its `name` on the prototype, from the keys of `classes`: a minifier
 * renames classes (a default `vite build` turns AuthError into `Bs`) but keeps property keys, so
 * `e.name` and `String(e)` stay readable without `keepNames`.
 */
export function nameErrorClasses(classes: Record<string, { prototype: Error }>): void {
  for (const [name, cls] of Object.entries(classes)) {
    Object.defineProperty(cls.prototype, 'name', {
      value: name,
      writable: true,
      configurable: true,
    });
  }
}

/** Every error class by its name: the names the error table uses (GroupErrorClassName). */
const errorClasses = {
  ManaError,
  ProtocolError,
  FlowControlError,
  AuthError,
  PolicyError,
  ResumeError,
  ConnectionTimeoutError,
  TransportError,
  ChannelOpenError,
  InvalidStateError,
  ClosedError,
};
nameErrorClasses(errorClasses);

/** Builds the error for a connection close reported by the core (`error` = Errc name). */
export function errorFromClose(close: {
  error: string;
  code: number;
  origin: ErrorOrigin;
  reason: string;
  resumable: boolean;
  codeName?: string;
}): ManaError {
  const wsCode = close.code;
  const init: ManaErrorInit = {
    code: close.error === 'ok' ? 'closed' : close.error,
    origin: close.origin,
    wsCode,
    appCode: wsCode >= 4000 && wsCode <= 4999 ? wsCode : undefined,
    resumable: close.resumable,
  };
  const what = close.codeName ?? String(wsCode);
  const message =
    `connection closed (${what} ${wsCode}, ${close.origin})` +
    (close.reason ? `: ${close.reason}` : '');
  if (!Object.hasOwn(errcGroup, close.error)) return new ManaError(message, init);
  const classes = groupErrorClasses[errcGroup[close.error as ErrcName]];
  const cls = errorClasses[close.origin === 'local' ? classes.local : classes.remote];
  return new cls(message, init);
}

/** Builds the error for a failed local call into the core. */
export function errorFromCall(
  what: string,
  e: { error: string; origin: ErrorOrigin; detail: string },
): ManaError {
  const message = `${what}: ${e.error}` + (e.detail ? ` (${e.detail})` : '');
  return new InvalidStateError(message, { code: e.error, origin: e.origin });
}
