// SPDX-License-Identifier: Apache-2.0
// The session worker's host: it owns the connections and SSH sessions (through connect() and
// openSession(), see worker/entry.ts) and serves the pages connected to it. One host runs in a
// SharedWorker (sessions outlive a reload), in a dedicated Worker, or in the page itself (the
// fallbacks of worker/client.ts) with the same messages (worker/protocol.ts).
//
// Rules
//   - Every message is validated (parsePageMessage); a bad one gets an `error` reply, never a throw.
//   - A page reaches a session only with its attach secret (256 bits, constant-time comparison);
//     one controlling view per session, `takeOver` replaces it, one read-only view besides.
//   - A page that goes away (its Web Lock is released, or it said `bye`) loses its views; a
//     session without a view is ended after its grace (default 30 s) with `session-ended`.
//   - The opening page answers the session's questions (worker/questions.ts): its host keys when
//     it verifies them, each keyboard-interactive round when its auth has that method, and the
//     security key's signature (a worker has no navigator.credentials). Answers go into the
//     session and nowhere else (never logged, never in a reply).
//   - A failed open is an `error` whose `failure` names the session's typed error (failure.ts).
//   - Bounded: queued input per session, a read-only view's lag, the ended-session memory, the
//     pending questions, the sessions per host.
import type { HostKeyInfo } from '../ssh/errors.js';
import { SecurityKeyError } from '../ssh/security-key.js';
import type { KeyboardInteractiveHandler, SecurityKeySigner } from '../ssh/types.js';
import { toFailure } from './failure.js';
import type { HostedConnection, HostConnection } from './hosted-connection.js';
import { HostConnections } from './host-connections.js';
import { HostedSession, type HostSession, type PageLink } from './hosted-session.js';
import {
  PROTOCOL_VERSION,
  WorkerProtocolError,
  limits,
  parsePageMessage,
  type PageMessage,
  type SessionEndReason,
  type WireConnectOptions,
  type WireSessionOptions,
  type WorkerErrorCode,
  type WorkerMessage,
} from './protocol.js';
import { PageQuestions, kbdRoundFits } from './questions.js';
import { DEFAULT_SCROLLBACK, type ScreenModel } from './screen.js';
import type { HostOptions } from './host-options.js';
import { newSecret, newSessionId, secretsEqual } from './secret.js';

export type { HostOptions } from './host-options.js';

/** A page's port as the host sees it (a MessagePort, or a dedicated worker's global scope). */
export interface HostPort {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: { data: unknown }) => void): void;
  start?(): void;
}

export interface OpenedSession {
  session: HostSession;
  /** Disposes the session's connection. */
  release(): void;
}

/** The opening page's answers, as the SshSession's options take them. */
export interface PageAsk {
  /**
   * hostKey.verify of the page for the target (`hop` undefined) or for bastion `via[hop]`;
   * undefined when the page verifies none of them (`verifyHostKey` unset on all).
   */
  verifyHostKey: ((info: HostKeyInfo, hop?: number) => Promise<boolean>) | undefined;
  /**
   * The handler of the `keyboardInteractive` methods (protocol.ts WireAuthMethod) of the target
   * (`hop` undefined) or of bastion `via[hop]`: asks the page; throws (so the attempt is
   * cancelled: SshAuthError `auth_cancelled`) when the page's handler threw, the page went away,
   * did not answer in time, or the round exceeds the message bounds.
   */
  keyboardInteractive: (
    prompts: Parameters<KeyboardInteractiveHandler>[0],
    info: Parameters<KeyboardInteractiveHandler>[1],
    hop?: number,
  ) => Promise<string[]>;
  /**
   * The signer of the `securityKey` methods: asks the page (`sign`); throws SecurityKeyError with
   * the page's code when it did not sign, went away or did not answer in time.
   */
  signSecurityKey: SecurityKeySigner;
}

