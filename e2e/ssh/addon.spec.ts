// SPDX-License-Identifier: Apache-2.0
// The web demo's xterm.js addons in Chromium against a real sshd: the ManaAttachAddon carries a
// 10 000-character paste (xterm's own paste path) intact through SSH, Ctrl+Shift+C copies the
// selection, Ctrl+Shift+F searches the scrollback, and term.dispose() leaves no wasm handle.
import { createHash, randomInt } from 'node:crypto';
import { test, expect, loginViaForm, typeLine, waitTerm } from './fixtures';

/** The part of window.manaDemo this journey uses. */
interface AddonDemoWindow {
  manaDemo: {
    lib: { liveSshEngines(): Promise<number>; liveCoreSessions(): Promise<number> };
    term: {
      buffer: {
        active: {
          length: number;
          getLine(i: number): { translateToString(trim: boolean): string } | undefined;
        };
      };
      select(column: number, row: number, length: number): void;
      getSelection(): string;
      focus(): void;
    };
    live():
      | {
          session?: { state: string; flow: string };
          attachment?: { disposed: boolean; stats(): Record<string, number> };
        }
      | undefined;
    disposeTerminal(): void;
    stop(): Promise<void>;
  };
}

/** 10 000 characters: 125 lines of 79 (printable ASCII and some UTF-8) + '\n'. A canonical-mode
 *  tty takes lines of up to 4095 bytes, so no line is cut. */
function pasteText(): string {
  const alphabet =
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~éü€';
  let out = '';
  for (let line = 0; line < 125; line++) {
    for (let i = 0; i < 79; i++) out += alphabet[randomInt(alphabet.length)];
    out += '\n';
  }
  return out;
}

test('paste 10 000 characters through SSH intact, copy, search, then term.dispose() frees every handle', async ({
  demoPage: page,
  sshd,
  context,
  demoSite,
}) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], {
    origin: demoSite.origin,
  });
  await loginViaForm(page, sshd);
  const addonState = () =>
    page.evaluate(() => {
      const l = (window as unknown as AddonDemoWindow).manaDemo.live();
      return { flow: l?.session?.flow, disposed: l?.attachment?.disposed };
    });
  expect(await addonState()).toEqual({ flow: 'manual', disposed: false });

  // 1. Paste: a real ClipboardEvent on xterm's textarea, so xterm's paste handler (newline ->
  //    CR, bracketed paste when the shell asks) sends it through the addon. `cat` stores it with
  //    echo off (the tty turns each CR back into LF); sha256 on the server vs here.
  const text = pasteText();
  expect([...text].length).toBe(10_000);
  const utf8 = Buffer.from(text, 'utf8');
  const want = createHash('sha256').update(utf8).digest('hex');
  const file = `/tmp/mana-paste-${process.pid}-${randomInt(1e9)}`;
  await typeLine(page, `stty -echo; echo "ready-$((2*3))"; cat > ${file}; stty echo`);
  await waitTerm(page, /^ready-6$/m);
  await page.evaluate((t) => {
    const ta = document.querySelector<HTMLTextAreaElement>('.xterm-helper-textarea');
    if (!ta) throw new Error('xterm textarea missing');
    const data = new DataTransfer();
    data.setData('text/plain', t);
    ta.dispatchEvent(
      new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
    );
  }, text);
  await page.keyboard.press('Control+D'); // EOF for cat (the text ends with a newline)
  await typeLine(page, `sha256sum < ${file}; wc -c < ${file}; rm -f ${file}`);
  await waitTerm(page, new RegExp(`^${want}  -\\n${utf8.length}$`, 'm'), 30_000);
  const stats = await page.evaluate(() =>
    (window as unknown as AddonDemoWindow).manaDemo.live()?.attachment?.stats(),
  );
  expect(stats?.inputSent).toBeGreaterThanOrEqual(utf8.length);
  expect(stats?.inputDropped).toBe(0);
  expect(stats?.consumed).toBeGreaterThan(0);

  // 2. Copy: select a line of output, Ctrl+Shift+C puts it on the clipboard.
  await typeLine(page, 'echo "copy-$((5*5))"');
  await waitTerm(page, /^copy-25$/m);
  await page.evaluate(() => {
    const t = (window as unknown as AddonDemoWindow).manaDemo.term;
    const buf = t.buffer.active;
    for (let row = buf.length - 1; row >= 0; row--) {
      if (buf.getLine(row)?.translateToString(true) === 'copy-25') {
        t.select(0, row, 'copy-25'.length);
        break;
      }
    }
    t.focus();
  });
  await page.keyboard.press('Control+Shift+C');
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe('copy-25');

  // 3. Search: Ctrl+Shift+F opens the box; Enter selects the match (the output line, not the
  //    command, which reads needle-$((6*7))).
  await typeLine(page, 'echo "needle-$((6*7))"; echo done-$((1+1))');
  await waitTerm(page, /^done-2$/m);
  await page.locator('#terminal').click();
  await page.keyboard.press('Control+Shift+F');
  await expect(page.locator('#search')).toBeVisible();
  await expect(page.locator('#search-input')).toBeFocused();
  await page.locator('#search-input').fill('needle-42');
  await page.keyboard.press('Enter');
  await expect(page.locator('#search')).toHaveAttribute('data-found', '1');
  expect(
    await page.evaluate(() => (window as unknown as AddonDemoWindow).manaDemo.term.getSelection()),
  ).toBe('needle-42');
  await page.locator('#search-input').fill('no-such-text-anywhere');
  await page.keyboard.press('Enter');
  await expect(page.locator('#search')).toHaveAttribute('data-found', '0');
  await page.keyboard.press('Escape');
  await expect(page.locator('#search')).toBeHidden();
  await typeLine(page, 'echo "after-search-$((3*3))"');
  await waitTerm(page, /^after-search-9$/m);

  // 4. term.dispose(): xterm disposes its addons; the ManaAttachAddon owns the session, so its
  //    SSH engine handle goes; stopping the page's connection releases the core handle.
  await page.evaluate(() => (window as unknown as AddonDemoWindow).manaDemo.disposeTerminal());
  expect(await addonState()).toMatchObject({ disposed: true });
  await expect
    .poll(() =>
      page.evaluate(() => (window as unknown as AddonDemoWindow).manaDemo.lib.liveSshEngines()),
    )
    .toBe(0);
  expect(
    await page.evaluate(
      () => (window as unknown as AddonDemoWindow).manaDemo.live()?.session?.state,
    ),
  ).toBe('closed');
  await page.evaluate(() => (window as unknown as AddonDemoWindow).manaDemo.stop());
  expect(
    await page.evaluate(() =>
      (window as unknown as AddonDemoWindow).manaDemo.lib.liveCoreSessions(),
    ),
  ).toBe(0);
});
