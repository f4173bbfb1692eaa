// The terminal path of the web demo in Chromium against a real sshd: the form, the host-key
// prompt, xterm.js + the ManaAttachAddon, resize and exit status.
import { test, expect, loginViaForm, typeLine, waitTerm, type DemoWindow } from './fixtures';

test('ed25519 key login through the form, echo, stty size after resize, exit 3', async ({
  demoPage: page,
  sshd,
}) => {
  await loginViaForm(page, sshd);
  await typeLine(page, 'echo "mana-$((6*7))"');
  await waitTerm(page, /^mana-42$/m);

  const size = () =>
    page.evaluate(() => {
      const t = (window as unknown as DemoWindow).manaDemo.term;
      return [t.cols, t.rows] as const;
    });
  const before = await size();
  await page.setViewportSize({ width: 700, height: 420 });
  await expect.poll(size).not.toEqual(before);
  const [cols, rows] = await size();
  await page.waitForTimeout(200); // one coalesced window-change
  await typeLine(page, 'stty size');
  await waitTerm(page, new RegExp(`^${rows} ${cols}$`, 'm'));

  const info = await page.evaluate(
    () => (window as unknown as DemoWindow).manaDemo.live()?.session?.info,
  );
  expect(info?.authMethod).toBe('publickey');
  expect(info?.fingerprint).toBe(sshd.hostKeys.ed25519?.fingerprint);

  await typeLine(page, 'exit 3');
  await expect
    .poll(() => page.evaluate(() => (window as unknown as DemoWindow).manaDemo.live()?.exit?.code))
    .toBe(3);
  await expect(page.locator('body')).toHaveAttribute('data-exit-code', '3');
  await expect(page.locator('#banner')).toContainText('code 3');
  await expect(page.locator('#btn-reconnect')).toBeVisible();
});

test('rejecting the host key shows a typed error and sends nothing after the key exchange', async ({
  demoPage: page,
  sshd,
}) => {
  const accepted = (sshd.log().match(/Accepted /g) ?? []).length;
  await page.click('#btn-connect');
  await page.locator('#hostkey-dialog[open]').waitFor();
  await page.click('#hk-reject');
  await expect(page.locator('#banner')).toContainText(/Host key rejected/);
  await expect(page.locator('#banner')).toHaveAttribute('data-kind', 'hard');
  expect((sshd.log().match(/Accepted /g) ?? []).length).toBe(accepted);
});

test('page reload: the lost session is reported, "Reconnect" logs in again', async ({
  demoPage: page,
  sshd,
}) => {
  await loginViaForm(page, sshd);
  await typeLine(page, 'echo "before-$((2+2))"');
  await waitTerm(page, /^before-4$/m);
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  await expect(page.locator('#banner')).toContainText(
    `${sshd.user}@${sshd.host}:${sshd.port} (host key ${sshd.hostKeys.ed25519?.fingerprint}) ended with the page reload`,
  );
  await expect(page.locator('#btn-reconnect')).toBeVisible();
  await page.click('#btn-reconnect');
  // The host key was stored on first use (localStorage survives the reload): no prompt now.
  await waitTerm(page, /[$#] ?$/m);
  expect(await page.locator('#hostkey-dialog[open]').count()).toBe(0);
  await typeLine(page, 'echo "after-$((3+3))"');
  await waitTerm(page, /^after-6$/m);
});
