// histguard's web console: the overview of all monitors and one monitor's page, drawn with
// JSROOT from the daemon's JSON API (/api/v1/..., docs/console.md). Pages are addressed by the
// URL's fragment, so Grafana and alerts can link to them:
//   #                                  the overview
//   #filter=TEXT                       the overview, filtered (e.g. a subsystem: pixel/)
//   #monitor=NAME[&run=R][&ls=L]       a monitor, at a lumisection (default: its last verdict)
//   #monitor=NAME&at=MS                the lumisection received nearest unix time MS (ms)
// Bins are named as ROOT numbers them: from 1, (ix,iy) in 2D; the API's indices are 0-based.
'use strict';

const REFRESH_MS = 5000;
const TOKEN_KEY = 'histguard-token';

// What the page shows, for people and for the browser test.
const state = {
  page: 'overview',
  monitors: [],
  monitor: null,   // MonitorInfo of the shown monitor
  run: null,
  ls: null,
  inspection: null,
  history: null,
  drawn: null,     // {dims, nbins, nx, ny, markedRootBins: [...]} once the histogram is drawn
  ready: false,
};
// The JSROOT painters of the shown histogram's pads, by pad: observed, expected, pulls.
const painters = {};
window.histguardConsole = { state, painters };

// ---- the API ----

async function api(path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const init = { headers };
  if (body !== undefined) {
    init.method = 'POST';
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch('/api/v1/' + path, init);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    let why = (data && data.error) || r.statusText;
    if (r.status === 401) why += ' (this daemon needs a token: use the token button)';
    if (r.status === 403) why += ' (your token\'s role does not allow this)';
    const err = new Error(why);
    err.status = r.status;
    throw err;
  }
  return data;
}

const q = (s) => encodeURIComponent(s);
const quality = (v) => (v && v.quality ? v.quality.replace(/^QUALITY_/, '') : 'QUALITY_UNSPECIFIED');
const num = (x) => (x === undefined || x === null ? 0 : Number(x));
const significance = (p) => Math.min(300, -Math.log10(Math.max(num(p), 1e-300)));
const RANK = { BAD: 5, WARNING: 4, REJECTED: 3, LOW_STATISTICS: 2, GOOD: 1, LEARNING: 0 };

function fmt(x, digits = 3) {
  const v = num(x);
  if (v === 0) return '0';
  return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(digits - 1) : String(Number(v.toPrecision(digits)));
}

function age(ms) {
  const t = num(ms);
  if (!t) return 'no verdict since start-up';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 90) return Math.round(s) + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 129600) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function setStatus(text) { document.getElementById('status').textContent = text; }

// ---- bins, as ROOT numbers them ----

function axisOf(a, n) {
  const low = num(a && a.low), high = num(a && a.high);
  return high > low ? { low, high, title: (a && a.title) || '', known: true }
                    : { low: 0, high: n, title: (a && a.title) || 'bin', known: false };
}

function binName(flat, shape) {
  return shape.length === 2 ? `(${Math.floor(flat / shape[1]) + 1},${(flat % shape[1]) + 1})` : String(flat + 1);
}

function binRange(flat, shape, xa, ya) {
  const r = (a, i, n) => {
    const w = (a.high - a.low) / n;
    return `[${fmt(a.low + i * w, 4)},${fmt(a.low + (i + 1) * w, 4)})`;
  };
  if (shape.length === 2) {
    if (!xa.known || !ya.known) return '';
    return r(xa, Math.floor(flat / shape[1]), shape[0]) + ' × ' + r(ya, flat % shape[1], shape[1]);
  }
  return xa.known ? r(xa, flat, shape[0]) : '';
}

// ---- routing ----

function route() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const name = params.get('monitor');
  if (!name) {
    if (params.has('filter')) document.getElementById('filter').value = params.get('filter');
    showOverview();
    return;
  }
  const run = params.get('run'), ls = params.get('ls'), at = params.get('at');
  showMonitor(name, run ? Number(run) : null, ls ? Number(ls) : null, at ? Number(at) : null)
    .catch((e) => setStatus(e.message));
}

