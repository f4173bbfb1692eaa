// Playwright on Debian's Chromium (/usr/bin/chromium, or $CHROMIUM): Playwright's own browser
// download cannot work on these machines. Headless, --no-sandbox (the tests run as root).
// One worker: the machine has 2 cores shared by Chromium, the gateway and the targets, and the
// specs measure pauses and byte counts that a second busy worker would only make noisier.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  testMatch: ['transport/**/*.spec.ts', 'ssh/**/*.spec.ts'],
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  globalTimeout: 8 * 60_000,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  outputDir: '../build/e2e/test-results',
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--enable-precise-memory-info'],
    },
    trace: 'off',
  },
});
