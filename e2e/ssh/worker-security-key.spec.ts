// SPDX-License-Identifier: Apache-2.0
// A security-key login of a session in the SharedWorker (issue #24 with #17), in Chromium with its
// virtual authenticator (security-key-fixtures.ts): a worker has no navigator.credentials, so the
// worker's SSH engine asks the opening page to sign (`sign` / `sign-answer`), and the page's
// WebAuthn get() answers. pages/worker.html at http://localhost (an IP is no rpId), a fresh stock
// sshd per test.
//  - enrol in the page, the line in sshd's authorized_keys, open in the worker: sshd logs
//    `Accepted publickey ... ECDSA-SK`; a reload reattaches the shell (same $X) with no new login;
//  - the presence bit forced off: SecurityKeyError `presence_not_given` from the worker's open,
//    sshd accepted nothing.
import { appendFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { expect, openManaPage, type Gateway } from '../fixtures';
import { overrideBits, skLog, skTest, type SkSshd } from './security-key-fixtures';
import { reloadWorkerPage, termMatches, typeIn } from './worker-fixtures';

const test = skTest((page, origin) => openManaPage(page, origin, '/worker.html'));

/** Starts the page's ManaWorkerClient (a SharedWorker), enrols a key, authorizes it at sshd. */
async function startAndEnrol(page: Page, sshd: SkSshd) {
  expect(await page.evaluate(() => window.manaWorker.start())).toBe('shared');
  const e = await page.evaluate((user) => window.manaWorker.enrol('localhost', user), sshd.user);
  appendFileSync(sshd.authorizedKeysPath, e.line + '\n');
  return e.credential;
}

function openWithKey(page: Page, gw: Gateway, sshd: SkSshd, credential: Record<string, unknown>) {
  return page.evaluate(
    ({ url, token, port, user, credential }) =>
      window.manaWorker.openWith(
        { url, token },
        { target: { host: '127.0.0.1', port }, username: user, graceMs: 30_000 },
        { securityKey: credential },
      ),
    { url: gw.url, token: gw.token(), port: sshd.port, user: sshd.user, credential },
  );
}

test('the worker asks the page to sign: ECDSA-SK login in the SharedWorker; a reload reattaches without a new login', async ({
  authn,
  skSshd,
  skGateway,
}) => {
  const { page } = authn;
  const credential = await startAndEnrol(page, skSshd);
  const r = await openWithKey(page, skGateway, skSshd, credential);
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
  await termMatches(page, /[$#] ?$/m);
  expect(skLog(skSshd, 'Accepted')).toHaveLength(1);

  await typeIn(page, 'X=$RANDOM; echo "x=$X"\r');
  const x = /^x=(\d+)$/m.exec(await termMatches(page, /^x=\d+$/m))?.[1];
  expect(x).toBeDefined();
  expect(await reloadWorkerPage(page)).toBe('shared');
  expect(await page.evaluate(() => window.manaWorker.reattach())).toMatchObject({ ok: true });
  await typeIn(page, 'echo "again=$X"\r');
  await termMatches(page, new RegExp(`^again=${x}$`, 'm'));
  expect(skLog(skSshd, 'Accepted'), 'no new login after the reload').toHaveLength(1);
});

test("presence not given: the page's SecurityKeyError ends the worker's open; sshd accepted nothing", async ({
  authn,
  skSshd,
  skGateway,
}) => {
  const { page } = authn;
  const credential = await startAndEnrol(page, skSshd);
  await overrideBits(authn, { up: true });
  const r = await openWithKey(page, skGateway, skSshd, credential);
  expect(r, JSON.stringify(r)).toMatchObject({
    ok: false,
    name: 'SecurityKeyError',
    code: 'presence_not_given',
  });
  expect(skLog(skSshd, 'Accepted')).toHaveLength(0);
  await overrideBits(authn, {});
  const again = await openWithKey(page, skGateway, skSshd, credential);
  expect(again, JSON.stringify(again)).toMatchObject({ ok: true });
  expect(skLog(skSshd, 'Accepted')).toHaveLength(1);
});
