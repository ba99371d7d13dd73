// app.js - the Steppy dashboard (docs/dashboard.md).
//
// One page, three views chosen by the URL's hash: the releases (#/, with
// ?status=), one release (#/executions/ID) and the plan form (#/submit).
// Everything comes from the JSON API under /api/v1 of the server that served
// this file; live views follow its server-sent event streams. The page is
// built with DOM calls only (text is never parsed as HTML) and needs no
// inline script or style, so it runs under the server's strict
// Content-Security-Policy.

const PAGE = 50; // releases and events per request

const main = document.getElementById('main');
const app = {
  session: null, // {identity, roles} once signed in
  view: null, // the current view: {close(), tick()?}
  routed: false, // whether a view was shown yet (focus moves only after)
};

// ---- small helpers ---------------------------------------------------------

// h('a', {href: '#/', class: 'x', onclick: f}, 'text', child...) makes an
// element. Booleans and non-string values are set as properties (hidden,
// disabled); on* keys add listeners; null and false children are skipped.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function announce(message) {
  document.getElementById('announce').textContent = message;
}

const can = (role) =>
  !!app.session && (app.session.roles.includes(role) || app.session.roles.includes('admin'));

function duration(ms) {
  if (ms < 1000) return ms > 0 ? `${Math.round(ms)} ms` : '0s';
  let s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const year = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// A <time> for a moment: the clock today, else the day (and the year if not this one).
function at(ms) {
  if (!ms) return h('span', { class: 'muted' }, '—');
  const d = new Date(ms);
  const now = new Date();
  const fmt =
    d.toDateString() === now.toDateString() ? clock : d.getFullYear() === now.getFullYear() ? day : year;
  return h('time', { datetime: d.toISOString(), title: d.toString() }, fmt.format(d));
}

// A duration that counts up from since (or down to until) every second.
function ticking({ since, until }) {
  const el = h('span', { class: 'ticking' });
  if (since) el.dataset.since = since;
  if (until) el.dataset.until = until;
  tickOne(el);
  return el;
}

function tickOne(el) {
  const now = Date.now();
  if (el.dataset.since) el.textContent = duration(now - Number(el.dataset.since));
  else {
    const left = Number(el.dataset.until) - now;
    el.textContent = left > 0 ? `in ${duration(left)}` : 'now';
  }
}

setInterval(() => {
  document.querySelectorAll('.ticking').forEach(tickOne);
  app.view?.tick?.();
}, 1000);

// The label of a state: a RUNNING release or step that waits for a person's
// decision shows as "waiting", the rest in lower case. The report says which
// steps take decisions (they have "approvals"); the dashboard knows no step
// types.
function stateLabel(state, waiting) {
  if (state === 'RUNNING' && waiting) return 'waiting';
  return state.toLowerCase().replace('_', ' ');
}

function headings(...names) {
  return h('thead', {}, h('tr', {}, names.map((name) => h('th', { scope: 'col' }, name))));
}

function badge(state, waiting) {
  const shown = state === 'RUNNING' && waiting ? 'WAITING' : state;
  return h('span', { class: `badge state-${shown}` }, stateLabel(state, waiting));
}

// Replaces the children of parent that changed, in place: items are
// [{key, sig, build}] in a fixed order; a child is built again only when its
// signature differs, so a comment being typed survives unrelated updates.
const signatures = new WeakMap();
function reconcile(parent, items) {
  items.forEach(({ key, sig, build }, i) => {
    const cur = parent.children[i];
    if (cur && cur.dataset.key === key && signatures.get(cur) === sig) return;
    const el = build();
    el.dataset.key = key;
    signatures.set(el, sig);
    if (cur) cur.replaceWith(el);
    else parent.append(el);
  });
  while (parent.children.length > items.length) parent.lastElementChild.remove();
}

// ---- the API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error, signIn) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.signIn = signIn || null; // how one may sign in here (a 401 of /api/v1/session)
    this.code = error.code || '';
    this.diagnostics = error.diagnostics || [];
  }
}

// Calls the API; returns the parsed answer or throws an ApiError. A 401 on
// anything but the session itself means the session ended: sign in again.
async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/api/v1/session')) showSignIn('Your session ended. Sign in again.');
    throw new ApiError(res.status, (data && data.error) || {}, data && data.signIn);
  }
  return data;
}

