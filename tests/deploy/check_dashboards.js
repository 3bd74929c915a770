#!/usr/bin/env node
'use strict';
// Checks the Grafana dashboards (deploy/grafana/dashboards/*.json): valid JSON, unique panel
// ids and dashboard uids, the monitor drill-down's `monitor` variable; and that every histguard
// metric the dashboards, the alert rules and the metrics reference
// (the README's Deploy section) name is one the daemon exports.
//
// Usage:
//   node tests/deploy/check_dashboards.js SCRAPE_FILE     a live /metrics scrape of histguardd
//   node tests/deploy/check_dashboards.js --list FILE     a plain list: "name type [labels]" per line
// With `--prometheus URL` as well, every panel and annotation query (dashboard variables filled
// in) is also run on that Prometheus and must not be an error.
// Needs only Node.js 18+ (no npm packages), so it runs wherever a scrape is taken.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const paths = require('./lib/paths');

const SUFFIXES = ['_bucket', '_sum', '_count'];
const METRIC = /\bhistguard_[a-z_]+/g;

function usage() {
  console.error('usage: check_dashboards.js [--prometheus URL] SCRAPE_FILE | --list METRICS_LIST');
  process.exit(2);
}

// name -> type ('counter', 'gauge', 'histogram', 'summary', 'untyped', or '' when unknown)
function fromList(text) {
  const metrics = new Map();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [name, type = ''] = t.split(/\s+/);
    metrics.set(name, type);
  }
  return metrics;
}

// Prometheus text exposition: "# TYPE name type" lines and samples "name{labels} value".
function fromScrape(text) {
  const metrics = new Map();
  for (const line of text.split('\n')) {
    const type = /^#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)/.exec(line);
    if (type) { metrics.set(type[1], type[2]); continue; }
    if (line.startsWith('#') || !line.trim()) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (sample && !metrics.has(sample[1])) metrics.set(sample[1], '');
  }
  return metrics;
}

function exists(metrics, name) {
  if (metrics.has(name)) return true;
  const suffix = SUFFIXES.find((s) => name.endsWith(s));
  if (!suffix) return false;
  const base = name.slice(0, -suffix.length);
  return metrics.has(base) && ['histogram', 'summary', ''].includes(metrics.get(base));
}

// Every query string of a dashboard: panel targets, template variables, annotations.
function queries(node, out = []) {
  if (Array.isArray(node)) { node.forEach((n) => queries(n, out)); return out; }
  if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (['expr', 'query', 'definition'].includes(k) && typeof v === 'string') out.push(v);
      else queries(v, out);
    }
  }
  return out;
}

function panels(dashboard) {
  const out = [];
  const walk = (list) => {
    for (const p of list || []) {
      out.push(p);
      walk(p.panels); // panels inside collapsed rows
    }
  };
  walk(dashboard.panels);
  return out;
}

const names = (text) => [...new Set(text.match(METRIC) || [])];

const argv = process.argv.slice(2);
let prometheusUrl = null;
const promAt = argv.indexOf('--prometheus');
if (promAt >= 0) {
  prometheusUrl = argv[promAt + 1];
  if (!prometheusUrl) usage();
  argv.splice(promAt, 2);
}
let source;
let metrics;
if (argv[0] === '--list' && argv[1]) {
  source = argv[1];
  metrics = fromList(fs.readFileSync(source, 'utf8'));
} else if (argv.length === 1 && !argv[0].startsWith('-')) {
  source = argv[0];
  metrics = fromScrape(fs.readFileSync(source, 'utf8'));
} else {
  usage();
}
const fromLive = argv[0] !== '--list';

const dashboardFiles = fs.readdirSync(paths.dashboardsDir).filter((f) => f.endsWith('.json')).sort();
const dashboards = new Map();

test(`metric source ${path.basename(source)} lists histguard metrics`, () => {
  const ours = [...metrics.keys()].filter((n) => n.startsWith('histguard_'));
  assert.ok(ours.length > 0, `no histguard_ metric in ${source}`);
});

test('the dashboards folder has the overview and monitor dashboards', () => {
  assert.ok(dashboardFiles.includes('histguard-overview.json'));
  assert.ok(dashboardFiles.includes('histguard-monitor.json'));
});

