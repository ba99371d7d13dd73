// dashboard.test.mjs - the dashboard in a real browser (Debian's Chromium,
// driven by playwright-core), against a real `steppy serve`. Started by
// tests/web/run.sh, which passes:
//
//   STEPPY_URL          the server, http://127.0.0.1:PORT
//   STEPPY_TOKEN        a token of "alice" (viewer, operator, approver)
//   STEPPY_VIEWER_TOKEN a token of "victor" (viewer only)
//   SHOTS               where screenshots go (build/web)
//
// The checks run in order, each building on the last; after a failure the
// rest are reported as failed without running. Prints one line per check
// and "# N passed, M failed" (what tests/run.sh counts).
import { assert, check, closeChromium, finish, launchChromium } from './lib.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const url = process.env.STEPPY_URL;
const token = process.env.STEPPY_TOKEN;
const viewerToken = process.env.STEPPY_VIEWER_TOKEN;
const shots = process.env.SHOTS || 'build/web';
const WAIT = { timeout: 15000 };

const VALID_PLAN = `name: Web release
environmentName: staging
variables:
  WHO: {default: nobody}
stages:
  - name: Build
    steps:
      - type: Wait
        name: Settle
        seconds: 2
      - type: Exec
        name: Say hi
        command: ["sh", "-c", "echo hi"]
  - name: Sign-off
    steps:
      - type: Human
        name: Go
        message: Ship it, \${var.WHO}?
`;

// Line 8 misspells the step type; the last step names a field Exec does not
// have (line 12) and so lacks the one it needs (line 10): three problems.
const INVALID_PLAN = `name: Broken release
stages:
  - name: Build
    steps:
      - type: Wait
        name: Settle
        seconds: 2
      - type: Exce
        name: Say hi
      - type: Exec
        name: Say bye
        comand: ["true"]
`;

const SECOND_PLAN = {
  name: 'Second release',
  environmentName: 'production',
  stages: [{ name: 'Approval', steps: [{ type: 'Human', name: 'Sign', message: 'Go to production?' }] }],
};

// Twenty quick commands: more events than one page of the history (50).
const LONG_PLAN = {
  name: 'Many steps',
  stages: [
    {
      name: 'All at once',
      steps: Array.from({ length: 20 }, (_, i) => ({ type: 'Exec', name: `step ${i + 1}`, command: ['true'] })),
    },
  ],
};

// HTTP errors the test causes on purpose: "METHOD path status".
const EXPECTED_ERRORS = new Set([
  'GET /api/v1/session 401', // before signing in, and after signing out
  'POST /api/v1/session 401', // the wrong token
  'POST /api/v1/executions 400', // the invalid plan
]);


