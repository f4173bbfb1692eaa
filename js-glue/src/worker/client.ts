// SPDX-License-Identifier: Apache-2.0
// ManaWorkerClient: the page side of the session worker. It starts (or joins) the worker in the
// best mode the browser has:
//   shared     a module SharedWorker with `extendedLifetime: true` (Chromium 148+): the sessions
//              outlive a reload or a navigation for the browser's grace (~30 s in Chrome)
//   dedicated  a module Worker: SSH off the main thread, but the worker dies with the page, so a
//              reload loses the session (SessionLostError, as in-page)
//   page       the host runs in the page itself (no Worker, or the worker script failed to load)
// Every page uses the same worker name (versioned with the protocol) and the same options, since
// Chromium refuses to join a worker whose options differ. Support of `extendedLifetime` is
// detected with a getter on the options object (unknown options are ignored silently).
//
// Each page holds a Web Lock for its whole life; the worker asks for the same lock and so learns
// when the page is gone. The attach secret of each session is kept in sessionStorage (per tab,
// survives a reload) with its id; reattach() reads it back.
import { SessionLostError } from '../ssh/errors.js';
import type { HostKeyInfo } from '../ssh/errors.js';
import type { SshSessionOptions } from '../ssh/types.js';
import { fromFailure } from './failure.js';
import { WorkerRequestError } from './request-error.js';
import {
  PROTOCOL_VERSION,
  parseWorkerMessage,
  transferable,
  type PageMessage,
  type WorkerMessage,
} from './protocol.js';
import {
  RemoteChannel,
  RemoteConnection,
  type ConnectionClientLink,
  type RemoteChannelOptions,
} from './remote-connection.js';
import { RemoteSshSession } from './view.js';
import { runKbd, runSign, wireSession, type OpenAnswers } from './client-auth.js';
import { StoredSecrets } from './stored-secrets.js';

export type WorkerMode = 'shared' | 'dedicated' | 'page';

/** The worker's fixed name: pages of one release share one worker. */
export const WORKER_NAME = `mana-websocket-session-worker-v${PROTOCOL_VERSION}`;

export interface WorkerClientOptions {
  /** URL of dist/mana-worker.js (`@mana/websocket/worker`). Default: next to this module. */
  workerUrl?: string | URL;
  /** `auto` (default): shared, else dedicated, else page. */
  mode?: 'auto' | WorkerMode;
  /** Where {sessionId, attachSecret} are kept; default sessionStorage, null: nowhere. */
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null;
  /** Storage key. Default `mana-websocket:worker-sessions`. */
  storageKey?: string;
  /** Time the worker has to answer `hello`, ms. Default 10 000. */
  startTimeoutMs?: number;
}

/**
 * SshSessionOptions, run by the worker. `via` too (the bastions' SSH sessions run in the worker;
 * their `hostKey.verify` in this page), without keyboard-interactive or `knownHosts` on a bastion.
 */
export interface WorkerSessionOptions extends SshSessionOptions {
  /** Key of the stored attach secret in this tab (several sessions per tab). Default `default`. */
  key?: string;
  /** Grace of the session in the worker without a view, ms (100..300 000). Default 30 000. */
  graceMs?: number;
  /** Scrollback lines of the worker's screen model. Default 1 000. */
  scrollback?: number;
  /**
   * A byte stream (an exec's output, a download), not a terminal: the worker keeps no screen
   * model but the bytes this page has not consumed yet (bounded by the session's credit), and a
   * page that reattaches gets them again from `view.offset`: consume() only what the page has
   * made safe (written, hashed and saved), and a reload loses nothing.
   */
  stream?: boolean;
}

export { WorkerRequestError };

interface Pending {
  resolve: (m: WorkerMessage) => void;
  reject: (e: Error) => void;
}

/** Whether `new SharedWorker(url, {extendedLifetime: true})` is understood (getter probe). */
export function extendedLifetimeOptions(): {
  options: WorkerOptions & { extendedLifetime: boolean };
  read: () => boolean;
} {
  let read = false;
  const options = {
    type: 'module' as const,
    name: WORKER_NAME,
    get extendedLifetime(): boolean {
      read = true;
      return true;
    },
  };
  return { options, read: () => read };
}

