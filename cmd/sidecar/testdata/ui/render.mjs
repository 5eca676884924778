// Opens a Consul UI page in headless Chromium, waits until the text given
// appears, saves a full-page screenshot and prints the page's text.
// Usage: node render.mjs URL WAIT_FOR_TEXT SCREENSHOT.png
import { chromium } from 'playwright-core';

const [url, waitFor, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(url);
  await page.getByText(waitFor).first().waitFor({ timeout: 20000 });
  await page.screenshot({ path: shot, fullPage: true });
  process.stdout.write(await page.locator('body').innerText());
} finally {
  await browser.close();
}