async function submitByApi(plan) {
  const res = await fetch(`${url}/api/v1/executions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ plan }),
  });
  assert(res.status === 201, `submitting by the API answered ${res.status}`);
  return (await res.json()).id;
}

mkdirSync(shots, { recursive: true });
const started = Date.now();
let context;
try {
  context = await launchChromium({ width: 1360, height: 900 });
} catch (e) {
  console.log(`not ok 1 - Chromium starts\n#   ${e.message}`);
  console.log('# 0 passed, 1 failed');
  process.exit(1);
}

const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
const unexpectedHttp = [];
const foreign = [];
page.on('console', (msg) => {
  if (msg.type() !== 'error') return;
  // Chromium logs every 4xx answer as "Failed to load resource"; the ones
  // the test causes on purpose are checked through EXPECTED_ERRORS instead.
  const where = msg.location().url || '';
  if (/^Failed to load resource: the server responded with a status of 40[01]/.test(msg.text()) && /\/api\/v1\/(session|executions)$/.test(new URL(where, url).pathname)) return;
  consoleErrors.push(`${msg.text()} (${where})`);
});
page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
context.on('request', (req) => {
  const u = new URL(req.url());
  if (u.protocol !== 'data:' && u.hostname !== '127.0.0.1') foreign.push(req.url());
});
page.on('response', (res) => {
  if (res.status() < 400) return;
  const key = `${res.request().method()} ${new URL(res.url()).pathname} ${res.status()}`;
  if (!EXPECTED_ERRORS.has(key)) unexpectedHttp.push(key);
});

const step = (id, state) => page.locator(`li.step[data-step="${id}"][data-state="${state}"]`);
let releaseId, secondId;

await check('the page loads under a strict CSP and asks for a token', async () => {
  const res = await page.goto(url);
  const csp = res.headers()['content-security-policy'] || '';
  assert(csp.includes("default-src 'self'") && csp.includes("script-src 'self'"), `CSP: ${csp}`);
  await page.getByLabel('API token').waitFor(WAIT);
  assert(!(await page.getByRole('button', { name: 'Sign out' }).isVisible()), 'no sign-out before signing in');
  assert(!(await page.getByRole('navigation').isVisible()), 'no navigation before signing in');
});

await check('a wrong token is refused in place', async () => {
  await page.getByLabel('API token').fill('stp_not_a_token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').getByText('That token is not known here.').waitFor(WAIT);
});

await check('signs in with the token', async () => {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-name', { hasText: 'alice' }).waitFor(WAIT);
  await page.getByRole('heading', { name: 'Releases' }).waitFor(WAIT);
});

await check('an invalid plan shows its diagnostics beside the text', async () => {
  await page.getByRole('link', { name: 'Submit a plan' }).click();
  await page.getByLabel('Plan (JSON or YAML)').fill(INVALID_PLAN);
  await page.getByRole('button', { name: 'Start the release' }).click();
  const box = page.locator('#diagnostics');
  await box.getByRole('heading', { name: /The plan has 3 problems/ }).waitFor(WAIT);
  const type = box.locator('li[data-line="8"]');
  await type.getByRole('button', { name: '8:15' }).waitFor(WAIT);
  assert((await type.innerText()).includes('did you mean "Exec"'), `diagnostic: ${await type.innerText()}`);
  assert((await type.locator('mark').innerText()).includes('- type: Exce'), 'the offending line is shown');
  const field = box.locator('li[data-line="12"]');
  assert((await field.innerText()).includes('comand'), `diagnostic: ${await field.innerText()}`);
  assert((await page.getByLabel('Plan (JSON or YAML)').getAttribute('aria-invalid')) === 'true', 'the text is marked invalid');
  // The line:column button selects that line in the text.
  await type.getByRole('button', { name: '8:15' }).click();
  const selected = await page.$eval('#plan-text', (t) => t.value.slice(t.selectionStart, t.selectionEnd));
  assert(selected === 'Exce', `selected "${selected}"`);
  assert(new URL(page.url()).hash === '#/submit', 'still on the form');
  await page.screenshot({ path: join(shots, 'invalid-plan.png') });
});

await check('a valid plan starts and the page goes to the release', async () => {
  await page.getByLabel('Plan (JSON or YAML)').fill(VALID_PLAN);
  await page.getByLabel('Variables').fill('WHO=the web test');
  await page.getByRole('button', { name: 'Start the release' }).click();
  await page.waitForURL(/#\/executions\/[a-z0-9]+$/, WAIT);
  releaseId = new URL(page.url()).hash.split('/').pop();
  await page.getByRole('heading', { name: 'Web release' }).waitFor(WAIT);
});

await check('steps change state live, without a reload', async () => {
  await page.evaluate(() => (window.notReloaded = true));
  await step('0/0', 'RUNNING').waitFor(WAIT); // the 2 s wait
  await step('0/1', 'SUCCEEDED').waitFor(WAIT); // the command, at once
  await step('0/0', 'SUCCEEDED').waitFor(WAIT);
  await step('1/0', 'RUNNING').waitFor(WAIT);
  assert(await page.evaluate(() => window.notReloaded === true), 'the page was reloaded');
  assert((await page.locator('ol.timeline .bar').count()) === 3, 'three bars on the timeline');
});

await check('the waiting step says what it waits for and since when', async () => {
  const card = step('1/0', 'RUNNING');
  await card.getByText('Waiting for approval').waitFor(WAIT);
  assert((await card.locator('.since time').count()) === 1, 'a start time');
  assert((await card.textContent()).includes('Times out'), 'a due time');
  await page.locator('.status-line', { hasText: 'Waiting for approval of "Go"' }).waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'waiting.png'), fullPage: true });
});

