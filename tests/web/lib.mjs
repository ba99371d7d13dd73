// lib.mjs - what the browser tests share: checks that print TAP-like lines
// ("ok N - name (T ms)", "not ok N - name"; after a failure the rest are
// reported as not run), the closing "# N passed, M failed" that run.sh and
// tests/run.sh count, and Chromium started the one way the machine allows.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const results = [];
let failedOnce = false;

// Runs fn as the check called name and prints its line.
export async function check(name, fn) {
  if (failedOnce) {
    results.push(false);
    console.log(`not ok ${results.length} - ${name} # not run after an earlier failure`);
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    results.push(true);
    console.log(`ok ${results.length} - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push(false);
    failedOnce = true;
    console.log(`not ok ${results.length} - ${name}`);
    console.log(String(e.stack || e).replace(/^/gm, '#   '));
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Chromium (CHROMIUM, else Debian's /usr/bin/chromium) with a fresh profile
// and the flags of the machine notes: no sandbox (root), no GPU, and
// nothing that would reach out to Google's services (headless: true adds
// --headless). Returns the context; closeChromium() ends it and removes the
// profile. Throws when Chromium does not start.
let profile = null;
export async function launchChromium(viewport) {
  profile = mkdtempSync(join(tmpdir(), 'steppy-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport,
  });
}

export async function closeChromium(context) {
  await context.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  profile = null;
}

// Prints "# N passed, M failed" and returns the exit status (0: all passed).
export function finish() {
  const passed = results.filter(Boolean).length;
  console.log(`# ${passed} passed, ${results.length - passed} failed`);
  return passed === results.length ? 0 : 1;
}
