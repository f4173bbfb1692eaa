// SPDX-License-Identifier: Apache-2.0
// A raw channel through the session worker survives a reload (docs/ssh-in-browser.md,
// "Connections and raw channels through the worker"): the page opens a RemoteConnection and a
// RemoteChannel to the echo target in the SharedWorker, consumes the banner and one echo, leaves a
// second echo unconsumed and reloads. The reloaded page reattaches the connection and the channel
// from sessionStorage: the unconsumed echo is replayed from `offset`, the channel echoes on, and the
// gateway saw one WebSocket and no resume.
import { expect, openManaPage, test } from '../fixtures';

// The part of the package's API the page uses (window.mana, pages/harness.js).
interface Chan {
  offset: number;
  onData(listener: (e: { data: Uint8Array }) => void): unknown;
  consume(n: number): void;
  write(data: string): number;
  close(): void;
}
interface Conn {
  openChannel(target: { host: string; port: number }, options: { key: string }): Promise<Chan>;
  dispose(): void;
}
interface Client {
  mode: string;
  connect(c: { url: string; token: string }, options: { key: string }): Promise<Conn>;
  reattachConnection(options: { key: string }): Promise<Conn | undefined>;
  reattachChannel(options: { key: string; autoConsume: boolean }): Promise<Chan | undefined>;
}
type Mana = { mana: { ManaWorkerClient: { start(): Promise<Client> } } };

interface Result {
  mode: string;
  text: string;
  offset: number;
}

test('reload keeps a RemoteChannel: replay from offset, one WebSocket', async ({
  page,
  site,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo] });
  await openManaPage(page, site.origin);
  const first = await page.evaluate(
    async ({ url, token, port }): Promise<Result> => {
      const { ManaWorkerClient } = (window as unknown as Mana).mana;
      const client = await ManaWorkerClient.start();
      const conn = await client.connect({ url, token }, { key: 'e2e' });
      const ch = await conn.openChannel({ host: '127.0.0.1', port }, { key: 'e2e-ch' });
      let text = '';
      let consume = true;
      await new Promise<void>((resolve) => {
        ch.onData(({ data }) => {
          text += new TextDecoder().decode(data);
          if (consume) ch.consume(data.length);
          if (text.endsWith('one|')) resolve();
        });
        ch.write('one|');
      });
      consume = false; // the next echo stays unconsumed: the worker keeps it
      await new Promise<void>((resolve) => {
        ch.onData(() => {
          if (text.endsWith('two|')) resolve();
        });
        ch.write('two|');
      });
      return { mode: client.mode, text, offset: ch.offset };
    },
    { url: gw.url, token: gw.token(), port: echo.port },
  );
  expect(first.mode).toBe('shared');
  expect(first.text.endsWith('one|two|')).toBe(true);
  const consumed = first.text.length - 'two|'.length;

  await page.reload();
  await openManaPage(page, site.origin);
  const second = await page.evaluate(async (): Promise<Result> => {
    const { ManaWorkerClient } = (window as unknown as Mana).mana;
    const client = await ManaWorkerClient.start();
    const conn = await client.reattachConnection({ key: 'e2e' });
    const ch = await client.reattachChannel({ key: 'e2e-ch', autoConsume: true });
    if (conn === undefined || ch === undefined) throw new Error('nothing stored');
    let text = '';
    await new Promise<void>((resolve) => {
      ch.onData(({ data }) => {
        text += new TextDecoder().decode(data);
        if (text.endsWith('three|')) resolve();
      });
      ch.write('three|');
    });
    ch.close();
    conn.dispose();
    return { mode: client.mode, text, offset: ch.offset };
  });
  expect(second.offset).toBe(consumed);
  expect(second.text).toBe('two|three|');
  expect(await gw.metric('mana_connections_total')).toBe(1);
  expect(await gw.metric('mana_resumes_total{outcome="accepted"}')).toBe(0);
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
});