function link(name, run, ls) {
  let h = '#monitor=' + q(name);
  if (run !== null && run !== undefined) h += '&run=' + run;
  if (ls !== null && ls !== undefined) h += '&ls=' + ls;
  return h;
}

// ---- overview ----

async function refreshOverview() {
  try {
    const r = await api('monitors');
    state.monitors = r.monitors || [];
    setStatus(`${state.monitors.length} monitors, updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    setStatus(e.message);
    return;
  }
  const runs = [...new Set(state.monitors.map((m) => num(m.last_verdict && m.last_verdict.run)).filter((r) => r > 0))]
    .sort((a, b) => b - a);
  const select = document.getElementById('run-select');
  const chosen = select.value;
  select.replaceChildren(el('option', { value: '', text: 'any' }), ...runs.map((r) => el('option', { value: r, text: r })));
  select.value = runs.includes(Number(chosen)) ? chosen : '';
  drawOverview();
}

function drawOverview() {
  const filter = document.getElementById('filter').value.trim().toLowerCase();
  const run = document.getElementById('run-select').value;
  const groups = new Map();
  for (const m of state.monitors) {
    if (filter && !m.monitor.toLowerCase().includes(filter)) continue;
    if (run && String(num(m.last_verdict && m.last_verdict.run)) !== run) continue;
    const sub = m.monitor.split('/')[0];
    if (!groups.has(sub)) groups.set(sub, []);
    groups.get(sub).push(m);
  }
  const key = (m) => [RANK[quality(m.last_verdict)] || 0, significance(m.last_verdict && m.last_verdict.p_value)];
  const worse = (a, b) => { const x = key(a), y = key(b); return y[0] - x[0] || y[1] - x[1]; };
  const ordered = [...groups.entries()].map(([sub, ms]) => [sub, ms.sort(worse)])
    .sort((a, b) => worse(a[1][0], b[1][0]) || a[0].localeCompare(b[0]));
  const out = document.getElementById('subsystems');
  out.replaceChildren(...ordered.map(([sub, ms]) => el('div', { class: 'subsystem' },
    el('h2', { text: `${sub} (${ms.length})` }),
    el('div', { class: 'tiles' }, ...ms.map(tile)))));
  if (!ordered.length) out.replaceChildren(el('p', { class: 'hint', text: state.monitors.length ? 'no monitor matches' : 'no monitors yet' }));
  state.ready = state.page === 'overview';
}

function tile(m) {
  const v = m.last_verdict || {};
  const qn = quality(v);
  const model = num(m.model_version) ? 'model v' + num(m.model_version) : 'learning';
  return el('a', { class: 'tile q-' + qn, href: link(m.monitor, num(v.run), num(v.lumisection)),
                   'data-monitor': m.monitor, 'data-quality': qn },
    el('div', { class: 'name', text: m.monitor }),
    el('div', { class: 'meta', text: `${qn} p ${fmt(v.p_value)}` }),
    el('div', { class: 'meta', text: `run ${num(v.run)} ls ${num(v.lumisection)}, ${age(m.last_verdict_unix_ms)}` }),
    el('div', { class: 'meta', text: model }));
}

function showOverview() {
  state.page = 'overview';
  state.ready = false;
  document.getElementById('overview').hidden = false;
  document.getElementById('monitor').hidden = true;
  refreshOverview();
}

// ---- one monitor ----

async function showMonitor(name, run, ls, at = null) {
  state.page = 'monitor';
  state.ready = false;
  state.drawn = null;
  document.getElementById('overview').hidden = true;
  document.getElementById('monitor').hidden = false;
  const info = await api('monitor?monitor=' + q(name));
  state.monitor = info;
  const last = info.last_verdict || {};
  // `at` (unix ms, from a Grafana panel or an alert): the lumisection received nearest then.
  const atQuery = at && run === null ? '&at=' + Math.round(at) : '';
  if (run === null && !atQuery) run = num(last.run);
  const history = await api('history?monitor=' + q(name) + (run ? '&run=' + run : '') + atQuery);
  state.history = history;
  run = num(history.run);
  if (ls === null && history.at_lumisection !== undefined) ls = num(history.at_lumisection);
  if (ls === null) {
    ls = num(last.run) === run && num(last.lumisection) ? num(last.lumisection)
       : (history.points.length ? num(history.points[history.points.length - 1].lumisection) : 0);
  }
  state.run = run;
  state.ls = ls;
  document.getElementById('m-name').textContent = name;
  drawChange(info);
  drawVersions(info);
  drawHistory(history);
  let inspection = null;
  try {
    inspection = await api(`inspect?monitor=${q(name)}&run=${run}&lumisection=${ls}`);
  } catch (e) {
    setStatus(`run ${run} ls ${ls}: ${e.message}`);
  }
  state.inspection = inspection;
  await drawInspection(info, inspection);
  state.ready = true;
}

// A candidate held for a localised change waits for a person's word; an open lasting change or
// an accepted new normal being learned is shown too.
function drawChange(info) {
  const lines = [];
  if (info.pending_change) lines.push(`A candidate model learned a lasting change (${info.pending_change}); it is held, and flagged lumisections stay out of the training window until you approve or reject it.`);
  else if (info.change_rejected) lines.push('A lasting change was rejected as a defect: it stays flagged and out of the training window.');
  if (num(info.lasting_lumisections)) lines.push(`Flagged ${num(info.lasting_lumisections)} lumisections in a row (from the start: ${info.lasting_change}).`);
  if (info.accepting) lines.push(`Learning the new normal accepted from run ${num(info.accepting.run)} lumisection ${num(info.accepting.from_lumisection)}.`);
  document.getElementById('change').hidden = !lines.length;
  document.getElementById('change-text').textContent = lines.join(' ');
  document.getElementById('approve').disabled = !info.pending_change;
  document.getElementById('reject').disabled = !info.pending_change;
}

function drawVersions(info) {
  const body = document.querySelector('#versions tbody');
  body.replaceChildren(...(info.versions || []).slice().reverse().map((v) => el('tr', {},
    el('td', { text: 'v' + num(v.version) + (v.active ? ' (active)' : '') + (v.anchor ? ' (anchor)' : ''),
               title: v.anchor ? 'the last version a person chose, or the first: never dropped' : '' }),
    el('td', { text: num(v.created_unix_ms) ? new Date(num(v.created_unix_ms)).toISOString().replace('.000', '') : '-' }),
    el('td', { text: num(v.sample_count) }),
    el('td', { text: fmt(v.holdout_loss) }),
    el('td', { text: v.reason || '' }),
    el('td', {}, el('details', {}, el('summary', { text: 'manifest' }), el('pre', { text: prettyJson(v.manifest_json) }))))));
  const select = document.getElementById('rollback-version');
  select.replaceChildren(...(info.versions || []).filter((v) => !v.active)
    .map((v) => el('option', { value: num(v.version), text: 'v' + num(v.version) })));
  document.getElementById('rollback').disabled = !select.options.length;
}

function prettyJson(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text || ''; }
}

function drawHistory(history) {
  const select = document.getElementById('history-run');
  select.replaceChildren(...(history.runs || []).map((r) => el('option', { value: num(r), text: num(r) })));
  select.value = String(num(history.run));
  const pts = history.points || [];
  const W = 900, H = 220, L = 45, R = 10, T = 10, B = 30;
  const svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  const mk = (tag, attrs) => {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  const lss = pts.map((p) => num(p.lumisection));
  const lo = lss.length ? Math.min(...lss) : 0, hi = lss.length ? Math.max(...lss) : 1;
  const ymax = Math.max(6, ...pts.map((p) => Math.min(num(p.significance), 30))) * 1.1;
  const x = (ls) => L + (hi > lo ? (ls - lo) / (hi - lo) : 0.5) * (W - L - R);
  const y = (s) => H - B - Math.min(s, ymax) / ymax * (H - T - B);
  svg.append(mk('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999' }));
  svg.append(mk('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#999' }));
  const th = state.monitor && state.monitor.thresholds;
  for (const [p, colour] of [[th && th.warning_p, '#f9a825'], [th && th.bad_p, '#c62828']]) {
    if (!num(p)) continue;
    const s = significance(p);
    svg.append(mk('line', { x1: L, y1: y(s), x2: W - R, y2: y(s), stroke: colour, 'stroke-dasharray': '4 3' }));
  }
  for (const s of [0, Math.round(ymax / 2), Math.floor(ymax)]) {
    const t = mk('text', { x: L - 5, y: y(s) + 4, 'text-anchor': 'end', 'font-size': 11 });
    t.textContent = s;
    svg.append(t);
  }
  for (const [v, anchor] of [[lo, 'start'], [hi, 'end']]) {
    const t = mk('text', { x: x(v), y: H - B + 15, 'text-anchor': anchor, 'font-size': 11 });
    t.textContent = 'ls ' + v;
    svg.append(t);
  }
  const colours = { BAD: '#c62828', WARNING: '#f9a825', GOOD: '#2e7d32', LEARNING: '#1565c0', LOW_STATISTICS: '#757575', REJECTED: '#6d4c41' };
  for (const p of pts) {
    const qn = quality(p);
    const ls = num(p.lumisection);
    const c = mk('circle', { cx: x(ls), cy: y(num(p.significance)), r: 4, fill: colours[qn] || '#000',
                             'data-ls': ls, 'data-quality': qn, class: ls === state.ls ? 'shown' : '' });
    const title = mk('title', {});
    title.textContent = `ls ${ls}: ${qn}, p ${fmt(p.p_value)}` + (p.label ? `, labelled ${p.label.replace(/^QUALITY_/, '')}` : '');
    c.append(title);
    c.addEventListener('click', () => { location.hash = link(state.monitor.monitor, num(history.run), ls); });
    svg.append(c);
  }
  document.getElementById('history').replaceChildren(svg);
}

function verdictLine(v) {
  const qn = quality(v);
  let s = `run ${num(v.run)} ls ${num(v.lumisection)}: ${qn}`;
  if (['GOOD', 'WARNING', 'BAD', 'LEARNING'].includes(qn)) s += `, score ${fmt(v.score)}, p ${fmt(v.p_value)}, model v${num(v.model_version)}`;
  if (v.detail) s += ` — ${v.detail}`;
  return s;
}

async function drawInspection(info, ins) {
  const plots = document.getElementById('plots');
  for (const d of plots.querySelectorAll('.plot')) JSROOT.cleanup(d);
  for (const k of Object.keys(painters)) delete painters[k];
  plots.replaceChildren();
  const badge = document.getElementById('m-quality');
  const body = document.querySelector('#top-bins tbody');
  body.replaceChildren();
  if (!ins) {
    badge.textContent = '';
    document.getElementById('m-verdict').textContent = `run ${state.run} ls ${state.ls}: nothing stored`;
    document.getElementById('m-label').textContent = '';
    return;
  }
  const v = ins.verdict || {};
  const qn = quality(v);
  badge.textContent = qn;
  badge.className = 'badge q-' + qn;
  document.getElementById('m-verdict').textContent = verdictLine(v);
  const label = ins.label;
  document.getElementById('m-label').textContent = label && label.label && label.label !== 'QUALITY_UNSPECIFIED'
    ? `labelled ${label.label.replace(/^QUALITY_/, '')} by ${label.author || '-'}${label.comment ? ': ' + label.comment : ''}`
      + (ins.in_training_window ? ' (in the training window)' : '')
    : (ins.in_training_window ? 'in the training window' : 'not in the training window');

  const h = ins.histogram || {};
  const shape = (h.shape || []).map(Number);
  const contents = (h.contents || []).map(Number);
  const expected = (ins.expected || []).map(Number);
  const pulls = (ins.pulls || []).map(Number);
  const xa = axisOf(h.x_axis, shape[0] || contents.length);
  const ya = axisOf(h.y_axis, shape[1] || 1);
  const top = (v.top_bins || []).map((b) => num(b.bin));
  for (const b of top) {
    body.append(el('tr', { class: 'marked', 'data-bin': binName(b, shape) },
      el('td', { text: binName(b, shape) }), el('td', { text: binRange(b, shape, xa, ya) || '-' }),
      el('td', { text: fmt(contents[b], 6) }), el('td', { text: expected.length ? fmt(expected[b], 6) : '-' }),
      el('td', { text: pulls.length ? (pulls[b] >= 0 ? '+' : '') + fmt(pulls[b]) : '-' })));
  }
  if (!top.length) body.append(el('tr', {}, el('td', { text: 'none named for this verdict', colspan: 5 })));

  const title = `${info.monitor} run ${num(v.run)} ls ${num(v.lumisection)}`;
  if (shape.length === 2) await draw2D(plots, title, shape, contents, expected, pulls, top, xa, ya);
  else await draw1D(plots, title, contents, expected, pulls, top, xa);
  state.drawn = { dims: shape.length === 2 ? 2 : 1, nbins: contents.length, nx: shape[0], ny: shape[1] || 1,
                  markedRootBins: top.map((b) => binName(b, shape)) };
}

function th1(name, title, values, xa, setup, yTitle = '') {
  const n = values.length;
  const hist = JSROOT.createHistogram('TH1D', n);
  hist.fName = name;
  hist.fTitle = title;
  hist.fXaxis.fXmin = xa.low;
  hist.fXaxis.fXmax = xa.high;
  hist.fXaxis.fTitle = xa.title;
  hist.fYaxis.fTitle = yTitle;
  for (let i = 0; i < n; ++i) hist.fArray[i + 1] = values[i];
  if (setup) setup(hist);
  return hist;
}

async function draw1D(plots, title, contents, expected, pulls, top, xa) {
  const main = el('div', { class: 'plot', id: 'plot-observed' });
  const lower = el('div', { class: 'plot small', id: 'plot-pulls' });
  plots.append(main, lower);
  const observed = th1('observed', title + ': observed (points), expected (blue)', contents, xa, (h) => {
    h.fSumw2 = [0, ...contents, 0];  // Poisson errors
    h.fEntries = contents.reduce((a, b) => a + b, 0);
    h.fMarkerStyle = 20;
    h.fMarkerSize = 0.6;
  }, 'entries');
  painters.observed = await JSROOT.draw(main, observed, 'E1 nostat');
  if (expected.length === contents.length) {
    const exp = th1('expected', 'expected', expected, xa, (h) => { h.fLineColor = 4; h.fLineWidth = 2; });
    await JSROOT.draw(main, exp, 'hist same');
  }
  if (top.length) {
    // Hatched up to the larger of observed and expected, so that a dead bin shows too.
    const height = (i) => Math.max(contents[i], expected.length === contents.length ? expected[i] : 0);
    const marked = th1('deviating', 'deviating bins', contents.map((c, i) => (top.includes(i) ? height(i) : 0)), xa,
      (h) => { h.fLineColor = 2; h.fFillColor = 2; h.fFillStyle = 3004; });
    await JSROOT.draw(main, marked, 'hist same');
  }
  if (pulls.length === contents.length) {
    const p = th1('pulls', 'pulls: (observed - expected) / sigma', pulls, xa,
      (h) => { h.fFillColor = 16; h.fLineColor = 1; }, 'pull');
    painters.pulls = await JSROOT.draw(lower, p, 'hist nostat');
  } else {
    lower.textContent = 'no expectation: no model scored this histogram';
  }
}

function th2(name, title, values, shape, xa, ya) {
  const [nx, ny] = shape;
  const hist = JSROOT.createHistogram('TH2D', nx, ny);
  hist.fName = name;
  hist.fTitle = title;
  hist.fXaxis.fXmin = xa.low; hist.fXaxis.fXmax = xa.high; hist.fXaxis.fTitle = xa.title;
  hist.fYaxis.fXmin = ya.low; hist.fYaxis.fXmax = ya.high; hist.fYaxis.fTitle = ya.title;
  for (let ix = 1; ix <= nx; ++ix)
    for (let iy = 1; iy <= ny; ++iy) hist.fArray[ix + (nx + 2) * iy] = values[(ix - 1) * ny + (iy - 1)];
  return hist;
}

async function draw2D(plots, title, shape, contents, expected, pulls, top, xa, ya) {
  const [nx, ny] = shape;
  const mark = async (div) => {
    if (!top.length) return;
    const xs = top.map((b) => xa.low + (Math.floor(b / ny) + 0.5) * (xa.high - xa.low) / nx);
    const ys = top.map((b) => ya.low + ((b % ny) + 0.5) * (ya.high - ya.low) / ny);
    const g = JSROOT.createTGraph(top.length, xs, ys);
    g.fName = 'deviating';
    g.fTitle = 'deviating bins';
    g.fMarkerStyle = 24;
    g.fMarkerSize = 2;
    g.fMarkerColor = 1;
    await JSROOT.draw(div, g, 'p same');
  };
  const panels = [['observed', contents, 'observed'], ['expected', expected, 'expected'], ['pulls', pulls, 'pulls']];
  for (const [id, values, what] of panels) {
    const div = el('div', { class: 'plot map', id: 'plot-' + id });
    plots.append(div);
    if (values.length !== contents.length) {
      div.textContent = `no ${what}: no model scored this histogram`;
      continue;
    }
    painters[id] = await JSROOT.draw(div, th2(id, `${title}: ${what}`, values, shape, xa, ya), 'colz nostat');
    await mark(div);
  }
}

// ---- operator actions ----

async function act(path, body, done) {
  const out = document.getElementById('action-result');
  out.textContent = '…';
  try {
    const r = await api(path, body);
    out.textContent = done(r);
  } catch (e) {
    out.textContent = `${path}: ${e.message}`;
    return false;
  }
  return true;
}

async function label(good) {
  const comment = document.getElementById('label-comment').value;
  const ok = await act('label', { monitor: state.monitor.monitor, run: String(state.run), lumisection: String(state.ls),
                                  label: good ? 'QUALITY_GOOD' : 'QUALITY_BAD', comment },
                      () => `run ${state.run} ls ${state.ls} labelled ${good ? 'GOOD' : 'BAD'}`);
  if (ok) await showMonitor(state.monitor.monitor, state.run, state.ls);
}

function setUpActions() {
  document.getElementById('label-good').addEventListener('click', () => label(true));
  document.getElementById('label-bad').addEventListener('click', () => label(false));
  document.getElementById('retrain').addEventListener('click', () =>
    act('retrain', { monitor: state.monitor.monitor }, (r) => r.detail || 'training queued'));
  document.getElementById('rollback').addEventListener('click', async () => {
    const version = document.getElementById('rollback-version').value;
    if (await act('rollback', { monitor: state.monitor.monitor, version: String(version) },
                  (r) => `active model is now v${num(r.active_version)}`))
      await showMonitor(state.monitor.monitor, state.run, state.ls);
  });
  for (const verb of ['approve', 'reject']) {
    document.getElementById(verb).addEventListener('click', async () => {
      const comment = document.getElementById('change-comment').value;
      if (await act(verb, { monitor: state.monitor.monitor, comment },
                    (r) => verb === 'approve' ? `approved: active model is now v${num(r.version)}`
                                              : 'rejected: the change stays flagged'))
        await showMonitor(state.monitor.monitor, state.run, state.ls);
    });
  }
  document.getElementById('forget').addEventListener('click', async () => {
    const name = state.monitor.monitor;
    if (prompt(`Forget ${name}? Its models, stored histograms and labels are deleted. Type its name to confirm.`) !== name) return;
    if (await act('forget', { monitor: name, comment: 'from the console' }, () => `${name} forgotten`)) location.hash = '';
  });
  document.getElementById('history-run').addEventListener('change', (e) => {
    location.hash = link(state.monitor.monitor, Number(e.target.value), null);
  });
}

// ---- start ----

document.getElementById('filter').addEventListener('input', drawOverview);
document.getElementById('run-select').addEventListener('change', drawOverview);
document.getElementById('token-button').addEventListener('click', () => {
  const t = prompt('Bearer token for this daemon (kept for this browser tab only; empty to clear):',
                   sessionStorage.getItem(TOKEN_KEY) || '');
  if (t === null) return;
  if (t.trim()) sessionStorage.setItem(TOKEN_KEY, t.trim()); else sessionStorage.removeItem(TOKEN_KEY);
  route();
});
window.addEventListener('hashchange', route);
setUpActions();
setInterval(() => { if (state.page === 'overview') refreshOverview(); }, REFRESH_MS);
route();