for (const file of dashboardFiles) {
  test(`${file}: valid JSON, title, uid, unique panel ids, panel queries`, () => {
    const text = fs.readFileSync(path.join(paths.dashboardsDir, file), 'utf8');
    const d = JSON.parse(text);
    dashboards.set(file, d);
    assert.ok(d.title, 'no title');
    assert.match(d.uid || '', /^[a-zA-Z0-9_-]{1,40}$/, 'uid missing or longer than Grafana allows');
    const ps = panels(d);
    assert.ok(ps.length > 0, 'no panels');
    const ids = ps.map((p) => p.id);
    for (const id of ids) assert.ok(Number.isInteger(id), `panel without integer id: ${JSON.stringify(id)}`);
    const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
    assert.deepEqual(dup, [], `duplicate panel ids ${dup}`);
    for (const p of ps) {
      if (p.type === 'row') continue;
      assert.ok(p.title, `panel ${p.id} has no title`);
      assert.ok(p.gridPos && p.gridPos.w > 0 && p.gridPos.h > 0, `panel ${p.id} has no size`);
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id} is wider than the grid`);
      const targets = p.targets || [];
      assert.ok(targets.length > 0, `panel "${p.title}" has no query`);
      const refs = targets.map((t) => t.refId);
      assert.equal(new Set(refs).size, refs.length, `panel "${p.title}" repeats a refId`);
      for (const t of targets) assert.ok(t.expr && t.expr.trim(), `panel "${p.title}" has an empty query`);
    }
  });
}

test('dashboard uids are unique', () => {
  const uids = [...dashboards.values()].map((d) => d.uid);
  assert.equal(new Set(uids).size, uids.length);
});

// The model version is exported for every monitor as long as it exists; the significance only
// while its last verdict is recent, which would drop quiet monitors from the list.
test('histguard-monitor.json has a `monitor` variable from label_values(histguard_model_version, monitor)', () => {
  const d = dashboards.get('histguard-monitor.json');
  assert.ok(d, 'histguard-monitor.json was not read');
  const v = d.templating.list.find((x) => x.name === 'monitor');
  assert.ok(v, 'no monitor variable');
  const q = typeof v.query === 'string' ? v.query : v.query.query;
  assert.equal(q.replace(/\s+/g, ''), 'label_values(histguard_model_version,monitor)');
  const uses = panels(d).filter((p) => (p.targets || []).some((t) => /\$monitor|\$\{monitor/.test(t.expr)));
  assert.ok(uses.length >= panels(d).filter((p) => p.type !== 'row').length, 'a panel ignores $monitor');
});

test('links between the dashboards point at existing uids', () => {
  const uids = new Set([...dashboards.values()].map((d) => d.uid));
  const text = [...dashboards.values()].map((d) => JSON.stringify(d)).join('\n');
  for (const m of text.matchAll(/\/d\/([A-Za-z0-9_-]+)/g)) assert.ok(uids.has(m[1]), `link to unknown dashboard ${m[1]}`);
});

test('every histguard metric the dashboards query exists', () => {
  const missing = [];
  for (const file of dashboardFiles) {
    const d = JSON.parse(fs.readFileSync(path.join(paths.dashboardsDir, file), 'utf8'));
    for (const q of queries(d)) for (const n of names(q)) if (!exists(metrics, n)) missing.push(`${file}: ${n}`);
  }
  assert.deepEqual([...new Set(missing)], [], `not in ${source}`);
});

test('every histguard metric the alert rules use exists', () => {
  const used = names(fs.readFileSync(paths.rulesFile, 'utf8'));
  assert.ok(used.length > 0);
  assert.deepEqual(used.filter((n) => !exists(metrics, n)), [], `not in ${source}`);
});

test('the metrics reference names only exported metrics and, from the list, all of them', () => {
  const readme = fs.readFileSync(paths.fromRoot('README.md'), 'utf8');
  // Only the Deploy section is the metrics reference; elsewhere the README names binaries too.
  const start = readme.indexOf('\n## Deploy');
  const end = readme.indexOf('\n## ', start + 1);
  assert.ok(start >= 0, 'the README has a Deploy section');
  const used = names(readme.slice(start, end < 0 ? undefined : end));
  assert.deepEqual(used.filter((n) => !exists(metrics, n)), [], `not in ${source}`);
  if (!fromLive) {
    const listed = [...metrics.keys()].filter((n) => n.startsWith('histguard_'));
    assert.deepEqual(listed.filter((n) => !used.includes(n)), [], 'metrics missing from the reference table');
  }
});

// Grafana's variables as a dashboard would fill them in, for running its queries directly.
function fillVariables(expr, monitor) {
  const values = { __rate_interval: '1m', __interval: '1m', __range: '1h', subsystem: '.*', monitor };
  return expr
    .replace(/\$\{(\w+)(?::\w+)?\}/g, (m, name) => (name in values ? values[name] : m))
    .replace(/\$(\w+)/g, (m, name) => (name in values ? values[name] : m));
}

if (prometheusUrl) {
  test(`every panel and annotation query runs on ${prometheusUrl}`, async (t) => {
    const scraped = fs.readFileSync(source, 'utf8');
    const m = /^histguard_anomaly_significance\{[^}]*monitor="([^"]+)"/m.exec(scraped);
    const monitor = m ? m[1] : 'none';
    const errors = [];
    const empty = [];
    for (const file of dashboardFiles) {
      const d = JSON.parse(fs.readFileSync(path.join(paths.dashboardsDir, file), 'utf8'));
      const exprs = [];
      for (const p of panels(d)) for (const tg of p.targets || []) exprs.push([p.title, tg.expr]);
      for (const a of (d.annotations && d.annotations.list) || []) if (a.expr) exprs.push([`annotation ${a.name}`, a.expr]);
      for (const [title, expr] of exprs) {
        const query = fillVariables(expr, monitor);
        const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = await res.json();
        if (body.status !== 'success') errors.push(`${file} "${title}": ${body.error} in ${query}`);
        else if (body.data.result.length === 0) empty.push(`${file} "${title}"`);
      }
    }
    if (empty.length) t.diagnostic(`queries with no data yet: ${empty.join(', ')}`);
    assert.deepEqual(errors, []);
  });
}
