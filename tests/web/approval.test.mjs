// approval.test.mjs - approval links in a real browser (Debian's Chromium,
// driven by playwright-core), opened exactly as a channel delivered them.
// Started by tests/web/run.sh, which passes:
//
//   STEPPY  the binary under test
//   SHOTS   where screenshots go (build/web)
//
// The test runs its own world: a webhook sink on 127.0.0.1 (the channel
// "hook" posts each approval request there), and a `steppy serve` with four
// tokens (alice: viewer, operator, approver; bob and carol: viewer, approver;
// victor: viewer only) whose configuration names the sink. Releases are
// started through the API as alice; every link is read from the message
// the sink received, never from the store. Then, in Chromium: sign in on
// the page, approve, reject, try a second decision, for Human steps with
// and without approvers, with minApprovals and with allowSelfApproval off;
// and through the API, check that each release moved (approved: the next
// stage ran; rejected: the release is REJECTED).
//
// Prints one line per check and "# N passed, M failed" (what run.sh and
// tests/run.sh count). After a failure the rest are reported as not run.
import { assert, check, closeChromium, finish, launchChromium, sleep } from './lib.mjs';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const steppy = process.env.STEPPY;
const shots = process.env.SHOTS || 'build/web';
const WAIT = { timeout: 15000 };



// ---- the webhook sink: what the channel delivered ----------------------------------

const delivered = []; // parsed bodies, in order
const sink = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    try {
      delivered.push(JSON.parse(body));
    } catch {
      delivered.push({ unparsable: body });
    }
    res.writeHead(204).end();
  });
});
await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkUrl = `http://127.0.0.1:${sink.address().port}/hook`;

// The approval link the channel delivered for a step of a release.
async function deliveredLink(id, stepName) {
  for (let i = 0; i < 150; i++) {
    const m = delivered.find((d) => d.kind === 'approval' && d.executionId === id && d.step === stepName);
    if (m) return m.approvalUrl;
    await sleep(100);
  }
  throw new Error(`no approval request for "${stepName}" of ${id} reached the webhook (got ${JSON.stringify(delivered)})`);
}

// ---- the server ---------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'steppy-approval-'));
const tokens = {};
const entries = [];
for (const [name, roles] of [
  ['alice', ['viewer', 'operator', 'approver']],
  ['bob', ['viewer', 'approver']],
  ['carol', ['viewer', 'approver']],
  ['victor', ['viewer']],
]) {
  const out = execFileSync(steppy, ['token', name, ...roles], { encoding: 'utf8' });
  tokens[name] = out.match(/^token: (\S+)/m)[1];
  entries.push(out.slice(out.indexOf('  - name:')));
}
writeFileSync(
  join(dir, 'steppy.yaml'),
  `exec:\n  enabled: true\ntokens:\n${entries.join('')}channels:\n  hook:\n    type: webhook\n    url: ${sinkUrl}\n`,
);
const server = spawn(steppy, ['serve', '--listen', '127.0.0.1:0', '--db', join(dir, 'store.db'), '--config', join(dir, 'steppy.yaml')], {
  cwd: dir,
  stdio: ['ignore', 'pipe', 'pipe'],
});
let serverOut = '';
let serverErr = '';
server.stdout.on('data', (c) => (serverOut += c));
server.stderr.on('data', (c) => (serverErr += c));
let url = '';
for (let i = 0; i < 100 && !url; i++) {
  url = (serverOut.match(/listening on (http:\S+)/) || [])[1] || '';
  if (!url) await sleep(100);
}