export interface HostDeps {
  mode: 'shared' | 'dedicated' | 'page';
  /** Opens a connection and an SSH session on it (flow 'manual'). */
  open(
    connect: WireConnectOptions,
    session: WireSessionOptions,
    ask: PageAsk,
  ): Promise<OpenedSession>;
  /** Opens a connection that channels and sessions share (`connect`); absent: refused. */
  connect?(connect: WireConnectOptions): Promise<HostConnection>;
  screen(cols: number, rows: number, scrollback: number): ScreenModel;
  /** Resolves when the Web Lock `name` is free: the page that held it is gone. */
  watchLock?(name: string): Promise<void>;
  timers?: { set: typeof setTimeout; clear: typeof clearTimeout };
}

/** Ended sessions remembered (so a page that comes back learns why). */
const ENDED_MEMORY = 256;
const MAX_QUESTIONS = 16;

interface PageState extends PageLink {
  readonly port: HostPort;
  pageId: string;
  gone: boolean;
}

export class WorkerHost {
  readonly #deps: HostDeps;
  readonly #graceMs: number;
  readonly #maxSessions: number;
  readonly #connections: HostConnections<PageState>;
  readonly #maxInput: number;
  readonly #maxLag: number;
  readonly #frameLag: number;
  readonly #frameInterval: number;
  readonly #hostKeyTimeoutMs: number;
  readonly #kbdTimeoutMs: number;
  readonly #signTimeoutMs: number;
  readonly #sessions = new Map<string, HostedSession>();
  readonly #ended = new Map<string, { reason: SessionEndReason; code?: string }>();
  readonly #questions: PageQuestions<PageState>;
  #opening = 0;
  /** Messages refused as malformed (for tests and diagnostics). */
  protocolErrors = 0;

