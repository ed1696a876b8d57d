import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

/**
 * Debian's chromium (scripts/ensure-tool.sh chromium installs it; browser
 * downloads are impossible here) driven by playwright-core. --no-sandbox:
 * the tests run as root in a container, where chromium's sandbox cannot start.
 */
export const CHROMIUM_PATH = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"].find((p) => existsSync(p));

export async function launchBrowser(): Promise<Browser> {
  if (!CHROMIUM_PATH) throw new Error("chromium is not installed: run scripts/ensure-tool.sh chromium (npm test does)");
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}
