// oidc.test.mjs - signing in with OpenID Connect and personal approval links
// in a real browser (Debian's Chromium, driven by playwright-core), against a
// real `steppy serve` and the tests' own OpenID Connect provider
// (tests/oidc/fake_oidc.py). Started by tests/web/run.sh, which passes:
//
//   STEPPY_URL   the server (configured with oidc, a people directory and an
//                email channel "mail"), http://127.0.0.1:PORT
//   OPS_TOKEN    a token of "ops" (operator, viewer): starts releases
//   SERVER_LOG   the server's output (where links of steps without channels go)
//   MAIL_DIR     where the fake SMTP receiver writes messages (N.eml)
//   SHOTS        where screenshots go (build/web)
//
// The directory: bob and carol are release-managers; alice is an approver.
// Prints one line per check and "# N passed, M failed".
import { assert, check, closeChromium, finish, launchChromium, sleep } from './lib.mjs';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const url = process.env.STEPPY_URL;
const opsToken = process.env.OPS_TOKEN;
const serverLog = process.env.SERVER_LOG;
const mailDir = process.env.MAIL_DIR;
const shots = process.env.SHOTS || 'build/web';
const WAIT = { timeout: 15000 };


async function apiGet(path) {
  const res = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${opsToken}` } });
  return res.json();
}
async function submit(plan) {
  const res = await fetch(`${url}/api/v1/executions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${opsToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ plan }),
  });
  assert(res.status === 201, `submitting answered ${res.status}`);
  return (await res.json()).id;
}
// Polls until pred(release) holds (15 s at most); returns the release.
async function until(id, pred, what) {
  let r;
  for (let i = 0; i < 150; i++) {
    r = await apiGet(`/api/v1/executions/${id}`);
    if (pred(r)) return r;
    await sleep(100);
  }
  throw new Error(`${what}: ${JSON.stringify(r).slice(0, 400)}`);
}
// The general link of a step without channels: the server prints it.
async function linkInLog(stepName) {
  for (let i = 0; i < 150; i++) {
    const m = [...readFileSync(serverLog, 'utf8').matchAll(new RegExp(`step "${stepName}": (http\\S+)`, 'g'))];
    if (m.length) return m[m.length - 1][1];
    await sleep(100);
  }
  throw new Error(`no link for "${stepName}" in the server log`);
}
// The personal link mailed to addr for release id (quoted-printable decoded).
async function personalLink(addr, id) {
  for (let i = 0; i < 150; i++) {
    for (const f of readdirSync(mailDir).filter((n) => n.endsWith('.eml'))) {
      const raw = readFileSync(join(mailDir, f), 'utf8');
      if (!raw.toLowerCase().includes(`x-rcpt: <${addr.toLowerCase()}>`)) continue;
      const text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      if (!text.includes(id)) continue;
      const m = text.match(/(http:\/\/\S+\/approvals\/personal\/[0-9a-f]{32})/);
      if (m) return m[1];
    }
    await sleep(100);
  }
  throw new Error(`no personal link for ${addr}`);
}

mkdirSync(shots, { recursive: true });
let context;
try {
  context = await launchChromium({ width: 1280, height: 900 });
} catch (e) {
  console.log(`not ok 1 - Chromium starts\n#   ${e.message}`);
  console.log('# 0 passed, 1 failed');
  process.exit(1);
}
const page = context.pages()[0] || (await context.newPage());
const foreign = [];
const pageErrors = [];
context.on('request', (req) => {
  const u = new URL(req.url());
  if (u.protocol !== 'data:' && u.hostname !== '127.0.0.1') foreign.push(req.url());
});
page.on('pageerror', (err) => pageErrors.push(err.message));

// Signs in at the provider's page as user (the page the sign-in link leads to).
async function atProvider(user) {
  await page.getByRole('heading', { name: 'Fake provider sign-in' }).waitFor(WAIT);
  await page.locator('#user').fill(user);
  await page.locator('#login').click();
}