// An EventSource that calls onData(parsed JSON) for events of one name and
// shows whether it is connected in indicator (an element, or null).
function follow(path, name, onData, indicator) {
  const es = new EventSource(path);
  es.addEventListener(name, (ev) => onData(JSON.parse(ev.data)));
  if (indicator) {
    es.addEventListener('open', () => {
      indicator.textContent = 'live';
      indicator.className = 'live on';
    });
    es.addEventListener('error', () => {
      indicator.textContent = es.readyState === EventSource.CLOSED ? 'not live' : 'reconnecting…';
      indicator.className = 'live off';
    });
  }
  // A stream refused outright (not just dropped) may mean the session ended.
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED)
      api('GET', '/api/v1/session').catch((e) => e.status === 401 && showSignIn('Your session ended. Sign in again.'));
  });
  return es;
}

// ---- session ---------------------------------------------------------------

function renderWho() {
  const who = document.getElementById('who');
  const nav = document.getElementById('nav');
  who.hidden = nav.hidden = !app.session;
  if (!app.session) return;
  document.getElementById('who-name').textContent = `${app.session.identity} · ${app.session.roles.join(', ')}`;
  document.getElementById('sign-out').hidden = app.session.identity === 'anonymous';
  document.getElementById('nav-submit').hidden = !can('operator');
}

function show(title, ...content) {
  document.title = `${title} · Steppy`;
  main.replaceChildren(...content);
}

// The sign-in form; message says why it shows (an error unless told otherwise).
function showSignIn(message, { error: isError = true } = {}) {
  app.view?.close();
  app.view = null;
  app.session = null;
  renderWho();
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const error = h('p', { class: isError ? 'error' : 'muted', role: 'alert' }, message || '');
  // Single sign-on (OpenID Connect) when the server has it: back here afterwards.
  const oidc = app.signIn && app.signIn.oidc;
  const sso = oidc
    ? h('p', {},
      h('a', {
        id: 'sso', class: 'button primary',
        href: `${oidc.url}?return=${encodeURIComponent('/' + (location.hash || ''))}`,
      }, `Sign in with ${oidc.label}`))
    : null;
  const form = h(
    'form',
    { class: 'panel narrow', 'aria-labelledby': 'sign-in-title', onsubmit: signIn },
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    sso,
    h('p', {}, sso ? 'Or sign in with an API token. ' : 'This server needs an API token. ',
      'Its administrator makes them with ', h('code', {}, 'steppy token'), '.'),
    h('label', { for: 'token' }, 'API token'),
    token,
    h('div', { class: 'actions' }, button),
    error,
  );
  async function signIn(ev) {
    ev.preventDefault();
    button.disabled = true;
    error.textContent = '';
    try {
      app.session = await api('POST', '/api/v1/session', { token: token.value.trim() });
      renderWho();
      announce(`Signed in as ${app.session.identity}`);
      route();
    } catch (e) {
      error.className = 'error';
      error.textContent = e.status === 401 ? 'That token is not known here.' : e.message;
      button.disabled = false;
      token.select();
    }
  }
  show('Sign in', form);
  token.focus();
}

async function signOut() {
  try {
    await api('DELETE', '/api/v1/session');
    await api('GET', '/api/v1/session').catch((e) => { app.signIn = e.signIn || app.signIn; });
  } finally {
    showSignIn('Signed out.', { error: false });
  }
}

// ---- releases ----------------------------------------------------------------

const FILTERS = [
  ['', 'All'],
  ['WAITING', 'Waiting for a human'],
  ['RUNNING', 'Running'],
  ['SUCCEEDED', 'Succeeded'],
  ['FAILED', 'Failed'],
  ['REJECTED', 'Rejected'],
  ['ABORTED', 'Aborted'],
];

function releaseTitle(x) {
  return x.plan || x.planFile || x.id;
}