  constructor(deps: HostDeps, options: HostOptions = {}) {
    this.#deps = deps;
    this.#graceMs = options.graceMs ?? 30_000;
    this.#maxSessions = options.maxSessions ?? 64;
    this.#maxInput = options.maxInputBytes ?? 1024 * 1024;
    this.#maxLag = options.maxReadOnlyLag ?? 4 * 1024 * 1024;
    this.#frameLag = options.frameLagBytes ?? 16 * 1024;
    this.#frameInterval = options.frameIntervalMs ?? 16;
    this.#hostKeyTimeoutMs = options.hostKeyTimeoutMs ?? 120_000;
    this.#kbdTimeoutMs = options.kbdTimeoutMs ?? 120_000;
    this.#signTimeoutMs = options.signTimeoutMs ?? 120_000;
    this.#questions = new PageQuestions(MAX_QUESTIONS, deps.timers);
    this.#connections = new HostConnections<PageState>({
      connect: deps.connect?.bind(deps),
      graceMs: this.#graceMs,
      maxConnections: options.maxConnections ?? 16,
      timers: deps.timers,
      error: (page, code, message, raw) => {
        this.#error(page, code, message, raw);
      },
      openFailed: (page, req, e) => {
        this.#openFailed(page, req, e);
      },
      host: (page, req, graceMs, on, how) => this.#host(page, req, graceMs, on, how),
    });
  }

  /** The hosted sessions, by id (tests, diagnostics). */
  session(id: string): HostedSession | undefined {
    return this.#sessions.get(id);
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The hosted connections, by id (tests, diagnostics). */
  connection(id: string): HostedConnection | undefined {
    return this.#connections.get(id);
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Serves a new page on `port`. */
  addPort(port: HostPort): void {
    const page: PageState = {
      port,
      pageId: '',
      gone: false,
      send: (msg: WorkerMessage, transfer: Transferable[] = []) => {
        if (page.gone) return;
        try {
          port.postMessage(msg, transfer);
        } catch {
          // A closed port: the page is gone; its lock tells the host.
        }
      },
    };
    port.addEventListener('message', (e) => {
      this.#receive(page, e.data);
    });
    port.start?.();
  }

  #receive(page: PageState, raw: unknown): void {
    let msg: PageMessage;
    try {
      msg = parsePageMessage(raw);
    } catch (e) {
      this.protocolErrors++;
      const code =
        e instanceof WorkerProtocolError && e.code === 'version' ? 'version' : 'protocol';
      this.#error(page, code, e instanceof Error ? e.message : String(e), raw);
      return;
    }
    if (page.gone) return;
    try {
      this.#dispatch(page, msg);
    } catch (e) {
      // A session call refused (e.g. resize of a closing session): reported, not thrown.
      const sid = 'sessionId' in msg ? msg.sessionId : undefined;
      page.send({
        v: 1,
        type: 'error',
        code: 'protocol',
        message: e instanceof Error ? e.message : String(e),
        ...(sid !== undefined ? { sessionId: sid } : {}),
      });
    }
  }

  #error(page: PageState, code: WorkerErrorCode, message: string, raw?: unknown): void {
    const m = raw as { req?: unknown; sessionId?: unknown; connectionId?: unknown } | null;
    const msg: WorkerMessage = { v: 1, type: 'error', code, message };
    if (typeof m?.req === 'number' && Number.isSafeInteger(m.req) && m.req >= 0) msg.req = m.req;
    if (typeof m?.sessionId === 'string' && m.sessionId.length <= 64) msg.sessionId = m.sessionId;
    else if (typeof m?.connectionId === 'string' && m.connectionId.length <= 64) {
      msg.sessionId = m.connectionId;
    }
    page.send(msg);
  }

  #dispatch(page: PageState, msg: PageMessage): void {
    switch (msg.type) {
      case 'hello':
        page.pageId = msg.pageId;
        page.send({
          v: 1,
          type: 'ready',
          mode: this.#deps.mode,
          inputRoom: true,
          via: true,
          securityKey: true,
        });
        if (msg.lock !== null && this.#deps.watchLock) {
          void this.#deps.watchLock(msg.lock).then(() => {
            this.#pageGone(page);
          });
        }
        return;
      case 'bye':
        this.#pageGone(page);
        return;
      case 'open':
        void this.#open(page, msg);
        return;
      case 'attach':
        this.#attach(page, msg);
        return;
      case 'connect':
        void this.#connections.connect(page, msg);
        return;
      case 'attach-connection':
      case 'open-channel':
      case 'release-connection':
      case 'connection-status':
      case 'pause-connection':
      case 'close-connection':
        this.#connections.message(page, msg);
        return;
      case 'hostkey-answer':
        if (!this.#questions.answer(page, 'hostkey', msg.req, msg.accept)) {
          this.#error(page, 'protocol', `no host-key question ${msg.req}`, msg);
        }
        return;
      case 'kbd-answer':
        // Only the request number goes into a reply: the answers are secrets.
        if (!this.#questions.answer(page, 'kbd', msg.req, msg.answers)) {
          this.#error(page, 'protocol', `no keyboard-interactive question ${msg.req}`, {
            req: msg.req,
          });
        }
        return;
      case 'sign-answer':
        if (!this.#questions.answer(page, 'sign', msg.req, msg)) {
          this.#error(page, 'protocol', `no security-key question ${msg.req}`, { req: msg.req });
        }
        return;
      default:
        this.#sessionMessage(page, msg);
    }
  }

  #sessionMessage(
    page: PageState,
    msg: Extract<
      PageMessage,
      { type: 'input' | 'consume' | 'resize' | 'detach' | 'close' | 'channel-stats' }
    >,
  ): void {
    const s = this.#sessions.get(msg.sessionId);
    if (!s?.isViewer(page)) {
      this.#error(page, 'not-attached', `not attached to session ${msg.sessionId}`, msg);
      return;
    }
    if (msg.type === 'channel-stats') {
      page.send({ v: 1, type: 'channel-stats', req: msg.req, sessionId: s.id, stats: s.stats() });
      return;
    }
    if (msg.type === 'consume') {
      if (!s.consume(page, msg.n)) {
        this.#error(page, 'protocol', `consume ${msg.n}: more than was sent`, msg);
      }
      return;
    }
    if (msg.type === 'detach') {
      s.detach(page);
      return;
    }
    if (!s.isControl(page)) {
      this.#error(page, 'read-only', `a read-only view cannot ${msg.type}`, msg);
      return;
    }
    switch (msg.type) {
      case 'input':
        if (!s.input(new Uint8Array(msg.data))) {
          this.#error(page, 'limit', 'input queue full: bytes dropped', msg);
        }
        return;
      case 'resize':
        s.resize(msg.cols, msg.rows);
        return;
      case 'close':
        s.close();
        return;
    }
  }

  async #open(page: PageState, msg: Extract<PageMessage, { type: 'open' }>): Promise<void> {
    const ask: PageAsk = {
      verifyHostKey:
        msg.session.verifyHostKey === true || msg.session.via?.some((h) => h.verifyHostKey)
          ? (info: HostKeyInfo, hop?: number) => this.#askHostKey(page, msg.req, info, hop)
          : undefined,
      keyboardInteractive: (prompts, info, hop) => this.#askKbd(page, msg.req, prompts, info, hop),
      signSecurityKey: (_credential, data) => this.#askSign(page, msg.req, data),
    };
    const term = msg.session.term ?? { cols: 80, rows: 24 };
    const on = msg.connectionId !== undefined ? this.#connections.get(msg.connectionId) : undefined;
    if (msg.connectionId !== undefined && !on?.isViewer(page)) {
      this.#error(page, 'unknown-connection', `no connection ${msg.connectionId} here`, msg);
      return;
    }
    await this.#host(page, msg.req, msg.graceMs, on, {
      open: async () =>
        on !== undefined
          ? { session: await on.conn.openSession(msg.session, ask), release: () => undefined }
          : this.#deps.open(msg.connect ?? { url: '' }, msg.session, ask),
      screen: () =>
        msg.stream === true
          ? null
          : this.#deps.screen(term.cols, term.rows, msg.scrollback ?? DEFAULT_SCROLLBACK),
    });
  }

  /**
   * Opens a session (or a channel) with `how` and hosts it: `opened` to the page, which is its
   * controlling view; on a hosted connection `on`, which it keeps in use until it ends.
   */
  async #host(
    page: PageState,
    req: number,
    graceMs: number | undefined,
    on: HostedConnection | undefined,
    how: { open: () => Promise<OpenedSession>; screen: () => ScreenModel | null },
  ): Promise<void> {
    if (this.#sessions.size + this.#opening >= this.#maxSessions) {
      this.#error(page, 'limit', `this worker keeps at most ${this.#maxSessions} sessions`, {
        req,
      });
      return;
    }
    this.#opening++;
    let opened: OpenedSession;
    try {
      opened = await how.open();
    } catch (e) {
      this.#openFailed(page, req, e);
      return;
    } finally {
      this.#opening--;
    }
    const id = newSessionId();
    const secret = newSecret();
    const hosted: HostedSession = new HostedSession({
      id,
      secret,
      session: opened.session,
      screen: how.screen(),
      release: () => {
        opened.release();
        on?.unuse(hosted);
      },
      graceMs: graceMs ?? this.#graceMs,
      maxInputBytes: this.#maxInput,
      maxReadOnlyLag: this.#maxLag,
      frameLagBytes: this.#frameLag,
      frameIntervalMs: this.#frameInterval,
      ...(this.#deps.timers ? { timers: this.#deps.timers } : {}),
      ended: (reason, code) => {
        this.#sessions.delete(id);
        this.#ended.set(id, code !== undefined ? { reason, code } : { reason });
        if (this.#ended.size > ENDED_MEMORY) {
          const oldest = this.#ended.keys().next().value;
          if (oldest !== undefined) this.#ended.delete(oldest);
        }
      },
    });
    this.#sessions.set(id, hosted);
    // A connection that ended while this opened: the session ended with it (`session-ended`).
    if (on?.ended === true) hosted.end('closed');
    else on?.use(hosted);
    if (page.gone) {
      hosted.detach(page);
    } else {
      hosted.attachOpener(page);
    }
    page.send({ v: 1, type: 'opened', req, sessionId: id, secret });
  }

  /** `open-failed` for request `req`, with the typed error `e` (failure.ts). */
  #openFailed(page: PageState, req: number, e: unknown): void {
    const code = (e as { code?: unknown }).code;
    const failure = toFailure(e);
    page.send({
      v: 1,
      type: 'error',
      req,
      code: 'open-failed',
      message: `${typeof code === 'string' ? `${code}: ` : ''}${e instanceof Error ? e.message : String(e)}`,
      ...(failure !== undefined ? { failure } : {}),
    });
  }

  #attach(page: PageState, msg: Extract<PageMessage, { type: 'attach' }>): void {
    const s = this.#sessions.get(msg.sessionId);
    if (s === undefined) {
      const ended = this.#ended.get(msg.sessionId);
      if (ended !== undefined) {
        const m: WorkerMessage = {
          v: 1,
          type: 'session-ended',
          sessionId: msg.sessionId,
          reason: ended.reason,
        };
        if (ended.code !== undefined) m.code = ended.code;
        page.send(m);
        this.#error(page, 'unknown-session', 'the session ended', msg);
      } else {
        this.#error(page, 'unknown-session', 'no such session in this worker', msg);
      }
      return;
    }
    // The secret is checked before anything about the session is revealed (busy or not).
    if (!secretsEqual(msg.secret, s.secret)) {
      this.#error(page, 'bad-secret', 'attach refused: wrong secret', msg);
      return;
    }
    if (msg.readOnly ? s.hasReadOnly() : s.hasControl() && !msg.takeOver && !s.isControl(page)) {
      this.#error(
        page,
        'busy',
        msg.readOnly
          ? 'the session has a read-only view already'
          : 'another page controls the session (attach with takeOver, or readOnly)',
        msg,
      );
      return;
    }
    void s.attach(page, msg.req, msg.readOnly);
  }

  #askHostKey(
    page: PageState,
    open: number,
    info: HostKeyInfo,
    hop: number | undefined,
  ): Promise<boolean> {
    if (page.gone) return Promise.resolve(false);
    return this.#questions.ask(page, 'hostkey', this.#hostKeyTimeoutMs, false, (req) => {
      page.send({ v: 1, type: 'hostkey', req, info, open, ...(hop !== undefined ? { hop } : {}) });
    });
  }

  /** One keyboard-interactive round of the session opened by request `open`, asked of `page`. */
  async #askKbd(
    page: PageState,
    open: number,
    prompts: { prompt: string; echo: boolean }[],
    info: { name: string; instruction: string },
    hop: number | undefined,
  ): Promise<string[]> {
    if (page.gone) throw new Error('keyboard-interactive: the page went away');
    if (!kbdRoundFits(prompts, info)) {
      throw new Error('keyboard-interactive: the round exceeds the worker protocol bounds');
    }
    const answers = await this.#questions.ask<string[] | null>(
      page,
      'kbd',
      this.#kbdTimeoutMs,
      null,
      (req) => {
        page.send({
          v: 1,
          type: 'kbd',
          req,
          open,
          ...(hop !== undefined ? { hop } : {}),
          name: info.name,
          instruction: info.instruction,
          prompts: prompts.map((p) => ({ prompt: p.prompt, echo: p.echo })),
        });
      },
    );
    if (answers === null) throw new Error('keyboard-interactive: no answer from the page');
    return answers;
  }

  /** The security key's signature over `data` for the session opened by request `open`. */
  async #askSign(page: PageState, open: number, data: Uint8Array): Promise<Uint8Array> {
    const refused = (code: string, message: string) =>
      new SecurityKeyError(message, { code, origin: 'local', methods: [] });
    if (page.gone) throw refused('security_key_unavailable', 'the page that signs went away');
    if (data.byteLength > limits.maxSignBytes) {
      throw refused(
        'security_key_unsupported',
        'the data to sign exceeds the worker protocol bounds',
      );
    }
    const a = await this.#questions.ask<Extract<PageMessage, { type: 'sign-answer' }> | null>(
      page,
      'sign',
      this.#signTimeoutMs,
      null,
      (req) => {
        const copy = new Uint8Array(data).buffer;
        page.send({ v: 1, type: 'sign', req, open, data: copy }, [copy]);
      },
    );
    if (a === null) {
      throw refused('security_key_cancelled', 'no signature from the page (gone or timed out)');
    }
    if (a.signature === null) {
      throw refused(a.code ?? 'security_key_cancelled', a.message ?? 'the page did not sign');
    }
    return new Uint8Array(a.signature);
  }

  #pageGone(page: PageState): void {
    if (page.gone) return;
    page.gone = true;
    for (const s of this.#sessions.values()) if (s.isViewer(page)) s.detach(page);
    this.#connections.pageGone(page);
    this.#questions.pageGone(page);
  }
}

export { PROTOCOL_VERSION };
