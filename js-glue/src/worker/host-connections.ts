// SPDX-License-Identifier: Apache-2.0
// The hosted connections of a WorkerHost (host.ts): `connect`, `attach-connection`, and what a
// page that views a connection asks of it (`open-channel`, `release-connection`,
// `connection-status`, `pause-connection`, `close-connection`). A page reaches a connection only
// after `connect` or an attach with its secret; everything else names a connection it views.
import { HostedConnection, type HostConnection } from './hosted-connection.js';
import type { PageLink } from './hosted-session.js';
import type { OpenedSession } from './host.js';
import type { PageMessage, WireConnectOptions, WorkerErrorCode } from './protocol.js';
import type { ScreenModel } from './screen.js';
import { newSecret, newSessionId, secretsEqual } from './secret.js';
import type { Timers } from './grace.js';

type ConnectionMessage = Extract<
  PageMessage,
  {
    type:
      | 'attach-connection'
      | 'open-channel'
      | 'release-connection'
      | 'connection-status'
      | 'pause-connection'
      | 'close-connection';
  }
>;

/** What the connections need of their host. */
export interface ConnectionsHost<P extends PageLink> {
  connect: ((c: WireConnectOptions) => Promise<HostConnection>) | undefined;
  graceMs: number;
  maxConnections: number;
  timers: Timers | undefined;
  error(page: P, code: WorkerErrorCode, message: string, raw?: unknown): void;
  openFailed(page: P, req: number, e: unknown): void;
  /** Opens a channel with `how` and hosts it as a session of `on` (host.ts #host). */
  host(
    page: P,
    req: number,
    graceMs: number | undefined,
    on: HostedConnection,
    how: { open: () => Promise<OpenedSession>; screen: () => ScreenModel | null },
  ): Promise<void>;
}

export class HostConnections<P extends PageLink & { gone: boolean }> {
  readonly #h: ConnectionsHost<P>;
  readonly #connections = new Map<string, HostedConnection>();
  #connecting = 0;

  constructor(h: ConnectionsHost<P>) {
    this.#h = h;
  }

  get(id: string): HostedConnection | undefined {
    return this.#connections.get(id);
  }

  get size(): number {
    return this.#connections.size;
  }

  pageGone(page: P): void {
    for (const c of [...this.#connections.values()]) c.pageGone(page);
  }

  async connect(page: P, msg: Extract<PageMessage, { type: 'connect' }>): Promise<void> {
    const h = this.#h;
    if (h.connect === undefined) {
      h.error(page, 'protocol', 'this worker hosts no connections', msg);
      return;
    }
    if (this.#connections.size + this.#connecting >= h.maxConnections) {
      h.error(page, 'limit', `this worker keeps at most ${h.maxConnections} connections`, msg);
      return;
    }
    this.#connecting++;
    let conn: HostConnection;
    try {
      conn = await h.connect(msg.connect);
    } catch (e) {
      h.openFailed(page, msg.req, e);
      return;
    } finally {
      this.#connecting--;
    }
    const id = newSessionId();
    const secret = newSecret();
    const hc = new HostedConnection({
      id,
      secret,
      conn,
      graceMs: msg.graceMs ?? h.graceMs,
      ...(h.timers ? { timers: h.timers } : {}),
      ended: () => {
        this.#connections.delete(id);
      },
    });
    this.#connections.set(id, hc);
    hc.attach(page);
    if (page.gone) hc.pageGone(page);
    page.send({
      v: 1,
      type: 'connected',
      req: msg.req,
      connectionId: id,
      secret,
      status: hc.status(),
    });
  }

  message(page: P, msg: ConnectionMessage): void {
    const h = this.#h;
    const hc = this.#connections.get(msg.connectionId);
    if (msg.type === 'attach-connection') {
      if (hc === undefined) {
        h.error(page, 'unknown-connection', 'no such connection in this worker', msg);
      } else if (!secretsEqual(msg.secret, hc.secret)) {
        h.error(page, 'bad-secret', 'attach refused: wrong secret', msg);
      } else {
        hc.attach(page);
        page.send({
          v: 1,
          type: 'connected',
          req: msg.req,
          connectionId: hc.id,
          secret: hc.secret,
          status: hc.status(),
        });
      }
      return;
    }
    // Only a page that holds a view of the connection (it knew the secret) uses it.
    if (!hc?.isViewer(page)) {
      h.error(page, 'unknown-connection', `not attached to connection ${msg.connectionId}`, msg);
      return;
    }
    switch (msg.type) {
      case 'release-connection':
        hc.release(page);
        return;
      case 'connection-status':
        page.send({
          v: 1,
          type: 'connection-event',
          connectionId: hc.id,
          req: msg.req,
          status: hc.status(),
        });
        return;
      case 'pause-connection':
        hc.setAppPaused(msg.on);
        return;
      case 'close-connection':
        hc.close(msg.code, msg.reason);
        return;
      case 'open-channel':
        void h.host(page, msg.req, msg.graceMs, hc, {
          open: async () => ({
            session: await hc.conn.openChannel(msg.target),
            release: () => undefined,
          }),
          screen: () => null,
        });
        return;
    }
  }
}