function randomId(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class ManaWorkerClient {
  readonly mode: WorkerMode;
  readonly #port: { postMessage(m: unknown, t: Transferable[]): void };
  readonly #secrets: StoredSecrets;
  readonly #pending = new Map<number, Pending>();
  readonly #views = new Map<string, RemoteSshSession>();
  readonly #connections = new Map<string, RemoteConnection>();
  /** What this page answers for each pending open (host keys, prompts, signatures). */
  readonly #answers = new Map<number, OpenAnswers>();
  /** Why recently ended sessions ended (bounded). */
  readonly #endedWhy = new Map<string, string>();
  #nextReq = 1;
  /** The worker returns input room (`writable`); an older worker does not. */
  #inputRoom = false;
  /** The worker runs `via` (a worker of before that would ignore it). */
  #via = false;
  /** The worker asks this page to sign security keys (`sign`); an older worker refuses them. */
  #securityKey = false;
  #releaseLock: (() => void) | undefined;

  private constructor(
    mode: WorkerMode,
    port: { postMessage(m: unknown, t: Transferable[]): void },
    options: WorkerClientOptions,
  ) {
    this.mode = mode;
    this.#port = port;
    this.#secrets = new StoredSecrets(options.storage, options.storageKey);
  }

  /** Starts or joins the session worker. */
  static async start(options: WorkerClientOptions = {}): Promise<ManaWorkerClient> {
    const url = options.workerUrl ?? new URL('../mana-worker.js', import.meta.url);
    const want = options.mode ?? 'auto';
    const g = globalThis as { SharedWorker?: typeof SharedWorker; Worker?: typeof Worker };
    if ((want === 'auto' || want === 'shared') && g.SharedWorker !== undefined) {
      const probe = extendedLifetimeOptions();
      const w = new g.SharedWorker(url, probe.options);
      if (probe.read() || want === 'shared') {
        const c = await ManaWorkerClient.#join('shared', w.port, w, options);
        if (c !== undefined) return c;
      } else {
        w.port.close();
      }
    }
    if ((want === 'auto' || want === 'dedicated') && g.Worker !== undefined) {
      const w = new g.Worker(url, { type: 'module', name: WORKER_NAME });
      const c = await ManaWorkerClient.#join('dedicated', w, w, options);
      if (c !== undefined) return c;
      w.terminate();
    }
    const mod = (await import(/* @vite-ignore */ url.toString())) as {
      startPageHost(): MessagePort;
    };
    const port = mod.startPageHost();
    const c = await ManaWorkerClient.#join('page', port, undefined, options);
    if (c === undefined) throw new Error('ManaWorkerClient: the in-page host did not start');
    return c;
  }

  static async #join(
    mode: WorkerMode,
    port: MessagePort | Worker,
    errors: EventTarget | undefined,
    options: WorkerClientOptions,
  ): Promise<ManaWorkerClient | undefined> {
    const client = new ManaWorkerClient(mode, port, options);
    const pageId = randomId();
    const lock = mode === 'page' ? null : await client.#holdLock(pageId);
    const ready = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        resolve(false);
      }, options.startTimeoutMs ?? 10_000);
      errors?.addEventListener('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      client.#onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    port.addEventListener('message', (e: Event) => {
      client.#receive((e as MessageEvent).data);
    });
    if ('start' in port) port.start();
    client.#send({ v: 1, type: 'hello', pageId, lock });
    if (!(await ready)) {
      client.#releaseLock?.();
      return undefined;
    }
    const g = globalThis as { addEventListener?: (t: string, l: () => void) => void };
    g.addEventListener?.('pagehide', () => {
      client.#send({ v: 1, type: 'bye' });
    });
    return client;
  }

  #onReady: (() => void) | undefined;

  /** Holds the Web Lock `name` until the page dies; resolves once it is held. */
  async #holdLock(pageId: string): Promise<string | null> {
    const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
    if (locks === undefined) return null;
    const name = `${WORKER_NAME}:page:${pageId}`;
    await new Promise<void>((held) => {
      void locks.request(
        name,
        () =>
          new Promise<void>((release) => {
            this.#releaseLock = release;
            held();
          }),
      );
    });
    return name;
  }

  /**
   * Opens an SSH session in the worker and attaches this page to it. `auth` is one method or a
   * list tried in order, as in-page; `hostKey.verify` and the `keyboardInteractive` handler run in
   * this page (the worker asks; the answers go to the worker's session only). A failed open
   * rejects with the session's typed error, as in-page (SshAuthError, HostKeyError, SshError, the
   * connection's errors), else WorkerRequestError `open-failed`.
   */
  async openSession(
    connect: { url: string; token?: string } | RemoteConnection,
    options: WorkerSessionOptions,
  ): Promise<RemoteSshSession> {
    const { session, answers } = wireSession(options, {
      via: this.#via,
      securityKey: this.#securityKey,
    });
    const req = this.#nextReq++;
    this.#answers.set(req, answers);
    // On a RemoteConnection: the session shares that connection's WebSocket in the worker.
    const msg: PageMessage =
      connect instanceof RemoteConnection
        ? { v: 1, type: 'open', req, connectionId: connect.connectionId, session }
        : { v: 1, type: 'open', req, connect: { ...connect }, session };
    if (options.graceMs !== undefined) msg.graceMs = options.graceMs;
    if (options.scrollback !== undefined) msg.scrollback = options.scrollback;
    if (options.stream !== undefined) msg.stream = options.stream;
    try {
      const r = await this.#request(req, msg);
      if (r.type !== 'opened') throw new Error(`unexpected ${r.type}`);
      this.#secrets.remember(options.key ?? 'default', r.sessionId, r.secret);
      return this.#view(r.sessionId, false, '', 0);
    } finally {
      this.#answers.delete(req);
    }
  }

  /**
   * Attaches to the session stored under `key` in this tab (after a reload). Undefined when none
   * is stored; SessionLostError when the worker no longer has it (the grace passed, the worker
   * restarted, or it is a dedicated / in-page worker); WorkerRequestError `bad-secret` / `busy`.
   */
  async reattach(
    options: { key?: string; readOnly?: boolean; takeOver?: boolean } = {},
  ): Promise<RemoteSshSession | undefined> {
    const stored = this.#secrets.all()[options.key ?? 'default'];
    if (stored === undefined) return undefined;
    return this.attach(stored.sessionId, stored.secret, options);
  }

  /** Attaches to a session by id and secret (e.g. handed to a second tab by the application). */
  async attach(
    sessionId: string,
    secret: string,
    options: { readOnly?: boolean; takeOver?: boolean } = {},
  ): Promise<RemoteSshSession> {
    const req = this.#nextReq++;
    const readOnly = options.readOnly ?? false;
    const r = await this.#request(req, {
      v: 1,
      type: 'attach',
      req,
      sessionId,
      secret,
      readOnly,
      takeOver: options.takeOver ?? false,
    });
    if (r.type !== 'attached') throw new Error(`unexpected ${r.type}`);
    return this.#view(sessionId, readOnly, r.screen, r.offset);
  }

  /**
   * Opens a Connection in the worker: one WebSocket for every channel (openChannel) and SSH
   * session (openSession with this connection) opened on it. Its {id, secret} is stored under
   * `key` (reattachConnection after a reload). A failed connect rejects with the connection's
   * typed error (AuthError, ...), as connect() in-page.
   */
  async connect(
    connect: { url: string; token?: string },
    options: { key?: string; graceMs?: number } = {},
  ): Promise<RemoteConnection> {
    const req = this.#nextReq++;
    const msg: PageMessage = { v: 1, type: 'connect', req, connect: { ...connect } };
    if (options.graceMs !== undefined) msg.graceMs = options.graceMs;
    return this.#connectionView(await this.#request(req, msg), connect.url, options.key);
  }

  /**
   * The connection stored under `key` in this tab (after a reload): undefined when none is stored;
   * SessionLostError when the worker no longer has it; WorkerRequestError `bad-secret`.
   */
  async reattachConnection(options: { key?: string } = {}): Promise<RemoteConnection | undefined> {
    const stored = this.#secrets.all()[`connection:${options.key ?? 'default'}`];
    if (stored === undefined) return undefined;
    const req = this.#nextReq++;
    const r = await this.#request(req, {
      v: 1,
      type: 'attach-connection',
      req,
      connectionId: stored.sessionId,
      secret: stored.secret,
    });
    return this.#connectionView(r, stored.url);
  }

  /**
   * The channel stored under `key` in this tab (opened with that key): its bytes not consumed
   * before the reload come again from `offset`. Undefined when none is stored.
   */
  async reattachChannel(options: {
    key: string;
    autoConsume?: boolean;
    takeOver?: boolean;
  }): Promise<RemoteChannel | undefined> {
    const stored = this.#secrets.all()[`channel:${options.key}`];
    if (stored === undefined) return undefined;
    const view = await this.attach(stored.sessionId, stored.secret, {
      takeOver: options.takeOver ?? false,
    });
    return this.#channel(view, stored.target, options.autoConsume ?? false);
  }

  #channel(
    view: RemoteSshSession,
    target: { host: string; port: number } | undefined,
    autoConsume: boolean,
  ): RemoteChannel {
    return new RemoteChannel(view, target, autoConsume, async () => {
      const req = this.#nextReq++;
      const r = await this.#request(req, {
        v: 1,
        type: 'channel-stats',
        req,
        sessionId: view.sessionId,
      });
      if (r.type !== 'channel-stats') throw new Error(`unexpected ${r.type}`);
      return r.stats;
    });
  }

  #connectionView(r: WorkerMessage, url: string | undefined, key?: string): RemoteConnection {
    if (r.type !== 'connected') throw new Error(`unexpected ${r.type}`);
    if (key !== undefined) {
      this.#secrets.remember(`connection:${key}`, r.connectionId, r.secret, undefined, url);
    }
    const conn = new RemoteConnection(this.#connectionLink, r.connectionId, url, r.status);
    this.#connections.set(r.connectionId, conn);
    return conn;
  }

  readonly #connectionLink: ConnectionClientLink = {
    openChannel: async (connectionId, target, options: RemoteChannelOptions) => {
      const req = this.#nextReq++;
      const msg: PageMessage = {
        v: 1,
        type: 'open-channel',
        req,
        connectionId,
        target: { host: target.host, port: target.port },
      };
      if (options.graceMs !== undefined) msg.graceMs = options.graceMs;
      const r = await this.#request(req, msg);
      if (r.type !== 'opened') throw new Error(`unexpected ${r.type}`);
      if (options.key !== undefined) {
        this.#secrets.remember(`channel:${options.key}`, r.sessionId, r.secret, target);
      }
      return this.#channel(
        this.#view(r.sessionId, false, '', 0),
        target,
        options.autoConsume ?? false,
      );
    },
    release: (connectionId) => {
      this.#connections.delete(connectionId);
      this.#secrets.forget(connectionId);
      this.#send({ v: 1, type: 'release-connection', connectionId });
    },
    status: async (connectionId) => {
      const req = this.#nextReq++;
      const r = await this.#request(req, { v: 1, type: 'connection-status', req, connectionId });
      if (r.type !== 'connection-event') throw new Error(`unexpected ${r.type}`);
      return r.status;
    },
    setAppPaused: (connectionId, on) => {
      this.#send({ v: 1, type: 'pause-connection', connectionId, on });
    },
    close: (connectionId, code, reason) => {
      this.#send({ v: 1, type: 'close-connection', connectionId, code, reason });
    },
    openSession: (conn, options) => this.openSession(conn, options),
  };

  /** Detaches every view and releases the page's lock (the sessions stay for their grace). */
  dispose(): void {
    for (const v of [...this.#views.values()]) v.dispose();
    this.#send({ v: 1, type: 'bye' });
    this.#releaseLock?.();
  }

  #view(sessionId: string, readOnly: boolean, screen: string, offset: number): RemoteSshSession {
    // This page had a view of the session already (a read-only view that now takes over, or a
    // second attach): the worker replaced it, so the old view ends here without a `detach`
    // (which would detach the new view: the worker knows views by page and session).
    this.#views.get(sessionId)?._replaced();
    const view = new RemoteSshSession(
      {
        send: (m, t) => {
          this.#send(m, t);
        },
        inputRoom: this.#inputRoom,
        forget: (id, ended) => {
          this.#views.delete(id);
          if (ended) this.#secrets.forget(id);
        },
      },
      sessionId,
      readOnly,
      screen,
      offset,
    );
    this.#views.set(sessionId, view);
    return view;
  }

  #send(m: PageMessage, transfer: Transferable[] = []): void {
    this.#port.postMessage(m, transfer);
  }

  #request(req: number, msg: PageMessage): Promise<WorkerMessage> {
    return new Promise<WorkerMessage>((resolve, reject) => {
      this.#pending.set(req, { resolve, reject });
      this.#send(msg);
    });
  }

  #receive(raw: unknown): void {
    let msg: WorkerMessage;
    try {
      msg = parseWorkerMessage(raw);
    } catch {
      return; // Not from our worker (or another release): ignored.
    }
    if (msg.type === 'ready') {
      this.#inputRoom = msg.inputRoom === true;
      this.#via = msg.via === true;
      this.#securityKey = msg.securityKey === true;
      this.#onReady?.();
      return;
    }
    if (msg.type === 'hostkey') {
      void this.#answerHostKey(msg.req, msg.info, msg.open, msg.hop);
      return;
    }
    if (msg.type === 'kbd') {
      const req = msg.req;
      const kbd = this.#answers.get(msg.open)?.kbd;
      const handler = msg.hop !== undefined ? kbd?.hops[msg.hop] : kbd?.target;
      void runKbd(handler, msg).then((answers) => {
        this.#send({ v: 1, type: 'kbd-answer', req, answers });
      });
      return;
    }
    if (msg.type === 'sign') {
      const req = msg.req;
      void runSign(this.#answers.get(msg.open)?.signer, msg).then((a) => {
        if (a.signature === null) {
          this.#send({ v: 1, type: 'sign-answer', req, ...a, signature: null });
          return;
        }
        const signature = transferable(a.signature);
        this.#send({ v: 1, type: 'sign-answer', req, signature }, [signature]);
      });
      return;
    }
    if ('req' in msg && msg.req !== undefined) {
      const p = this.#pending.get(msg.req);
      if (p !== undefined) {
        this.#pending.delete(msg.req);
        if (msg.type === 'error') {
          // An attach to a session that ended: the worker said why just before.
          const ended = msg.sessionId !== undefined ? this.#endedWhy.get(msg.sessionId) : undefined;
          // The worker does not have the session (it ended, or this is another worker: a
          // dedicated one after a reload, another origin's): its stored secret is useless now.
          const unknown = msg.code === 'unknown-session' || msg.code === 'unknown-connection';
          if (unknown && msg.sessionId !== undefined) this.#secrets.forget(msg.sessionId);
          const typed = msg.failure !== undefined ? fromFailure(msg.failure) : undefined;
          p.reject(
            typed ??
              (unknown
                ? new SessionLostError(`reattach: ${msg.message}${ended ? ` (${ended})` : ''}`, {
                    code: ended === 'detached-too-long' ? 'detached_too_long' : 'session_lost',
                    origin: 'remote',
                  })
                : new WorkerRequestError(msg.message, { code: msg.code, origin: 'remote' })),
          );
        } else {
          p.resolve(msg);
        }
        return;
      }
    }
    if (msg.type === 'connection-event') {
      this.#connections.get(msg.connectionId)?._event(msg);
      return;
    }
    if (msg.type === 'connection-ended') {
      this.#secrets.forget(msg.connectionId);
      this.#connections.get(msg.connectionId)?._ended(msg);
      this.#connections.delete(msg.connectionId);
      return;
    }
    if ('sessionId' in msg && msg.sessionId !== undefined) {
      if (msg.type === 'session-ended') {
        this.#secrets.forget(msg.sessionId);
        this.#endedWhy.set(msg.sessionId, msg.reason);
        if (this.#endedWhy.size > 64)
          this.#endedWhy.delete(this.#endedWhy.keys().next().value ?? '');
      }
      this.#views.get(msg.sessionId)?._receive(msg);
    }
  }

  async #answerHostKey(
    req: number,
    info: HostKeyInfo,
    open: number | undefined,
    hop: number | undefined,
  ): Promise<void> {
    let accept = false;
    // The question belongs to open request `open` (its own hostKey.verify answers, the target's
    // or bastion `hop`'s; none: refused). A worker of before that does not say asks any
    // registered verifier of this page.
    const answers = [...this.#answers.values()];
    const v = (open !== undefined ? this.#answers.get(open) : answers.find((a) => a.verify.target))
      ?.verify;
    const verify = hop !== undefined ? v?.hops[hop] : v?.target;
    try {
      accept = verify !== undefined && (await verify(info));
    } catch {
      accept = false;
    }
    this.#send({ v: 1, type: 'hostkey-answer', req, accept });
  }
}