function listView(status) {
  let rows = [];
  let nextOffset = null;
  let loading = null;
  const filter = h(
    'select',
    { id: 'filter', onchange: () => (location.hash = filter.value ? `#/?status=${filter.value}` : '#/') },
    FILTERS.map(([value, label]) => h('option', { value, selected: value === (status || '') }, label)),
  );
  const indicator = h('span', { class: 'live off' }, 'connecting…');
  const banner = h('p', { class: 'banner', hidden: true });
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'releases' },
    h('caption', { class: 'sr-only' }, 'Releases, newest first'),
    headings('State', 'Release', 'Environment', 'Started by', 'Started', 'Duration'),
    tbody,
  );
  const empty = h('p', { class: 'muted empty', hidden: true }, status ? 'No releases in this state.' : 'No releases yet.');
  const more = h('button', { type: 'button', hidden: true, onclick: () => load(rows.length + PAGE) }, 'Show older releases');
  show(
    'Releases',
    h('div', { class: 'title-row' }, h('h1', { tabindex: '-1' }, 'Releases'), indicator),
    h('div', { class: 'toolbar' }, h('label', { for: 'filter' }, 'State'), filter),
    banner,
    h('div', { class: 'table-wrap' }, table),
    empty,
    more,
  );

  function render() {
    const waiting = rows.filter((x) => x.status === 'RUNNING' && x.waitingFor);
    banner.hidden = status === 'WAITING' || waiting.length === 0;
    banner.replaceChildren(
      `${waiting.length} ${waiting.length === 1 ? 'release waits' : 'releases wait'} for a human. `,
      h('a', { href: '#/?status=WAITING' }, 'Show them'),
    );
    reconcile(
      tbody,
      rows.map((x) => ({ key: x.id, sig: JSON.stringify(x), build: () => row(x) })),
    );
    table.hidden = rows.length === 0;
    empty.hidden = rows.length > 0;
    more.hidden = nextOffset == null;
  }

  function row(x) {
    const waiting = x.status === 'RUNNING' && !!x.waitingFor;
    const done = x.status !== 'RUNNING';
    return h(
      'tr',
      { class: waiting ? 'waiting' : '', 'data-id': x.id, 'data-status': x.status },
      h('td', {}, badge(x.status, waiting)),
      h(
        'td',
        {},
        h('a', { href: `#/executions/${encodeURIComponent(x.id)}`, class: 'release' }, releaseTitle(x)),
        h('div', { class: 'muted small' }, x.id, x.plan && x.planFile ? ` · ${x.planFile}` : ''),
        waiting && h('div', { class: 'waits' }, `Waiting for ${x.waitingFor}`),
      ),
      h('td', {}, x.environment || h('span', { class: 'muted' }, '—')),
      h('td', {}, x.startedBy || h('span', { class: 'muted' }, '—')),
      h('td', {}, at(x.createdMs)),
      h('td', { class: 'num' }, done ? duration(x.updatedMs - x.createdMs) : ticking({ since: x.createdMs })),
    );
  }

  // Fetches the first count releases of the filter. One load at a time;
  // a change while loading loads again after.
  async function load(count = Math.max(PAGE, rows.length)) {
    if (loading) {
      loading.again = count;
      return;
    }
    loading = { again: 0 };
    try {
      const q = new URLSearchParams({ limit: String(Math.min(count, 1000)) });
      if (status) q.set('status', status);
      const data = await api('GET', `/api/v1/executions?${q}`);
      rows = data.executions;
      nextOffset = data.nextOffset ?? null;
      render();
    } catch (e) {
      if (e.status !== 401) announce(`Cannot list releases: ${e.message}`);
    } finally {
      const again = loading.again;
      loading = null;
      if (again) load(again);
    }
  }

  load();
  // The stream sends the latest 50 releases whenever anything changes: shown
  // as they are when no filter or paging asks for something else.
  const es = follow(
    '/api/v1/stream',
    'executions',
    (latest) => {
      if (!status && rows.length <= PAGE && !loading) {
        rows = latest;
        nextOffset = latest.length === PAGE ? PAGE : null;
        render();
      } else load();
    },
    indicator,
  );
  return { close: () => es.close() };
}

// ---- one release ------------------------------------------------------------------

