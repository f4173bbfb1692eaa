// SPDX-License-Identifier: Apache-2.0
// Debian's Chromium under playwright-core for the scripts that drive a browser outside the e2e
// suite (scripts/demo-check.mjs, bench/browser/run.mjs). playwright-core is an npm dependency of
// e2e/ and web-demo/, not of the repository root, so it is resolved from whichever is installed.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The playwright-core module installed in e2e/ or web-demo/ (`make e2e-deps` / `make demo-deps`). */
export function loadPlaywright() {
  for (const dir of ['e2e', 'web-demo']) {
    const pkg = path.join(root, dir, 'package.json');
    if (!fs.existsSync(pkg)) continue;
    try {
      return createRequire(pkg)('playwright-core');
    } catch {
      // not installed there
    }
  }
  throw new Error('playwright-core is not installed: run `make e2e-deps` or `make demo-deps`');
}

/**
 * Chromium's virtual authenticator on the page of `cdp` (a CDPSession), for security-key tests
 * (CDP WebAuthn): CTAP2 over USB, resident keys, user verification on and given, presence given
 * automatically (no dialog). Returns its authenticatorId. Shared by scripts/demo-check.mjs and
 * e2e/ssh/security-key-fixtures.ts.
 */
export async function addVirtualAuthenticator(cdp) {
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'usb',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return authenticatorId;
}
