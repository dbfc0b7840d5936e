// Headless Chromium for the tests that check a page the way a reader sees it (the API site's
// links, the audit report). puppeteer-core drives the Debian `chromium` package that
// scripts/bootstrap.sh installs (`SMKI_CHROMIUM` overrides the path). The tests run as root in CI,
// where Chromium's sandbox cannot start, hence --no-sandbox; the pages are local files.
import puppeteer, { type Browser } from 'puppeteer-core';

export const CHROMIUM = process.env.SMKI_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
}