await check('"New link" re-issues the approval link: shown to copy, recorded in the history', async () => {
  await page.getByRole('button', { name: 'New link' }).click();
  const field = page.getByLabel('New approval link');
  await field.waitFor(WAIT);
  const link = await field.inputValue();
  assert(link.startsWith(`${url}/approvals/`), `link: ${link}`);
  assert((await page.locator('.message').innerText()).includes('the old link no longer works'), 'message');
  const row = page.locator('table.events tr', { hasText: 'approval link re-issued' });
  await row.waitFor(WAIT);
  assert(!(await row.innerText()).includes(link.split('/').pop()), 'the token is in the history');
});

await check('approving with a comment by clicking finishes the release', async () => {
  await page.getByLabel('Comment').fill('looks good');
  await page.getByRole('button', { name: 'Approve' }).click();
  await step('1/0', 'SUCCEEDED').waitFor(WAIT);
  await page.locator('#release-status[data-status="SUCCEEDED"]').waitFor(WAIT);
});

await check('the history shows the decision and its comment', async () => {
  const row = page.locator('table.events tr', { hasText: 'HumanDecision' });
  await row.waitFor(WAIT);
  assert((await row.innerText()).includes('looks good'), 'the comment');
  await page.locator('table.events tr', { hasText: 'ExecutionFinished' }).waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
});

await check('the list shows the release, and filters by state', async () => {
  await page.getByRole('link', { name: 'Releases', exact: true }).click();
  const row = page.locator(`tr[data-id="${releaseId}"][data-status="SUCCEEDED"]`);
  await row.waitFor(WAIT);
  const text = await row.innerText();
  for (const want of ['Web release', 'staging', 'alice']) assert(text.includes(want), `row lacks ${want}: ${text}`);
  await page.getByLabel('State').selectOption('WAITING');
  await page.getByText('No releases in this state.').waitFor(WAIT);
  await page.getByLabel('State').selectOption('SUCCEEDED');
  await row.waitFor(WAIT);
  await page.getByLabel('State').selectOption('');
  await row.waitFor(WAIT);
});

await check('a release that waits for a human appears live and stands out', async () => {
  await page.locator('.live.on').waitFor(WAIT);
  secondId = await submitByApi(SECOND_PLAN);
  const row = page.locator(`tr.waiting[data-id="${secondId}"]`);
  await row.getByText('Waiting for approval of "Sign"').waitFor(WAIT);
  await page.locator('.banner', { hasText: '1 release waits for a human' }).waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'list.png'), fullPage: true });
});

await check('a viewer sees the release but no buttons', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').fill(viewerToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-name', { hasText: 'victor' }).waitFor(WAIT);
  assert(!(await page.getByRole('link', { name: 'Submit a plan' }).isVisible()), 'no submit link');
  await page.goto(`${url}/#/executions/${secondId}`);
  await step('0/0', 'RUNNING').getByText('Waiting for approval').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no approve button');
  assert((await page.getByText('Abort…').count()) === 0, 'no abort');
});

