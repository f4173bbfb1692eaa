// @mana/websocket: the browser client of mana-websocket. See docs/browser-client.md.
export { connect, Connection } from './connect.js';
export type {
  ConnectOptions,
  ConnectEnvironment,
  ConnectionState,
  DiagnosticEvent,
  DocumentLike,
  PauseReason,
  PersistenceEvent,
  PolicyEvent,
  ReconnectOptions,
  ServerInfo,
  StateChangeEvent,
  StoredSessionOutcome,
  WebSocketConstructor,
  WebSocketLike,
} from './connection-types.js';
export { backoffDelay } from './reconnect.js';
export { SUBPROTOCOL } from './transport.js';
export {
  Channel,
  type ChannelCloseEvent,
  type ChannelData,
  type ChannelExitEvent,
  type ChannelState,
  type ChannelStats,
  type OpenChannelOptions,
} from './channel.js';
export type { DisposableLike, EventRegistration, Listener } from './emitter.js';
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
  type SshLayer,
} from './errors.js';
export type { StorageMode } from './storage.js';
export { SshSession } from './ssh/session.js';
export type * from './ssh/types.js';
export {
  HostKeyError,
  SessionLostError,
  SshAlgorithmError,
  SshAuthError,
  SshError,
  SshTunnelError,
  type HostKeyInfo,
  type SshAlgorithmKind,
  type SshOpenFailureReason,
} from './ssh/errors.js';
export {
  defaultSshAlgorithms,
  legacySshAlgorithms,
  type SshAlgorithmLists,
  type SshAlgorithms,
} from './ssh/algorithms.js';
export { forgetHostKey, type KeyValueStorage, type KnownHostsOption } from './ssh/known-hosts.js';
export {
  enrollSecurityKey,
  signWithSecurityKey,
  SecurityKeyError,
  type EnrolledSecurityKey,
  type EnrollSecurityKeyOptions,
  type SecurityKeyCredential,
} from './ssh/security-key.js';
export { loadSshModule as loadSsh, liveSshEngines, type SshLoadOptions } from './internal/ssh.js';
export {
  attachTerminal,
  ManaAttachAddon,
  type AttachTerminalOptions,
  type SessionChunk,
  type TerminalAttachment,
  type TerminalAttachmentStats,
  type TerminalLike,
  type TerminalOutputFilter,
  type TerminalSessionLike,
  type TerminalStream,
} from './xterm.js';
export {
  loadCoreModule as loadCore,
  liveCoreSessions,
  type CoreLoadOptions,
} from './internal/core.js';
export {
  ManaWorkerClient,
  WorkerRequestError,
  WORKER_NAME,
  type WorkerClientOptions,
  type WorkerMode,
  type WorkerSessionOptions,
} from './worker/client.js';
export { RemoteSshSession, type DetachReason, type RemoteSessionState } from './worker/view.js';
export {
  RemoteChannel,
  RemoteConnection,
  type RemoteChannelOptions,
  type RemoteCloseEvent,
} from './worker/remote-connection.js';
export {
  PROTOCOL_VERSION as WORKER_PROTOCOL_VERSION,
  WorkerProtocolError,
  type SessionEndReason,
  type ConnectionEndReason,
} from './worker/protocol.js';
