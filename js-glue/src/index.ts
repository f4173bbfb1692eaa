// @mana/websocket: the browser client of mana-websocket. See docs/browser-client.md.
export {
  connect,
  backoffDelay,
  Connection,
  SUBPROTOCOL,
  type ConnectOptions,
  type ConnectEnvironment,
  type ConnectionState,
  type DiagnosticEvent,
  type DocumentLike,
  type PauseReason,
  type PersistenceEvent,
  type PolicyEvent,
  type ReconnectOptions,
  type ServerInfo,
  type StateChangeEvent,
  type WebSocketConstructor,
  type WebSocketLike,
} from './connection.js';
export {
  Channel,
  type ChannelCloseEvent,
  type ChannelData,
  type ChannelExitEvent,
  type ChannelState,
  type ChannelStats,
  type OpenChannelOptions,
} from './channel.js';
export type { Disposable, EventRegistration, Listener } from './emitter.js';
export {
  AuthError,
  ChannelOpenError,
  ClosedError,
  ConnectionTimeoutError,
  FlowControlError,
  InvalidStateError,
  ManaError,
  PolicyError,
  ProtocolError,
  ResumeError,
  TransportError,
  type ErrorOrigin,
} from './errors.js';
export type { StorageMode } from './storage.js';
export {
  loadCoreModule as loadCore,
  liveCoreSessions,
  type CoreLoadOptions,
} from './internal/core.js';