async function api(method, path, who, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${tokens[who]}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

// Starts a release of one Human step named name (with the given fields) and
// a second stage with a command; returns its id.
async function start(name, fields) {
  const plan = {
    name: `Approval ${name}`,
    stages: [
      { name: 'Gate', steps: [{ type: 'Human', name, message: `Ship it (${name})?`, channels: ['hook'], ...fields }] },
      { name: 'After', steps: [{ type: 'Exec', name: 'deploy', command: ['true'] }] },
    ],
  };
  const r = await api('POST', '/api/v1/executions', 'alice', { plan });
  assert(r.status === 201, `submit answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

async function waitRelease(id, status) {
  let r;
  for (let i = 0; i < 150; i++) {
    r = await api('GET', `/api/v1/executions/${id}`, 'victor');
    if (r.body.status === status) return r.body;
    await sleep(100);
  }
  throw new Error(`release ${id} is ${r.body.status}, not ${status}`);
}

// ---- the browser ----------------------------------------------------------------

mkdirSync(shots, { recursive: true });
const started = Date.now();
let context;
try {
  assert(url, `the server did not start: ${serverErr}`);
  context = await launchChromium({ width: 1024, height: 800 });
} catch (e) {
  console.log(`not ok 1 - the server and Chromium start\n#   ${e.message}`);
  console.log('# 0 passed, 1 failed');
  server.kill('SIGTERM');
  sink.close();
  process.exit(1);
}

const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
const foreign = [];
page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
context.on('request', (req) => {
  const u = new URL(req.url());
  if (u.hostname !== '127.0.0.1') foreign.push(req.url());
});

const state = () => page.locator('#state');

async function signIn(who) {
  await page.getByLabel('token').fill(tokens[who]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who', { hasText: who }).waitFor(WAIT);
}

// A second tab with the page as it is now: a decision posted from it later
// is a second decision on a page that was left open.
async function staleTab(link) {
  const tab = await context.newPage();
  await tab.goto(link);
  return tab;
}

let openId, openLink;
await check('a step without approvers: the link from the webhook shows the request', async () => {
  openId = await start('Open', {});
  openLink = await deliveredLink(openId, 'Open');
  assert(openLink.startsWith(`${url}/approvals/`), `link ${openLink}`);
  const res = await page.goto(openLink);
  assert(res.status() === 200, `GET answered ${res.status()}`);
  const policy = res.headers()['referrer-policy'];
  assert(policy === 'same-origin' || policy === 'no-referrer', `Referrer-Policy: ${policy}`);
  await page.getByText('Ship it (Open)?').waitFor(WAIT);
  await page.locator('#needed', { hasText: '0 of 1 approval given' }).waitFor(WAIT);
  await page.screenshot({ path: join(shots, 'approval-open.png'), fullPage: true });
});

let stale;
await check('anyone with the link approves with one click; the next stage runs', async () => {
  stale = await staleTab(openLink);
  await page.getByLabel('Comment').fill('from the browser');
  const [posted] = await Promise.all([
    page.waitForResponse((res) => res.request().method() === 'POST', WAIT),
    page.getByRole('button', { name: 'Approve' }).click(),
  ]);
  if (posted.status() !== 303) throw new Error(`the decision was answered ${posted.status()}: ${await posted.text()}`);
  await state().getByText('This step has been approved.').waitFor(WAIT);
  const r = await waitRelease(openId, 'SUCCEEDED');
  assert(r.stages[1].steps[0].state === 'SUCCEEDED', `the next stage: ${JSON.stringify(r.stages[1])}`);
  const ev = await api('GET', `/api/v1/executions/${openId}/events?limit=1000`, 'victor');
  const d = ev.body.events.filter((e) => e.type === 'HumanDecision').map((e) => e.data);
  assert(d.length === 1 && d[0].decision === 'approve' && d[0].via === 'link' && d[0].comment === 'from the browser', JSON.stringify(d));
  assert(d[0].by === undefined, `an anonymous decision names nobody: ${d[0].by}`);
});

await check('a second decision from a page left open is refused and says why', async () => {
  await stale.getByRole('button', { name: 'Reject' }).click();
  await stale.getByText('This step has been approved.').waitFor(WAIT);
  await stale.getByRole('heading', { name: 'Already decided' }).waitFor(WAIT);
  await stale.close();
  const r = await waitRelease(openId, 'SUCCEEDED');
  assert(r.status === 'SUCCEEDED', r.status);
});

let listedId, listedLink;
await check('a step with approvers asks to sign in; a viewer-only approver is told the role is missing', async () => {
  listedId = await start('Listed', { approvers: ['bob', 'victor'] });
  listedLink = await deliveredLink(listedId, 'Listed');
  await page.goto(listedLink);
  await state().getByText('sign in').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no approve button before signing in');
  await signIn('victor');
  await page.getByText('this needs the approver role').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no approve button for a viewer');
  await page.screenshot({ path: join(shots, 'approval-viewer.png'), fullPage: true });
});

await check('someone not listed is told so', async () => {
  await signIn('carol');
  await page.getByText('carol is not among the approvers').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Reject' }).count()) === 0, 'no reject button');
});

await check('a listed approver signs in and rejects; the release is REJECTED', async () => {
  await signIn('bob');
  stale = await staleTab(listedLink);
  await page.getByLabel('Comment').fill('not today');
  await page.getByRole('button', { name: 'Reject' }).click();
  await state().getByText('This step has been rejected.').waitFor(WAIT);
  const r = await waitRelease(listedId, 'REJECTED');
  assert(r.stages[1].steps[0].state === 'PENDING', `the next stage ran: ${JSON.stringify(r.stages[1])}`);
  const ev = await api('GET', `/api/v1/executions/${listedId}/events?limit=1000`, 'victor');
  const d = ev.body.events.filter((e) => e.type === 'HumanDecision').map((e) => e.data);
  assert(d.length === 1 && d[0].by === 'bob' && d[0].decision === 'reject' && d[0].comment === 'not today', JSON.stringify(d));
});

await check('a second decision on the rejected step is refused', async () => {
  await stale.getByRole('button', { name: 'Approve' }).click();
  await stale.getByText('This step has been rejected.').waitFor(WAIT);
  await stale.close();
  const r = await waitRelease(listedId, 'REJECTED');
  assert(r.status === 'REJECTED', r.status);
});

let twoId, twoLink;
await check('minApprovals 2 without approvers: the page needs sign-in and counts', async () => {
  await page.context().clearCookies();
  twoId = await start('Two', { minApprovals: 2 });
  twoLink = await deliveredLink(twoId, 'Two');
  await page.goto(twoLink);
  await page.locator('#needed', { hasText: '0 of 2 approvals given' }).waitFor(WAIT);
  await state().getByText('sign in').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no anonymous approval');
});

await check('one approval is recorded; the same person cannot give the second', async () => {
  await signIn('carol');
  stale = await staleTab(twoLink);
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.locator('#needed', { hasText: '1 of 2 approvals given (carol)' }).waitFor(WAIT);
  await page.getByText('carol has already approved').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no second approve button');
  await stale.getByRole('button', { name: 'Approve' }).click();
  await stale.getByText('carol has already approved').waitFor(WAIT);
  await stale.close();
  const r = await api('GET', `/api/v1/executions/${twoId}`, 'victor');
  assert(r.body.status === 'RUNNING' && r.body.stages[0].steps[0].approvals.by.join() === 'carol', JSON.stringify(r.body.stages[0]));
});

await check('a second person gives the second approval; the next stage runs', async () => {
  await signIn('bob');
  await page.getByRole('button', { name: 'Approve' }).click();
  await state().getByText('This step has been approved.').waitFor(WAIT);
  const r = await waitRelease(twoId, 'SUCCEEDED');
  assert(r.stages[1].steps[0].state === 'SUCCEEDED', JSON.stringify(r.stages[1]));
});

let selfId, selfLink;
await check('allowSelfApproval false: the page names who is excluded, and the starter may only reject', async () => {
  await page.context().clearCookies();
  selfId = await start('Self', { allowSelfApproval: false });
  selfLink = await deliveredLink(selfId, 'Self');
  await page.goto(selfLink);
  await page.locator('#excluded', { hasText: 'alice' }).waitFor(WAIT);
  await state().getByText('sign in').waitFor(WAIT);
  await signIn('alice');
  await page.getByText('cannot approve it').waitFor(WAIT);
  assert((await page.getByRole('button', { name: 'Approve' }).count()) === 0, 'no approve button for the starter');
  assert((await page.getByRole('button', { name: 'Reject' }).count()) === 1, 'the starter may reject');
  await page.screenshot({ path: join(shots, 'approval-self.png'), fullPage: true });
});

await check('someone else approves; the next stage runs', async () => {
  await signIn('bob');
  await page.getByRole('button', { name: 'Approve' }).click();
  await state().getByText('This step has been approved.').waitFor(WAIT);
  const r = await waitRelease(selfId, 'SUCCEEDED');
  assert(r.stages[1].steps[0].state === 'SUCCEEDED', JSON.stringify(r.stages[1]));
  const ev = await api('GET', `/api/v1/executions/${selfId}/events?limit=1000`, 'victor');
  const d = ev.body.events.filter((e) => e.type === 'HumanDecision').map((e) => e.data.by);
  assert(d.join() === 'bob', JSON.stringify(d));
});

await check('no page errors, and no request went anywhere but 127.0.0.1', async () => {
  assert(consoleErrors.length === 0, consoleErrors.join('; '));
  assert(foreign.length === 0, `requests to: ${foreign.join(', ')}`);
});

await closeChromium(context);
server.kill('SIGTERM');
await new Promise((resolve) => (server.exitCode !== null ? resolve() : server.on('exit', resolve)));
sink.close();
await check('the server stopped cleanly, without sanitizer reports', async () => {
  assert(server.exitCode === 0, `exit ${server.exitCode}, signal ${server.signalCode}: ${serverErr}`);
  assert(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(serverErr), serverErr);
});
rmSync(dir, { recursive: true, force: true });
console.log(`# approval test took ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(finish());
