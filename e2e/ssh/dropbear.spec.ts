// Interop with Dropbear (issue #20 §2) in Chromium: the web demo logs in with a key to Debian's
// Dropbear (tools/devkit/dropbear.mjs) through the real gateway, the host-key prompt shows the
// fingerprint of the key dropbearkey made, a command's output appears in the terminal.
import {
  test as sshTest,
  expect,
  loginViaForm,
  typeLine,
  waitTerm,
  type DemoWindow,
  type Sshd,
} from './fixtures';
import { devkit } from '../fixtures';

interface Dropbear extends Sshd {
  version: string;
}
type StartDropbear = (options?: Record<string, unknown>) => Promise<Dropbear>;

const test = sshTest.extend<{ dropbear: Dropbear }>({
  dropbear: async ({}, use) => {
    const { startDropbear } = await devkit<{ startDropbear: StartDropbear }>('dropbear.mjs');
    const d = await startDropbear();
    await use(d);
    await d.stop();
  },
});

test('Dropbear: key login through the form, a command in the terminal, exit 3', async ({
  page,
  demoSite,
  gatewayWith,
  dropbear,
}) => {
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  const gw = await gatewayWith({ targets: [dropbear.port], origins: [demoSite.origin] });
  demoSite.configure({
    gatewayUrl: gw.url,
    target: { host: dropbear.host, port: dropbear.port },
    user: dropbear.user,
    privateKey: dropbear.userKey.privateKey,
    hostKey: {
      algorithm: 'ssh-ed25519',
      fingerprint: dropbear.hostKeys.ed25519?.fingerprint ?? '',
    },
    token: () => gw.token(),
  });
  await page.goto(demoSite.origin + '/');
  await page.waitForSelector('body[data-ready="1"]');

  await loginViaForm(page, dropbear); // the prompt must show dropbearkey's fingerprint
  await typeLine(page, 'echo "dropbear-$((6*7))" $(id -un)');
  await waitTerm(page, new RegExp(`^dropbear-42 ${dropbear.user}$`, 'm'));

  const info = await page.evaluate(
    () => (window as unknown as DemoWindow).manaDemo.live()?.session?.info,
  );
  expect(info?.authMethod).toBe('publickey');
  expect(info?.hostKeyAlgorithm).toBe('ssh-ed25519');
  expect(info?.fingerprint).toBe(dropbear.hostKeys.ed25519?.fingerprint);
  expect(dropbear.log()).toMatch(/Pubkey auth succeeded for 'mana-e2e'/);

  await typeLine(page, 'exit 3');
  await expect
    .poll(() => page.evaluate(() => (window as unknown as DemoWindow).manaDemo.live()?.exit?.code))
    .toBe(3);
  await expect(page.locator('body')).toHaveAttribute('data-exit-code', '3');
});
