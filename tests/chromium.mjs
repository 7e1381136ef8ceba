// Debian's Chromium as the browser tests launch it (tests/browser_form.mjs, tests/app_host.mjs): headless, with a
// fresh profile, and none of Chromium's own background connections (refused on a closed network).

import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A persistent context on the empty profile folder `profile`; `timeout` ms for a cold first start. */
export function launch(profile, timeout) {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout,
  });
}
