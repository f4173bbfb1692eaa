// Handshake, echo through the relay, and close codes surfaced as typed errors, in Chromium.
import { expect, test } from '../fixtures';
import type { Page } from '@playwright/test';

/** Connects in the page; returns the fields of the error whenReady() rejected with, and the state. */
function failedConnect(page: Page, url: string, token: string) {
  return page.evaluate(
    async ({ url, token }) => {
      const { mana } = window as any;
      const conn = await mana.connect({ url, token, storage: 'none' });
      const e = await conn.whenReady().then(
        () => null,
        (err: any) => err,
      );
      const out = {
        isAuth: e instanceof mana.AuthError,
        isMana: e instanceof mana.ManaError,
        name: e?.name,
        code: e?.code,
        wsCode: e?.wsCode,
        appCode: e?.appCode,
        origin: e?.origin,
        resumable: e?.resumable,
        state: conn.state,
        lastIsSame: conn.lastError === e,
      };
      conn.dispose();
      return out;
    },
    { url, token },
  );
}

test('handshake, SSH banner and byte-exact echo of 1 MiB', async ({
  manaPage,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo] });
  const r = await manaPage.evaluate(
    async ({ url, token, port }) => {
      const { mana, e2e } = window as any;
      const conn = await mana.connect({ url, token, storage: 'none' });
      const rec = e2e.record(conn);
      await conn.whenReady();
      const ch = conn.openChannel({ target: { host: '127.0.0.1', port }, kind: 'tcp' });
      const banner = 'SSH-2.0-mana-e2e-target\r\n';
      const rx = e2e.collect(ch, { skip: banner.length });
      await ch.opened;
      const payload = new Uint8Array(1 << 20);
      e2e.fillSeeded(payload, 7, 0);
      const sent = new e2e.Sha256().update(payload).hex();
      await ch.writeAll(payload);
      await rx.until(banner.length + payload.length);
      const stats = ch.stats();
      const out = {
        state: conn.state,
        server: conn.server.server,
        protocolOk: conn.server.maxFrame > 0,
        head: rx.head,
        received: rx.hashed,
        sentHash: sent,
        echoHash: rx.sha.hex(),
        sentBytes: stats.sent,
        sendLimit: stats.sendLimit,
        states: rec.states,
        closedState: '',
        live: -1,
      };
      conn.close();
      out.closedState = conn.state;
      conn.dispose();
      out.live = await mana.liveCoreSessions();
      return out;
    },
    { url: gw.url, token: gw.token(), port: echo.port },
  );
  expect(r.state).toBe('ready');
  expect(r.server.length).toBeGreaterThan(0);
  expect(r.head).toBe('SSH-2.0-mana-e2e-target\r\n');
  expect(r.received).toBe(1 << 20);
  expect(r.echoHash).toBe(r.sentHash);
  expect(echo.connections[0]!.bytesIn).toBe(1 << 20);
  expect(echo.connections[0]!.hashIn()).toBe(r.sentHash);
  expect(r.sentBytes).toBe(1 << 20);
  expect(r.sendLimit).toBeGreaterThanOrEqual(r.sentBytes);
  expect(r.states).toEqual(['authenticating', 'ready', 'closed']);
  expect(r.closedState).toBe('closed');
  expect(r.live).toBe(0);
});

test('a bad JWT is an AuthError (wsCode 4003, remote)', async ({
  manaPage,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo] });
  // Signed with another key: the signature check fails.
  const forged = gw.token().replace(/\.[^.]+$/, '.AAAA');
  const r = await failedConnect(manaPage, gw.url, forged);
  expect(r).toEqual({
    isAuth: true,
    isMana: true,
    name: 'AuthError',
    code: 'auth_failed',
    wsCode: 4003,
    appCode: 4003,
    origin: 'remote',
    resumable: false,
    state: 'closed',
    lastIsSame: true,
  });
  expect(await gw.metric('mana_closes_total{code="4003"}')).toBe(1);
  expect(echo.connections.length).toBe(0);
});

test('a target outside the policy is a ChannelOpenError; the connection stays ready', async ({
  manaPage,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const denied = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo] });
  const r = await manaPage.evaluate(
    async ({ url, token, port }) => {
      const { mana } = window as any;
      const conn = await mana.connect({ url, token, storage: 'none' });
      await conn.whenReady();
      const ch = conn.openChannel({ target: { host: '127.0.0.1', port }, kind: 'tcp' });
      const e = await ch.opened.then(
        () => null,
        (err: any) => err,
      );
      const out = {
        isOpenError: e instanceof mana.ChannelOpenError,
        code: e?.code,
        origin: e?.origin,
        channelState: ch.state,
        state: conn.state,
      };
      conn.dispose();
      return out;
    },
    { url: gw.url, token: gw.token(), port: denied.port },
  );
  expect(r).toEqual({
    isOpenError: true,
    code: 'policy_denied',
    origin: 'remote',
    channelState: 'closed',
    state: 'ready',
  });
  // No SYN for a denied target.
  expect(denied.connections.length).toBe(0);
});

test('a page whose Origin is not allowed never gets a session', async ({
  manaPage,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo], origins: ['http://127.0.0.1:1'] });
  const r = await failedConnect(manaPage, gw.url, gw.token());
  expect(r).toMatchObject({ name: 'TransportError', code: 'transport_failed', state: 'closed' });
  expect(await gw.metric('mana_http_rejects_total{reason="origin"}')).toBe(1);
  expect(await gw.metric('mana_connections_total')).toBe(0);
});
