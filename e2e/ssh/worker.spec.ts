// SPDX-License-Identifier: Apache-2.0
// Sessions that outlive the page (docs/ssh-in-browser.md, "The session worker"): the SSH session
// runs in a module SharedWorker with extendedLifetime (ManaWorkerClient); pages/worker.html shows
// it in a real xterm.js terminal through ManaAttachAddon and a RemoteSshSession.
//  - reload keeps the shell: the same $X after page.reload(), no new WebSocket at the gateway, no
//    new authentication at sshd, the lines from before the reload in the page's xterm buffer;
//  - a forged attach secret is refused (and the right one without takeOver is `busy`);
//  - a session left detached past its grace ends: reattach gets SessionLostError
//    `detached_too_long`, the gateway closes the session;
//  - a flood the page cannot keep up with: the page gets frames of the screen, ends with the exact
//    screen and scrollback, and the session is live again afterwards;
//  - the dedicated-Worker fallback works, and a reload there is SessionLostError.
import { expect, test } from './fixtures';
import {
  accepted,
  openShell,
  openWorkerPage,
  reloadWorkerPage,
  storedSecret,
  termMatches,
  typeIn,
} from './worker-fixtures';

test('reload keeps the shell: same $X, no new WebSocket, no new SSH authentication', async ({
  page,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  expect(await openWorkerPage(page, site.origin)).toBe('shared');
  await openShell(page, gw, sshd, 30_000);
  await typeIn(page, 'X=$RANDOM; echo "x=$X"; seq -f "before-%g" 1 40\r');
  const before = await termMatches(page, /^before-40$/m);
  // The worker asked this page's hostKey.verify (TOFU in the worker's memory).
  expect(await page.evaluate(() => window.manaWorker.state.hostKeys)).toMatchObject([
    { fingerprint: sshd.hostKeys.ed25519?.fingerprint, known: 'new' },
  ]);
  const x = /^x=(\d+)$/m.exec(before)?.[1];
  expect(x).toBeDefined();
  const wsBefore = await gw.metric('mana_connections_total');
  const authBefore = accepted(sshd);
  expect(wsBefore).toBe(1);

  expect(await reloadWorkerPage(page)).toBe('shared');
  const re = await page.evaluate(() => window.manaWorker.reattach());
  expect(re).toMatchObject({ ok: true, readOnly: false });
  // The screen from before the reload, from the worker's screen model, in this page's xterm.
  const restored = await termMatches(page, /^before-40$/m, 5_000);
  expect(restored).toContain(`x=${x}`);
  expect(restored).toContain('before-1\n');

  await typeIn(page, 'echo "again=$X"\r');
  await termMatches(page, new RegExp(`^again=${x}$`, 'm'));
  expect(await gw.metric('mana_connections_total')).toBe(wsBefore);
  expect(await gw.metric('mana_resumes_total{outcome="accepted"}')).toBe(0);
  expect(accepted(sshd)).toBe(authBefore);

  await typeIn(page, 'exit\r');
  await expect
    .poll(() => page.evaluate(() => window.manaWorker.state.events.map((e) => e.type)))
    .toContain('close');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
  expect(await page.evaluate(() => window.manaWorker.stored())).toEqual({});
});

test('a flood the page cannot keep up with: frames, then the exact end screen and scrollback', async ({
  page,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  expect(await openWorkerPage(page, site.origin)).toBe('shared');
  await openShell(page, gw, sshd, 30_000);
  const toClient = () => gw.metric('mana_payload_bytes_total{direction="to_client"}');
  const before = await toClient();
  // 400 000 lines, 5.2 MB: far more than the page's xterm parses while it arrives.
  await typeIn(page, 'seq -f "flood-%06g" 1 400000; echo "done-$((6*7))"\r');
  await termMatches(page, /^done-42$/m, 60_000);
  // A frame while output came had the viewport only; the last one has the scrollback too.
  const end = await termMatches(page, /^flood-399100$[\s\S]*^done-42$/m, 10_000);
  expect(await toClient()).toBeGreaterThan(before + 5_200_000);
  // The page was sent frames (each starts with RIS), not the whole stream...
  const resets = await page.evaluate(() => window.manaWorker.state.resets);
  expect(resets).toBeGreaterThan(0);
  // ...and the last one carried the screen and the worker's scrollback (1 000 lines) exactly.
  const lines = end.split('\n');
  const last = lines.indexOf('flood-400000');
  expect(last).toBeGreaterThan(900);
  for (let i = 1; i <= 900; i++)
    expect(lines[last - i]).toBe(`flood-${String(400000 - i).padStart(6, '0')}`);
  expect(end).not.toContain('flood-000001');
  // Live again: a command's output arrives as a stream, without a reset.
  await typeIn(page, 'echo "after-$((6*7))"\r');
  await termMatches(page, /^after-42$/m);
  expect(await page.evaluate(() => window.manaWorker.state.resets)).toBe(resets);
  await typeIn(page, 'exit\r');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
});

test('attach: a forged secret is refused, the right one is busy without takeOver', async ({
  page,
  context,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  await openWorkerPage(page, site.origin);
  const sessionId = await openShell(page, gw, sshd, 30_000);
  const secret = await storedSecret(page);
  expect(secret).toMatch(/^[0-9a-f]{64}$/);

  // A second tab of the same origin reaches the same worker, but not the session without the
  // secret (its sessionStorage is its own).
  const other = await context.newPage();
  expect(await openWorkerPage(other, site.origin)).toBe('shared');
  expect(await other.evaluate(() => window.manaWorker.reattach())).toEqual({
    ok: false,
    name: 'none',
  });
  const forged = secret.slice(0, 63) + (secret.endsWith('0') ? '1' : '0');
  const refused = await other.evaluate(({ id, s }) => window.manaWorker.attach(id, s), {
    id: sessionId,
    s: forged,
  });
  expect(refused).toMatchObject({ ok: false, name: 'WorkerRequestError', code: 'bad-secret' });
  const busy = await other.evaluate(({ id, s }) => window.manaWorker.attach(id, s), {
    id: sessionId,
    s: secret,
  });
  expect(busy).toMatchObject({ ok: false, code: 'busy' });
  // The shell of the first page is untouched.
  await typeIn(page, 'echo "still-$((40+2))"\r');
  await termMatches(page, /^still-42$/m);
  await typeIn(page, 'exit\r');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
  await other.close();
});

test('a session detached past its grace ends: reattach gets SessionLostError', async ({
  page,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  await openWorkerPage(page, site.origin);
  await openShell(page, gw, sshd, 1_500);
  expect(await gw.metric('mana_sessions_active')).toBe(1);
  await page.goto('about:blank');
  // The worker outlives the page (extendedLifetime); the session does not outlive its grace.
  await expect.poll(() => gw.metric('mana_sessions_active'), { timeout: 10_000 }).toBe(0);
  expect(await openWorkerPage(page, site.origin)).toBe('shared');
  const re = await page.evaluate(() => window.manaWorker.reattach());
  expect(re).toMatchObject({ ok: false, name: 'SessionLostError', code: 'detached_too_long' });
  expect(await page.evaluate(() => window.manaWorker.stored())).toEqual({});
});

test('dedicated-Worker fallback: the shell works, a reload loses it (SessionLostError)', async ({
  page,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  expect(await openWorkerPage(page, site.origin, 'dedicated')).toBe('dedicated');
  await openShell(page, gw, sshd, 30_000);
  await typeIn(page, 'echo "dedicated-$((6*7))"\r');
  await termMatches(page, /^dedicated-42$/m);
  expect(await reloadWorkerPage(page, 'dedicated')).toBe('dedicated');
  const re = await page.evaluate(() => window.manaWorker.reattach());
  expect(re).toMatchObject({ ok: false, name: 'SessionLostError' });
  // The dead worker's WebSocket is a dropped transport: the gateway keeps it for its resume TTL.
  await expect.poll(() => gw.metric('mana_sessions_detached'), { timeout: 10_000 }).toBe(1);
});