function executionView(id) {
  const base = `/api/v1/executions/${encodeURIComponent(id)}`;
  let report = null;
  let es = null;
  let closed = false;
  const events = { last: 0, more: false, busy: false };
  const drafts = new Map(); // comments being typed, by "stage/step"

  const indicator = h('span', { class: 'live off' }, 'connecting…');
  const heading = h('h1', { tabindex: '-1' }, id);
  const statusLine = h('p', { class: 'status-line' });
  const facts = h('dl', { class: 'facts summary' });
  const actions = h('div', { class: 'actions' });
  const message = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
  const board = h('div', { class: 'board' });
  const timeline = h('ol', { class: 'timeline', 'aria-label': 'Steps on a time axis' });
  const axis = h('div', { class: 'axis', 'aria-hidden': 'true' });
  const eventRows = h('tbody');
  const moreEvents = h('button', { type: 'button', hidden: true, onclick: () => loadEvents() }, 'Load more events');

  show(
    id,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Releases')),
    h('div', { class: 'title-row' }, heading, indicator),
    statusLine,
    facts,
    actions,
    message,
    h('section', { 'aria-labelledby': 'stages-title' }, h('h2', { id: 'stages-title' }, 'Stages'), board),
    h('section', { 'aria-labelledby': 'timeline-title' }, h('h2', { id: 'timeline-title' }, 'Timeline'), axis, timeline),
    h(
      'section',
      { 'aria-labelledby': 'events-title' },
      h('h2', { id: 'events-title' }, 'History'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'events' }, headings('#', 'Time', 'Event', 'Where', 'Details'), eventRows)),
      moreEvents,
    ),
  );

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? 'message error' : 'message';
  }

  // Runs a change (approve, reject, abort, retry) with its buttons disabled.
  async function act(buttons, what, path, body) {
    buttons.forEach((b) => (b.disabled = true));
    say(`${what}…`);
    try {
      const res = await api('POST', `${base}/${path}`, body);
      say(res.result === 'queued' ? `${what}: queued (${res.message})` : `${what}: done.`);
      return true;
    } catch (e) {
      say(`${what} failed: ${e.message}`, true);
      buttons.forEach((b) => (b.disabled = false));
      return false;
    }
  }

  function renderHeader(r) {
    const waiting = r.status === 'RUNNING' && !!r.waitingFor;
    heading.textContent = releaseTitle(r);
    document.title = `${releaseTitle(r)} · Steppy`;
    statusLine.replaceChildren(
      h('span', { id: 'release-status', 'data-status': r.status }, badge(r.status, waiting)),
      waiting ? h('strong', { class: 'waits' }, ` Waiting for ${r.waitingFor}`) : '',
    );
    const end = r.finishedMs || 0;
    facts.replaceChildren(
      ...[
        ['Release', h('code', {}, r.id)],
        ['Environment', r.environment || '—'],
        ['Plan', r.planFile || '—'],
        ['Started by', r.startedBy || '—'],
        ['Started', at(r.startedMs || r.createdMs)],
        end ? ['Finished', at(end)] : null,
        ['Duration', end ? duration(end - (r.startedMs || r.createdMs)) : ticking({ since: r.startedMs || r.createdMs })],
      ]
        .filter(Boolean)
        .map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))),
    );
    reconcile(actions, [{ key: 'actions', sig: `${r.status}`, build: () => buildActions(r) }]);
  }

  function buildActions(r) {
    const box = h('div', { class: 'action-box' });
    if (r.status === 'RUNNING' && can('operator')) {
      const reason = h('input', { id: 'abort-reason', type: 'text', placeholder: 'why (optional)' });
      const go = h('button', { type: 'submit', class: 'danger' }, 'Abort release');
      const form = h(
        'form',
        {
          id: 'abort-form',
          hidden: true,
          onsubmit: (ev) => {
            ev.preventDefault();
            act([go], 'Abort', 'abort', reason.value.trim() ? { reason: reason.value.trim() } : {});
          },
        },
        h('label', { for: 'abort-reason' }, 'Reason'),
        reason,
        go,
      );
      // A real button (keyboard, screen readers) that shows the form.
      const open = h(
        'button',
        {
          type: 'button',
          class: 'abort-open',
          'aria-expanded': 'false',
          'aria-controls': 'abort-form',
          onclick: () => {
            const opening = form.hidden;
            form.hidden = !opening;
            open.setAttribute('aria-expanded', String(opening));
            if (opening) reason.focus();
          },
        },
        'Abort…',
      );
      box.append(h('div', { class: 'abort' }, open, form));
    }
    if ((r.status === 'FAILED' || r.status === 'ABORTED') && can('operator')) {
      const retry = h('button', { type: 'button', class: 'primary', onclick: () => act([retry], 'Retry', 'retry', {}) }, 'Retry');
      box.append(retry);
    }
    return box;
  }

  function renderBoard(r) {
    reconcile(
      board,
      r.stages.map((stage, i) => ({
        key: `stage-${i}`,
        sig: `${stage.name}|${stage.steps.length}`,
        build: () =>
          h(
            'section',
            { class: 'stage', 'aria-label': `Stage ${i + 1}: ${stage.name}` },
            h('header', {}, h('h3', {}, stage.name), h('span', { class: 'stage-state' })),
            h('ol', { class: 'steps' }),
          ),
      })),
    );
    r.stages.forEach((stage, i) => {
      const col = board.children[i];
      col.dataset.state = stage.state;
      col.querySelector('.stage-state').replaceChildren(
        badge(stage.state, false),
        stage.failFast ? h('span', { class: 'muted small' }, ' fail fast') : '',
      );
      reconcile(
        col.querySelector('.steps'),
        stage.steps.map((step, j) => ({
          key: `${i}/${j}`,
          sig: JSON.stringify(step) + app.session.roles.join(),
          build: () => card(i, j, step),
        })),
      );
    });
  }

  // One step: its state, timing, what it waits for, its error, its work.
  function card(i, j, step) {
    const active = ['SCHEDULED', 'RUNNING', 'CANCELLING', 'RETRY_WAIT'].includes(step.state);
    const human = !!step.approvals && step.state === 'RUNNING';
    const facts = [];
    if (step.startedMs) facts.push(['Started', at(step.startedMs)]);
    if (step.endedMs && !active) facts.push(['Took', duration(step.endedMs - step.startedMs)]);
    else if (step.startedMs && active) facts.push(['For', ticking({ since: step.startedMs })]);
    if (step.attempts > 1 || step.state === 'RETRY_WAIT') facts.push(['Attempts', String(step.attempts)]);
    if (active && step.dueMs) {
      const due = step.dueIsDeadline ? 'Times out' : 'Due';
      facts.push([due, h('span', {}, at(step.dueMs), ' (', ticking({ until: step.dueMs }), ')')]);
    }
    const work = step.work || {};
    const progress = step.progress && (step.progress.phase || step.progress.message);
    return h(
      'li',
      { class: `step state-${human ? 'WAITING' : step.state}`, 'data-step': `${i}/${j}`, 'data-state': step.state },
      h('div', { class: 'step-head' }, h('span', { class: 'step-name' }, step.name), badge(step.state, human)),
      h('div', { class: 'step-type' }, step.type),
      step.waitingFor &&
        h('p', { class: 'waits' }, `Waiting for ${step.waitingFor}`,
          step.startedMs ? h('span', { class: 'since' }, ' since ', at(step.startedMs)) : ''),
      facts.length > 0 && h('dl', { class: 'facts' }, facts.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))),
      progress && h('p', { class: 'progress' }, String(progress)),
      step.error && h('p', { class: 'step-error' }, step.error),
      work.logs && h('a', { href: work.logs, target: '_blank', rel: 'noopener noreferrer', class: 'logs' }, 'Build logs'),
      !work.logs && step.workName && h('p', { class: 'muted small' }, step.workName),
      human && can('approver') && decision(i, j, step),
    );
  }

  function decision(i, j, step) {
    const key = `${i}/${j}`;
    const fieldId = `comment-${i}-${j}`;
    const comment = h('textarea', { id: fieldId, rows: 2, oninput: () => drafts.set(key, comment.value) });
    comment.value = drafts.get(key) || '';
    const approve = h('button', { type: 'button', class: 'approve' }, 'Approve');
    const reject = h('button', { type: 'button', class: 'reject' }, 'Reject');
    const decide = async (verb, what) => {
      const body = comment.value.trim() ? { comment: comment.value.trim() } : {};
      if (await act([approve, reject], `${what} "${step.name}"`, `steps/${i}/${j}/${verb}`, body)) drafts.delete(key);
    };
    approve.addEventListener('click', () => decide('approve', 'Approve'));
    reject.addEventListener('click', () => decide('reject', 'Reject'));
    // A link that reached nobody: a fresh one, sent again; the old one stops working.
    const relink = h(
      'button',
      { type: 'button', class: 'quiet', title: 'Send a new approval link to the step\'s channels; the old link stops working' },
      'New link',
    );
    relink.addEventListener('click', async () => {
      relink.disabled = true;
      say(`New link for "${step.name}"…`);
      try {
        const res = await api('POST', `${base}/steps/${i}/${j}/link`, {});
        const field = h('input', { type: 'text', readOnly: true, class: 'new-link', value: res.url, 'aria-label': 'New approval link' });
        message.className = 'message';
        message.replaceChildren(
          `New approval link for "${step.name}", sent to ${res.channels.join(', ')}; the old link no longer works: `,
          field,
        );
        field.select();
      } catch (e) {
        say(`New link for "${step.name}" failed: ${e.message}`, true);
      }
      relink.disabled = false;
    });
    return h(
      'div',
      { class: 'decision' },
      h('label', { for: fieldId }, 'Comment'),
      comment,
      h('div', { class: 'actions' }, approve, reject, relink),
    );
  }

  function renderTimeline(r) {
    const t0 = r.startedMs || r.createdMs;
    const t1 = Math.max(r.finishedMs || Date.now(), t0 + 1000);
    const span = t1 - t0;
    const label = (ms) => (span < 10000 ? `${(ms / 1000).toFixed(1)}s` : duration(ms));
    axis.replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tick = h('span', {}, f === 0 ? '0s' : `+${label(span * f)}`);
      tick.style.left = `${f * 100}%`;
      return tick;
    }));
    const items = [];
    r.stages.forEach((stage, i) =>
      stage.steps.forEach((step, j) => {
        const track = h('div', { class: 'track' });
        const waiting = !!step.approvals && step.state === 'RUNNING';
        let text = 'not started';
        if (step.startedMs) {
          const end = step.endedMs || r.finishedMs || Date.now();
          const bar = h('div', { class: `bar state-${waiting ? 'WAITING' : step.state}` });
          // CSSOM, not a style attribute: the CSP allows no inline styles.
          bar.style.left = `${((step.startedMs - t0) / span) * 100}%`;
          bar.style.width = `${Math.max(((end - step.startedMs) / span) * 100, 0.6)}%`;
          const took = duration(end - step.startedMs);
          text = `${stateLabel(step.state, waiting)}, ${took} from +${duration(step.startedMs - t0)}`;
          bar.title = `${step.name}: ${text}`;
          track.append(bar);
        }
        items.push(
          h(
            'li',
            { 'data-step': `${i}/${j}` },
            h('span', { class: 'label' }, h('span', { class: 'muted' }, `${stage.name} / `), step.name),
            track,
            h('span', { class: 'sr-only' }, text),
          ),
        );
      }),
    );
    timeline.replaceChildren(...items);
  }

  function eventRow(e) {
    const where = [e.stageName, e.stepName].filter(Boolean).join(' / ') + (e.attempt ? ` (attempt ${e.attempt})` : '');
    let summary;
    if (e.type === 'ExecutionStarted') summary = `by ${e.data.startedBy || 'someone'} from ${e.data.planFile || 'a plan'}`;
    else summary = Object.keys(e.data || {}).length ? JSON.stringify(e.data) : '';
    const full = JSON.stringify(e.data, null, 2);
    return h(
      'tr',
      { 'data-seq': String(e.seq) },
      h('td', { class: 'num' }, String(e.seq)),
      h('td', {}, at(e.timeMs)),
      h('td', {}, h('code', {}, e.type)),
      h('td', {}, where),
      h(
        'td',
        { class: 'details' },
        summary.length > 120 || e.type === 'ExecutionStarted'
          ? h('details', {}, h('summary', {}, summary.length > 120 ? `${summary.slice(0, 117)}…` : summary), h('pre', {}, full))
          : summary,
      ),
    );
  }

  // Loads the next page of the history (after the last shown event).
  async function loadEvents() {
    if (events.busy) return;
    events.busy = true;
    try {
      const data = await api('GET', `${base}/events?after=${events.last}&limit=${PAGE}`);
      if (closed) return;
      eventRows.append(...data.events.map(eventRow));
      if (data.events.length) events.last = data.events[data.events.length - 1].seq;
      events.more = data.nextAfter != null;
      moreEvents.hidden = !events.more;
    } catch (e) {
      say(`Cannot read the history: ${e.message}`, true);
    } finally {
      events.busy = false;
    }
    // Reports that came while loading may have told of newer events.
    if (!closed && !events.more && report && report.events > events.last) loadEvents();
  }

  // What changed since the last report, for the live region.
  function changes(before, after) {
    const out = [];
    after.stages.forEach((stage, i) =>
      stage.steps.forEach((step, j) => {
        const was = before.stages[i].steps[j].state;
        if (was !== step.state) out.push(`${step.name}: ${stateLabel(step.state, !!step.approvals)}`);
      }),
    );
    if (before.status !== after.status) out.push(`Release ${after.status.toLowerCase()}`);
    return out.join('. ');
  }

  function render(r) {
    if (closed) return;
    const before = report;
    report = r;
    renderHeader(r);
    renderBoard(r);
    renderTimeline(r);
    if (before) {
      const said = changes(before, r);
      if (said) announce(said);
    }
    // Caught up with the history: follow it as it grows.
    if (!events.more && r.events > events.last) loadEvents();
  }

  (async () => {
    try {
      const r = await api('GET', base);
      if (closed) return;
      render(r);
      es = follow(`${base}/stream`, 'execution', render, indicator);
      // Later messages carry only the new events: read the report again, one
      // request at a time (what changes meanwhile comes with the next one).
      let refreshing = false;
      let again = false;
      const refresh = async () => {
        if (refreshing) {
          again = true;
          return;
        }
        refreshing = true;
        try {
          render(await api('GET', base));
        } catch {
          // the indicator shows a broken stream; the next message tries again
        } finally {
          refreshing = false;
        }
        if (again && !closed) {
          again = false;
          refresh();
        }
      };
      es.addEventListener('events', refresh);
    } catch (e) {
      if (e.status === 401) return;
      show(
        'Not found',
        h('h1', { tabindex: '-1' }, e.status === 404 ? 'No such release' : 'Cannot show the release'),
        h('p', {}, e.message),
        h('p', {}, h('a', { href: '#/' }, '← Releases')),
      );
    }
  })();

  return {
    close: () => {
      closed = true;
      es?.close();
    },
    tick: () => {
      if (report && report.status === 'RUNNING') renderTimeline(report);
    },
  };
}

