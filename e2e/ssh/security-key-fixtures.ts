// SPDX-License-Identifier: Apache-2.0
// Fixtures of the security-key specs (security-key.spec.ts in the page, worker-security-key.spec.ts
// in the session worker), on top of ../fixtures:
//
//   skSshd    (test) a fresh stock sshd (tools/devkit/sshd.mjs): its authorized_keys and log hold
//                    only what the test did
//   skGateway (test) mana-gateway allowing skSshd and the static site at http://localhost
//   authn     (test) `page` opened by the spec's `openAt` on the localhost origin (an IP address is
//                    not a valid rpId), with Chromium's virtual authenticator (tools/devkit/
//                    browser.mjs: ctap2, resident keys, user verification on and verified,
//                    automatic presence)
import type { CDPSession, Page } from '@playwright/test';
import { test as base, devkit, type Gateway } from '../fixtures';
import type { Sshd } from './fixtures';

export type SkSshd = Sshd & { authorizedKeysPath: string };
interface SshdModule {
  startSshd: (o?: Record<string, unknown>) => Promise<SkSshd>;
}
interface BrowserModule {
  /** tools/devkit/browser.mjs: CDP WebAuthn.enable + addVirtualAuthenticator; its id. */
  addVirtualAuthenticator: (cdp: CDPSession) => Promise<string>;
}

export interface Authn {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
  origin: string;
}

/** The static server's origin with the host name localhost (same port, same server). */
export function localhostOrigin(origin: string): string {
  const u = new URL(origin);
  u.hostname = 'localhost';
  return u.origin;
}

/** The security-key fixtures; `openAt` loads the spec's page at the localhost origin. */
export function skTest(openAt: (page: Page, origin: string) => Promise<unknown>) {
  return base.extend<{ skSshd: SkSshd; skGateway: Gateway; authn: Authn }>({
    skSshd: async ({}, use) => {
      const { startSshd } = await devkit<SshdModule>('sshd.mjs');
      const s = await startSshd({ password: true });
      await use(s);
      await s.stop();
    },
    skGateway: async ({ gatewayWith, site, skSshd }, use) => {
      await use(
        await gatewayWith({ targets: [skSshd.port], origins: [localhostOrigin(site.origin)] }),
      );
    },
    authn: async ({ page, site }, use) => {
      const origin = localhostOrigin(site.origin);
      page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
      await openAt(page, origin);
      const cdp = await page.context().newCDPSession(page);
      const { addVirtualAuthenticator } = await devkit<BrowserModule>('browser.mjs');
      const authenticatorId = await addVirtualAuthenticator(cdp);
      await use({ page, cdp, authenticatorId, origin });
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
      await cdp.detach();
    },
  });
}

/** Forces response bits of the virtual authenticator (CDP setResponseOverrideBits). */
export async function overrideBits(
  authn: Authn,
  bits: { sig?: boolean; uv?: boolean; up?: boolean },
): Promise<void> {
  await authn.cdp.send('WebAuthn.setResponseOverrideBits', {
    authenticatorId: authn.authenticatorId,
    isBogusSignature: bits.sig ?? false,
    isBadUV: bits.uv ?? false,
    isBadUP: bits.up ?? false,
  });
}

/**
 * sshd's log lines (LogLevel VERBOSE) about security-key logins: `Found` is "Accepted key ECDSA-SK
 * ... found at" (the key is in authorized_keys: sshd answers the query or checks a signature),
 * `Accepted` / `Failed` the verdict on a signed request.
 */
export function skLog(sshd: SkSshd, what: 'Found' | 'Accepted' | 'Failed'): string[] {
  const lines = sshd.log().split('\n');
  if (what === 'Found') return lines.filter((l) => l.startsWith('Accepted key ECDSA-SK '));
  return lines.filter((l) => l.startsWith(`${what} publickey for `) && l.includes(' ECDSA-SK '));
}
