// SPDX-License-Identifier: Apache-2.0
// Jump hosts through the session worker in Chromium (issue #20 §3 with #17): pages/worker.html
// opens a shell on sshd B through bastion A, the whole chain in the SharedWorker. The gateway
// allows A only (B listens on a loopback port its policy denies). A reload reattaches the shell on
// B (same $X) with no new SSH login at A or B.
import { expect, test, type Sshd } from './fixtures';
import { devkit } from '../fixtures';
import { openWorkerPage, reloadWorkerPage, termMatches, typeIn } from './worker-fixtures';

type StartSshd = (options?: Record<string, unknown>) => Promise<Sshd>;
const logins = (s: Sshd) => (s.log().match(/Accepted publickey/g) ?? []).length;

test('a shell on B through bastion A runs in the SharedWorker and survives a reload', async ({
  page,
  site,
  gatewayWith,
}) => {
  const { startSshd } = await devkit<{ startSshd: StartSshd }>('sshd.mjs');
  const b = await startSshd();
  const a = await startSshd({ extraConfig: `PermitOpen 127.0.0.1:${b.port}` });
  try {
    const gw = await gatewayWith({ targets: [a.port] });
    expect(await openWorkerPage(page, site.origin)).toBe('shared');
    const r = await page.evaluate(
      (x) =>
        window.manaWorker.openWith(
          { url: x.url, token: x.token },
          {
            target: { host: '127.0.0.1', port: x.b.port },
            username: x.b.user,
            via: {
              target: { host: '127.0.0.1', port: x.a.port },
              username: x.a.user,
              auth: { privateKey: x.a.key },
            },
            graceMs: 30_000,
          },
          { privateKey: x.b.key },
        ),
      {
        url: gw.url,
        token: gw.token(),
        a: { port: a.port, user: a.user, key: a.userKey.privateKey },
        b: { port: b.port, user: b.user, key: b.userKey.privateKey },
      },
    );
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    await termMatches(page, /[$#] ?$/m);
    await typeIn(page, 'X=$RANDOM; echo "x=$X port=${SSH_CONNECTION##* }"\r');
    const m = /^x=(\d+) port=(\d+)$/m.exec(await termMatches(page, /^x=\d+ port=\d+$/m));
    expect(Number(m?.[2]), 'the shell runs on B').toBe(b.port);
    const before = [logins(a), logins(b)];
    expect(before).toEqual([1, 1]);

    expect(await reloadWorkerPage(page)).toBe('shared');
    expect(await page.evaluate(() => window.manaWorker.reattach())).toMatchObject({ ok: true });
    await typeIn(page, 'echo "again=$X"\r');
    await termMatches(page, new RegExp(`^again=${m?.[1]}$`, 'm'));
    expect([logins(a), logins(b)], 'no new SSH login after the reload').toEqual(before);
  } finally {
    await a.stop();
    await b.stop();
  }
});