// ---- submitting a plan -------------------------------------------------------------

// "NAME=VALUE" lines to an object; blank lines and # comments are skipped.
function parseVariables(text) {
  const variables = {};
  const problems = [];
  text.split('\n').forEach((raw, n) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) problems.push(`Variables, line ${n + 1}: write NAME=VALUE`);
    else variables[line.slice(0, eq).trim()] = line.slice(eq + 1);
  });
  return { variables, problems };
}

function submitView() {
  const text = h('textarea', { id: 'plan-text', rows: 18, spellcheck: 'false', 'aria-describedby': 'plan-help' });
  const file = h('input', { id: 'plan-file', type: 'file', accept: '.json,.jsonc,.yaml,.yml,text/plain' });
  const label = h('input', { id: 'plan-name', type: 'text', placeholder: 'e.g. release.yaml', autocomplete: 'off' });
  const vars = h('textarea', {
    id: 'plan-vars', rows: 3, spellcheck: 'false', placeholder: 'VERSION=1.4.2', 'aria-describedby': 'vars-help',
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Start the release');
  const problems = h('div', { id: 'diagnostics', class: 'diagnostics', tabindex: '-1', 'aria-live': 'polite', hidden: true });

  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    text.value = await f.text();
    if (!label.value) label.value = f.name;
    clearProblems();
  });
  text.addEventListener('input', () => text.removeAttribute('aria-invalid'));

  function clearProblems() {
    problems.hidden = true;
    problems.replaceChildren();
    text.removeAttribute('aria-invalid');
  }

  // Selects line n (1-based) of the plan text.
  function goToLine(n, col) {
    const lines = text.value.split('\n');
    const start = lines.slice(0, n - 1).reduce((sum, l) => sum + l.length + 1, 0);
    const lineText = lines[n - 1] || '';
    text.focus();
    text.setSelectionRange(start + Math.min(Math.max(col - 1, 0), lineText.length), start + lineText.length);
    const lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 20;
    text.scrollTop = Math.max(0, (n - 3) * lineHeight);
  }

  function showProblems(title, list) {
    text.setAttribute('aria-invalid', 'true');
    const lines = text.value.split('\n');
    problems.replaceChildren(
      h('h2', {}, title),
      h(
        'ol',
        {},
        list.map((d) => {
          if (typeof d === 'string') return h('li', {}, h('span', { class: 'msg' }, d));
          const src = d.line > 0 ? lines[d.line - 1] : undefined;
          const loc = h('button', { type: 'button', class: 'loc', title: 'Show the line in the plan' }, `${d.line}:${d.column}`);
          loc.addEventListener('click', () => goToLine(d.line, d.column));
          // The line itself, and a caret under the column.
          const excerpt = src !== undefined && h(
            'pre',
            { class: 'src' },
            h('span', { class: 'ln' }, String(d.line).padStart(4)), ' ', h('mark', {}, src || ' '), '\n',
            ' '.repeat(5 + Math.max(d.column - 1, 0)), h('span', { class: 'caret' }, '^'),
          );
          return h(
            'li',
            { 'data-line': String(d.line) },
            d.line > 0 && loc,
            h('span', { class: 'msg' }, d.message),
            d.pointer && h('code', { class: 'ptr' }, d.pointer),
            excerpt,
          );
        }),
      ),
    );
    problems.hidden = false;
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    clearProblems();
    if (!text.value.trim()) {
      showProblems('Nothing to submit', ['Paste a plan or choose a file.']);
      return;
    }
    const { variables, problems: varProblems } = parseVariables(vars.value);
    if (varProblems.length) {
      showProblems('The variables need fixing', varProblems);
      return;
    }
    const body = { plan: text.value, variables };
    if (label.value.trim()) body.name = label.value.trim();
    submit.disabled = true;
    try {
      const res = await api('POST', '/api/v1/executions', body);
      announce(`Release ${res.id} started`);
      location.hash = `#/executions/${encodeURIComponent(res.id)}`;
    } catch (e) {
      if (e.code === 'invalid-plan' && e.diagnostics.length) {
        const n = e.diagnostics.length;
        showProblems(`The plan has ${n} ${n === 1 ? 'problem' : 'problems'}`, e.diagnostics);
      } else if (e.status !== 401) {
        showProblems('The server refused the plan', [e.message]);
      }
      announce('The plan was not started');
    } finally {
      submit.disabled = false;
    }
  }

  show(
    'Submit a plan',
    h('h1', { tabindex: '-1' }, 'Submit a plan'),
    h(
      'form',
      { class: 'submit', onsubmit: onSubmit, novalidate: '' },
      h(
        'div',
        { class: 'editor-row' },
        h(
          'div',
          { class: 'editor' },
          h('label', { for: 'plan-text' }, 'Plan (JSON or YAML)'),
          text,
          h('p', { id: 'plan-help', class: 'muted small' },
            'Paste the plan, or choose its file below. Problems are listed beside it with their line and column.'),
        ),
        problems,
      ),
      h('div', { class: 'field' }, h('label', { for: 'plan-file' }, 'Or upload a file'), file),
      h('div', { class: 'field' }, h('label', { for: 'plan-name' }, 'Label (optional)'), label),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'plan-vars' }, 'Variables'),
        vars,
        h('p', { id: 'vars-help', class: 'muted small' }, 'One NAME=VALUE a line.'),
      ),
      h('div', { class: 'actions' }, submit),
    ),
  );
  return { close() {} };
}

// ---- routing -------------------------------------------------------------------------

function route() {
  app.view?.close();
  app.view = null;
  if (!app.session) return showSignIn();
  const hash = location.hash || '#/';
  const [path, query] = hash.slice(1).split('?');
  const m = path.match(/^\/executions\/([^/]+)$/);
  let current = 'list';
  if (m) {
    current = '';
    app.view = executionView(decodeURIComponent(m[1]));
  } else if (path === '/submit' && can('operator')) {
    current = 'submit';
    app.view = submitView();
  } else {
    const status = new URLSearchParams(query || '').get('status');
    app.view = listView(FILTERS.some(([v]) => v && v === status) ? status : null);
  }
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (a.dataset.nav === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (app.routed) main.querySelector('h1')?.focus();
  app.routed = true;
}

async function start() {
  document.getElementById('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  try {
    app.session = await api('GET', '/api/v1/session');
  } catch (e) {
    app.signIn = e.signIn;
    if (e.status !== 401) {
      show('Unavailable', h('h1', {}, 'The server does not answer'), h('p', {}, e.message));
      return;
    }
  }
  renderWho();
  route();
}

start();
