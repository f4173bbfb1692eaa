// SPDX-License-Identifier: Apache-2.0
// Keyboard-interactive through the session worker (docs/ssh-in-browser.md, "The session worker"):
// the SSH session runs in the SharedWorker, the keyboardInteractive handler in the page; the
// worker asks the page each round (`kbd` / `kbd-answer`) against kbdSshd (UsePAM yes, PAM asks
// "Password:"), with an auth list tried in order as in-page.
//  - a key kbdSshd does not authorize, then keyboard-interactive answered by the page: the shell
//    works, a reload reattaches it (same $X, no new authentication at sshd);
//  - a wrong answer is SshAuthError `auth_failed` with the methods, a throwing handler
//    `auth_cancelled`, as in-page; the answer is in no message and no page console line;
//  - a page that goes away while its prompt is open cancels the attempt: the gateway session
//    closes, sshd accepted nothing.
import { expect, test, type Sshd } from './fixtures';
import {
  accepted,
  openWorkerPage,
  reloadWorkerPage,
  termMatches,
  typeIn,
  type ShellGateway,
} from './worker-fixtures';

/** window.manaWorker.openKbd as `sshd`'s user: `before` methods, then keyboard-interactive. */
function openKbd(
  page: import('@playwright/test').Page,
  gw: ShellGateway,
  sshd: Sshd,
  kbd: { answer?: string; throws?: boolean; hang?: boolean },
  before: Record<string, unknown>[] = [],
) {
  return page.evaluate(
    ({ url, token, port, user, kbd, before }) =>
      window.manaWorker.openKbd(
        { url, token },
        {
          target: { host: '127.0.0.1', port },
          username: user,
          auth: before,
          graceMs: 30_000,
        },
        kbd,
      ),
    { url: gw.url, token: gw.token(), port: sshd.port, user: sshd.user, kbd, before },
  );
}

test('keyboard-interactive in the worker: a refused key, then the prompt answered by the page; reload reattaches', async ({
  page,
  site,
  sshd,
  kbdSshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [kbdSshd.port] });
  const consoleLines: string[] = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  expect(await openWorkerPage(page, site.origin)).toBe('shared');
  const authBefore = accepted(kbdSshd);
  // sshd's user key is not in kbdSshd's authorized_keys: the first method fails, the second works.
  const r = await openKbd(page, gw, kbdSshd, { answer: kbdSshd.password }, [
    { privateKey: sshd.userKey.privateKey },
  ]);
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
  const rounds = await page.evaluate(() => window.manaWorker.state.kbdRounds);
  expect(rounds).toHaveLength(1);
  expect(rounds[0]?.prompts).toHaveLength(1);
  expect(rounds[0]?.prompts[0]?.prompt).toMatch(/password/i);
  expect(rounds[0]?.prompts[0]?.echo).toBe(false);
  await termMatches(page, /[$#] ?$/m);
  expect(kbdSshd.log()).toMatch(/Accepted keyboard-interactive\/pam for mana-e2e/);
  expect(kbdSshd.log()).toMatch(/Failed publickey for mana-e2e/);
  expect(accepted(kbdSshd)).toBe(authBefore + 1);

  await typeIn(page, 'X=$RANDOM; echo "x=$X"\r');
  const x = /^x=(\d+)$/m.exec(await termMatches(page, /^x=\d+$/m))?.[1];
  expect(x).toBeDefined();
  expect(await reloadWorkerPage(page)).toBe('shared');
  expect(await page.evaluate(() => window.manaWorker.reattach())).toMatchObject({ ok: true });
  await termMatches(page, new RegExp(`^x=${x}$`, 'm'), 5_000);
  await typeIn(page, 'echo "again=$X"\r');
  await termMatches(page, new RegExp(`^again=${x}$`, 'm'));
  expect(accepted(kbdSshd)).toBe(authBefore + 1);
  expect(await gw.metric('mana_connections_total')).toBe(1);
  expect(consoleLines.join('\n')).not.toContain(kbdSshd.password ?? '\0');

  await typeIn(page, 'exit\r');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
});

test('a wrong answer is SshAuthError auth_failed, a throwing handler auth_cancelled, as in-page', async ({
  page,
  site,
  kbdSshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [kbdSshd.port] });
  const consoleLines: string[] = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  await openWorkerPage(page, site.origin);
  const authBefore = accepted(kbdSshd);
  const wrong = await openKbd(page, gw, kbdSshd, { answer: 'definitely-not-the-password' });
  expect(wrong).toMatchObject({ ok: false, name: 'SshAuthError', code: 'auth_failed' });
  expect(wrong.methods).toContain('keyboard-interactive');
  expect(wrong.message).not.toContain('definitely-not');
  const cancelled = await openKbd(page, gw, kbdSshd, { throws: true });
  expect(cancelled).toMatchObject({ ok: false, name: 'SshAuthError', code: 'auth_cancelled' });
  // Each attempt asked the page once (the retry with the answer used the worker's engine cache).
  expect(await page.evaluate(() => window.manaWorker.state.kbdRounds.length)).toBe(2);
  expect(accepted(kbdSshd)).toBe(authBefore);
  expect(await page.evaluate(() => window.manaWorker.stored())).toEqual({});
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
  expect(consoleLines.join('\n')).not.toContain('definitely-not');

  // The worker serves the next open as before.
  const ok = await openKbd(page, gw, kbdSshd, { answer: kbdSshd.password });
  expect(ok, JSON.stringify(ok)).toMatchObject({ ok: true });
  await typeIn(page, 'echo "kbd-$((6*7))"; exit\r');
  await termMatches(page, /^kbd-42$/m);
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
});

test('a page that goes away while its prompt is open cancels the attempt', async ({
  page,
  site,
  kbdSshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [kbdSshd.port] });
  await openWorkerPage(page, site.origin);
  const authBefore = accepted(kbdSshd);
  // Never settles: the page leaves while the handler's "dialog" is open.
  void openKbd(page, gw, kbdSshd, { hang: true }).catch(() => undefined);
  await expect.poll(() => page.evaluate(() => window.manaWorker.state.kbdRounds.length)).toBe(1);
  expect(await gw.metric('mana_sessions_active')).toBe(1);
  await page.goto('about:blank');
  // The worker notices (the page's Web Lock, `bye`), answers null: the attempt is cancelled, the
  // worker disposes the connection, and the gateway frees the session.
  await expect.poll(() => gw.metric('mana_sessions_active'), { timeout: 15_000 }).toBe(0);
  expect(accepted(kbdSshd)).toBe(authBefore);
});
