// Typed errors. Every failure is a new instance (never a shared singleton) of a ManaError subclass
// carrying where it came from and whether the connection may resume.

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

export class ManaError extends Error {
  readonly code: string;
  readonly origin: ErrorOrigin;
  readonly wsCode: number | undefined;
  readonly appCode: number | undefined;
  readonly resumable: boolean;

  constructor(message: string, init: ManaErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.origin = init.origin;
    this.wsCode = init.wsCode;
    this.appCode = init.appCode;
    this.resumable = init.resumable ?? false;
  }
}

/** The peer (or we) broke the protocol: bad frame, unexpected message, oversized message. */
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
/** The transport failed or the server went away (1001, 1006, 4010, WebSocket errors). */
export class TransportError extends ManaError {}
/** The gateway refused a channel (open_err); `code` is the gateway's reason. */
export class ChannelOpenError extends ManaError {}
/** Local API misuse: a call in the wrong state or with a bad argument. Never from the peer. */
export class InvalidStateError extends ManaError {}
/** The connection was closed by the application (close() / dispose()). */
export class ClosedError extends ManaError {}

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

nameErrorClasses({
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
});

const protocolCodes = new Set([
  'truncated_frame',
  'bad_length',
  'unknown_stream',
  'wrong_message_type',
  'bad_base64',
  'frame_too_large',
  'control_too_large',
  'bad_json',
  'json_too_deep',
  'not_an_object',
  'missing_field',
  'wrong_type',
  'out_of_range',
  'unknown_message_type',
  'expected_hello',
  'bad_hello',
  'unsupported_profile',
  'unexpected_message',
  'duplicate_channel',
  'unknown_channel',
  'internal',
]);

/** Builds the error for a connection close reported by the core (`code` = Errc name). */
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
  switch (close.error) {
    case 'auth_failed':
      return new AuthError(message, init);
    case 'policy_denied':
    case 'rate_limited':
    case 'channel_limit':
    case 'target_unreachable':
      return new PolicyError(message, init);
    case 'credit_overrun':
    case 'credit_overflow':
      return new FlowControlError(message, init);
    case 'resume_rejected':
    case 'resume_out_of_range':
      return new ResumeError(message, init);
    case 'timeout':
      return new ConnectionTimeoutError(message, init);
    case 'going_away':
    case 'server_overload':
      return new TransportError(message, init);
    case 'cancelled':
    case 'ok':
      return close.origin === 'local'
        ? new ClosedError(message, init)
        : new TransportError(message, init);
    case 'invalid_state':
    case 'invalid_argument':
    case 'buffer_full':
      return new InvalidStateError(message, init);
    default:
      return protocolCodes.has(close.error)
        ? new ProtocolError(message, init)
        : new ManaError(message, init);
  }
}

/** Builds the error for a failed local call into the core. */
export function errorFromCall(
  what: string,
  e: { error: string; origin: ErrorOrigin; detail: string },
): ManaError {
  const message = `${what}: ${e.error}` + (e.detail ? ` (${e.detail})` : '');
  return new InvalidStateError(message, { code: e.error, origin: e.origin });
}
