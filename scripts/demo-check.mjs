// make demo-check: drives the demo page (started by scripts/demo.mjs --check) in Debian's
// Chromium through playwright-core: log in (host-key prompt: the fingerprint must be the demo
// sshd's), `echo`, resize the window and compare `stty size` with the terminal, `exit 3` (the
// page must report code 3 from SshSession.onExit). Then the security-key journey of the same page
// at http://localhost (an IP address is no WebAuthn rpId), with Chromium's virtual authenticator
// (CDP WebAuthn: ctap2, user verification, automatic presence): "Enrol a security key", "Add to
// the demo sshd", Connect with the method "security key", `echo`, and sshd must log
// `Accepted publickey ... ECDSA-SK`. Prints a transcript; resolves true only if every step passed.
//
// playwright-core comes from e2e/node_modules or web-demo/node_modules (tools/devkit/browser.mjs).
// The browser is /usr/bin/chromium ($CHROMIUM), headless, --no-sandbox when running as root.
import { addVirtualAuthenticator, loadPlaywright } from '../tools/devkit/browser.mjs';

export async function runCheck({ url, hostFingerprint, sshdLog, onBrowser, log }) {
  const { chromium } = loadPlaywright();
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  onBrowser(browser);
  const context = await browser.newContext({
    viewport: { width: 1200, height: 760 },
  });
  let page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));

  const steps = [];
  let failed = false;
  async function step(name, fn) {
    if (failed) {
      steps.push({ name, result: 'skipped' });
      return;
    }
    const start = Date.now();
    try {
      const detail = await fn();
      const ms = Date.now() - start;
      steps.push({ name, result: 'ok', ms, detail });
      log(`step ${name}: ok (${ms} ms)${detail ? ` - ${detail}` : ''}`);
    } catch (e) {
      failed = true;
      const ms = Date.now() - start;
      steps.push({ name, result: 'FAILED', ms, detail: e.message });
      log(`step ${name}: FAILED (${ms} ms) - ${e.message}`);
    }
  }
  const text = () => page.evaluate(() => window.manaDemo.text());
  async function waitText(pred, what, ms = 15000) {
    const end = Date.now() + ms;
    let t = '';
    while (Date.now() < end) {
      t = await text();
      const banner = await page.evaluate(() => {
        const b = document.getElementById('banner');
        return b && !b.hidden && b.dataset.kind !== 'info' ? b.textContent : '';
      });
      if (banner) throw new Error(`page error banner: ${banner}`);
      if (pred(t)) return t;
      await page.waitForTimeout(50);
    }
    throw new Error(`timed out waiting for ${what}; terminal:\n${t.slice(-600)}`);
  }
  async function acceptHostKey() {
    await page.click('#btn-connect');
    const shown = await page.waitForFunction(
      () => {
        const b = document.getElementById('banner');
        if (b && !b.hidden && b.dataset.kind !== 'info') return `banner: ${b.textContent}`;
        return document.querySelector('#hostkey-dialog[open]') ? 'dialog' : false;
      },
      null,
      { timeout: 20000 },
    );
    const what = await shown.jsonValue();
    if (what !== 'dialog') throw new Error(`no host-key prompt; page error ${what}`);
    const fp = (await page.textContent('#hk-fp'))?.trim();
    const alg = (await page.textContent('#hk-alg'))?.trim();
    if (fp !== hostFingerprint) {
      throw new Error(`host key prompt shows ${fp}, the demo sshd has ${hostFingerprint}`);
    }
    await page.click('#hk-accept');
    await waitText((t) => /[$#] ?$/m.test(t), 'the shell prompt');
    return `${alg} ${fp}`;
  }
  async function typeLine(line) {
    await page.locator('#terminal').click();
    await page.keyboard.type(line);
    await page.keyboard.press('Enter');
  }

  await step('load page', async () => {
    await page.goto(url);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10000 });
    const user = await page.inputValue('input[name=user]');
    const key = await page.inputValue('textarea[name=privateKey]');
    if (!user || !key.includes('OPENSSH PRIVATE KEY')) throw new Error('form is not prefilled');
    // At 127.0.0.1 the security-key panel refuses (an IP is no rpId) and names the localhost URL.
    await page.check('input[name=method][value=securityKey]');
    const local = new URL(url);
    local.hostname = 'localhost';
    const refusal = await page.textContent('#sk-status');
    if (!(await page.isDisabled('#btn-sk-enrol')) || !refusal?.includes(local.origin)) {
      throw new Error(`at ${url} the security-key panel offers enrolment: "${refusal}"`);
    }
    await page.check('input[name=method][value=key]');
    return `form prefilled for ${user}; security keys: "${refusal}"`;
  });

  await step('log in (host-key prompt, ed25519 key)', async () => {
    const hostKey = await acceptHostKey();
    const info = await page.evaluate(() => {
      const s = window.manaDemo.live()?.session;
      return s ? JSON.stringify(s.info) : '';
    });
    return `prompted for ${hostKey}; session ${info}`;
  });

  await step('echo', async () => {
    await typeLine('echo "mana-$((6*7))"');
    await waitText((t) => /^mana-42$/m.test(t), 'mana-42');
    return 'mana-42 printed by the remote shell';
  });

  await step('resize + stty size', async () => {
    const before = await page.evaluate(() => [
      window.manaDemo.term.cols,
      window.manaDemo.term.rows,
    ]);
    await page.setViewportSize({ width: 820, height: 520 });
    const end = Date.now() + 5000;
    let now = before;
    while (Date.now() < end) {
      now = await page.evaluate(() => [window.manaDemo.term.cols, window.manaDemo.term.rows]);
      if (now[0] !== before[0] && now[1] !== before[1]) break;
      await page.waitForTimeout(50);
    }
    if (now[0] === before[0] || now[1] === before[1]) {
      throw new Error(`the terminal did not refit: ${before} -> ${now}`);
    }
    await page.waitForTimeout(300); // let the coalesced window-change reach sshd
    await typeLine('stty size');
    const [cols, rows] = now;
    await waitText((t) => new RegExp(`^${rows} ${cols}$`, 'm').test(t), `"${rows} ${cols}"`);
    return `${before[0]}x${before[1]} -> ${cols}x${rows}; stty size = "${rows} ${cols}"`;
  });

  await step('exit 3', async () => {
    await typeLine('exit 3');
    await page.waitForFunction(() => window.manaDemo.live()?.exit !== undefined, null, {
      timeout: 15000,
    });
    const exit = await page.evaluate(() => window.manaDemo.live()?.exit);
    const shown = await page.getAttribute('body', 'data-exit-code');
    const banner = await page.textContent('#banner');
    if (exit?.code !== 3) throw new Error(`onExit reported ${JSON.stringify(exit)}`);
    if (shown !== '3' || !banner?.includes('code 3')) {
      throw new Error(`the page shows "${banner}" (data-exit-code ${shown})`);
    }
    return `onExit {code: 3}; page: "${banner.trim()}"`;
  });

  await step('security key: enrol at http://localhost (virtual authenticator)', async () => {
    const local = new URL(url);
    local.hostname = 'localhost';
    page = await context.newPage();
    page.on('console', (m) => consoleLines.push(`[console.${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    await addVirtualAuthenticator(await context.newCDPSession(page));
    await page.goto(local.href);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10000 });
    await page.check('input[name=method][value=securityKey]');
    await page.click('#btn-sk-enrol');
    await page.waitForSelector('body[data-security-key="enrolled"]', {
      timeout: 20000,
    });
    const line = await page.inputValue('#sk-line');
    if (!/^sk-ecdsa-sha2-nistp256@openssh\.com AAAA/.test(line)) {
      throw new Error(`the page shows the line "${line}"`);
    }
    return line.replace(/^(\S+ \S{24})\S*/, '$1...');
  });

  await step('security key: "Add to the demo sshd", log in, echo', async () => {
    // The demo server takes security-key lines only.
    const refused = await page.evaluate(async () => {
      const r = await fetch('/api/authorized-key', {
        method: 'POST',
        headers: { 'x-mana-demo': '1' },
        body: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x',
      });
      return r.status;
    });
    if (refused !== 400) throw new Error(`an ssh-ed25519 line got HTTP ${refused}, not 400`);
    await page.click('#btn-sk-authorize');
    await page.waitForSelector('body[data-security-key="authorized"]', {
      timeout: 10000,
    });
    const hostKey = await acceptHostKey();
    await typeLine('echo "sk-$((6*7))"');
    await waitText((t) => /^sk-42$/m.test(t), 'sk-42');
    const accepted = sshdLog()
      .split('\n')
      .find((l) => /Accepted publickey .*ECDSA-SK/.test(l));
    if (!accepted) throw new Error('sshd logged no "Accepted publickey ... ECDSA-SK"');
    await typeLine('exit 0');
    return (
      `an ssh-ed25519 line refused (400); host key ${hostKey} prompted again (another ` +
      `origin); sshd: ${accepted.trim()}`
    );
  });

  const transcript = await text().catch(() => '(page gone)');
  console.log('\n===== demo-check transcript (terminal) =====');
  console.log(transcript);
  console.log('===== steps =====');
  for (const s of steps) {
    console.log(`${s.result.padEnd(7)} ${s.name}${s.ms !== undefined ? ` (${s.ms} ms)` : ''}`);
    if (s.detail) console.log(`        ${s.detail.split('\n').join('\n        ')}`);
  }
  if (failed && consoleLines.length) {
    console.log('===== browser console =====');
    console.log(consoleLines.slice(-40).join('\n'));
  }
  await browser.close();
  return !failed && steps.every((s) => s.result === 'ok');
}