await check('an operator aborts a running release, then retries it', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-name', { hasText: 'alice' }).waitFor(WAIT);
  await step('0/0', 'RUNNING').waitFor(WAIT);
  // A real button, reached and pressed with the keyboard.
  const open = page.getByRole('button', { name: 'Abort…' });
  assert((await open.getAttribute('aria-expanded')) === 'false', 'the abort form starts closed');
  assert(!(await page.getByLabel('Reason').isVisible()), 'no reason field before opening');
  await open.focus();
  await page.keyboard.press('Enter');
  assert((await open.getAttribute('aria-expanded')) === 'true', 'aria-expanded after opening');
  await page.getByLabel('Reason').waitFor(WAIT);
  await page.getByLabel('Reason').fill('wrong day');
  await page.getByRole('button', { name: 'Abort release' }).click();
  await page.locator('#release-status[data-status="ABORTED"]').waitFor(WAIT);
  await page.getByRole('button', { name: 'Retry' }).click();
  await page.locator('#release-status[data-status="RUNNING"]').waitFor(WAIT);
  await step('0/0', 'RUNNING').waitFor(WAIT);
});

await check('five stages fit side by side at 1280 px', async () => {
  const id = await submitByApi({
    name: 'Five stages',
    stages: ['Build', 'Test', 'Staging', 'Approval', 'Production'].map((name) => ({
      name,
      steps: [{ type: 'Exec', name: `${name.toLowerCase()} step`, command: ['true'] }],
    })),
  });
  await page.setViewportSize({ width: 1280, height: 800 });
  try {
    await page.goto(`${url}/#/executions/${id}`);
    const stages = page.locator('.board .stage');
    await stages.nth(4).waitFor(WAIT);
    assert((await stages.count()) === 5, `${await stages.count()} stages`);
    await page.screenshot({ path: join(shots, 'five-stages-1280.png') });
    const board = await page.locator('.board').boundingBox();
    const fifth = await stages.nth(4).boundingBox();
    const width = await page.evaluate(() => document.documentElement.clientWidth);
    assert(fifth.x >= board.x && fifth.x + fifth.width <= board.x + board.width + 0.5, `the fifth stage (${JSON.stringify(fifth)}) is outside the board (${JSON.stringify(board)})`);
    assert(fifth.x + fifth.width <= width, `the fifth stage ends at ${fifth.x + fifth.width} px, the page is ${width} px wide`);
    const scrolls = await page.$eval('.board', (b) => b.scrollWidth > b.clientWidth);
    assert(!scrolls, 'the board scrolls sideways');
  } finally {
    await page.setViewportSize({ width: 1360, height: 900 });
  }
});

await check('the history is read a page at a time', async () => {
  const id = await submitByApi(LONG_PLAN);
  let total;
  for (let i = 0; i < 100 && total?.status !== 'SUCCEEDED'; i++) {
    if (i) await new Promise((resolve) => setTimeout(resolve, 100));
    total = await (await fetch(`${url}/api/v1/executions/${id}`, { headers: { Authorization: `Bearer ${token}` } })).json();
  }
  assert(total.status === 'SUCCEEDED' && total.events > 50, `${total.status} with ${total.events} events`);
  await page.goto(`${url}/#/executions/${id}`);
  await page.locator('#release-status[data-status="SUCCEEDED"]').waitFor(WAIT);
  await page.locator('table.events tbody tr').nth(49).waitFor(WAIT);
  assert((await page.locator('table.events tbody tr').count()) === 50, 'the first page holds 50 events');
  await page.getByRole('button', { name: 'Load more events' }).click();
  await page.locator(`table.events tr[data-seq="${total.events}"]`).waitFor(WAIT);
  assert((await page.locator('table.events tbody tr').count()) === total.events, 'every event once');
});

await check('no console errors and no unexpected HTTP errors', async () => {
  assert(consoleErrors.length === 0, `console: ${consoleErrors.join('; ')}`);
  assert(unexpectedHttp.length === 0, `HTTP: ${unexpectedHttp.join('; ')}`);
});

await check('no request went anywhere but 127.0.0.1', async () => {
  assert(foreign.length === 0, `requests to: ${foreign.join(', ')}`);
});

await closeChromium(context);
console.log(`# browser test took ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(finish());