let gated;
await check('an approval link of a step with group approvers: sign in through the provider, approve', async () => {
  gated = await submit({
    name: 'web oidc',
    stages: [{ name: 'Go', steps: [{ type: 'Human', name: 'Gate', message: 'Ship the web release?',
      approvers: ['group:release-managers'] }] }],
  });
  const link = await linkInLog('Gate');
  await page.goto(link);
  await page.getByText('may decide it: say who you are').waitFor(WAIT);
  await page.getByRole('link', { name: 'Sign in with Fake IdP' }).click();
  await atProvider('bob');
  // back on the approval page, signed in
  await page.waitForURL(link, WAIT);
  await page.getByText('signed in as bob').waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'oidc-approval-signed-in.png') });
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.getByText('This step has been approved.').waitFor(WAIT);
  const r = await until(gated, (x) => x.status === 'SUCCEEDED', 'the release did not finish');
  assert(r.stages[0].steps[0].approvals.by.includes('bob'), `approvals: ${JSON.stringify(r.stages[0].steps[0].approvals)}`);
});

await check('someone outside the group signs in but may not decide', async () => {
  const id = await submit({
    name: 'web oidc 2',
    stages: [{ name: 'Go', steps: [{ type: 'Human', name: 'Gate two', message: 'Again?',
      approvers: ['group:release-managers'] }] }],
  });
  const link = await linkInLog('Gate two');
  await context.clearCookies();
  await page.goto(link);
  await page.getByRole('link', { name: 'Sign in with Fake IdP' }).click();
  await atProvider('alice');
  await page.waitForURL(link, WAIT);
  await page.getByText('signed in as alice').waitFor(WAIT);
  await page.getByText('alice is not among the approvers of').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no approve button for alice');
  const r = await apiGet(`/api/v1/executions/${id}`);
  assert(r.status === 'RUNNING', `status ${r.status}`);
});

await check('a personal link from the mail decides once, in its person\'s name, without signing in', async () => {
  await context.clearCookies();
  const id = await submit({
    name: 'web personal',
    stages: [{ name: 'Go', steps: [{ type: 'Human', name: 'Personal gate', message: 'Personal go?',
      approvers: ['alice', 'group:release-managers'], minApprovals: 2, channels: ['mail'] }] }],
  });
  const aliceLink = await personalLink('alice@example.com', id);
  const carolLink = await personalLink('carol@example.com', id);
  await page.goto(aliceLink);
  await page.getByText('Your personal link, alice').waitFor(WAIT);
  await page.getByLabel('Comment').fill('from the mail');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.getByText('This personal link has been used').waitFor(WAIT);
  let r = await until(id, (x) => x.stages[0].steps[0].approvals.by.length === 1, 'no approval recorded');
  assert(r.stages[0].steps[0].approvals.by[0] === 'alice', JSON.stringify(r.stages[0].steps[0].approvals));
  assert(r.status === 'RUNNING', 'one of two approvals');
  await page.goto(carolLink);
  await page.getByText('Your personal link, carol').waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'oidc-personal-link.png') });
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.getByText('This personal link has been used').waitFor(WAIT);
  r = await until(id, (x) => x.status === 'SUCCEEDED', 'the release did not finish');
  // the used link, opened again, cannot decide
  await page.goto(aliceLink);
  await page.getByText('This personal link has been used').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no button on a used link');
});

await check('the dashboard signs in through the provider and comes back to the release', async () => {
  await context.clearCookies();
  await page.goto(`${url}/#/executions/${gated}`);
  await page.getByRole('link', { name: 'Sign in with Fake IdP' }).click();
  await atProvider('carol');
  await page.locator('#who-name', { hasText: 'carol' }).waitFor(WAIT);
  await page.locator('#release-status[data-status="SUCCEEDED"]').waitFor(WAIT);
  assert(new URL(page.url()).hash === `#/executions/${gated}`, `at ${page.url()}`);
  await page.screenshot({ path: join(shots, 'oidc-dashboard.png') });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('link', { name: 'Sign in with Fake IdP' }).waitFor(WAIT);
});

await check('no page errors; no request went anywhere but 127.0.0.1', async () => {
  assert(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
  assert(foreign.length === 0, `requests to: ${foreign.join(', ')}`);
});

await closeChromium(context);
process.exit(finish());
