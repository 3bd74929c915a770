// The console in a real browser: headless Chromium (Debian's `chromium`) driven by puppeteer-core,
// against a live histguardd fed by the simulator.
//
//   node tests/console/console_test.mjs HISTGUARDD HISTGUARD [SCREENSHOT_DIR]
//
// Starts the daemon on loopback ports the kernel picks, trains five simulated monitors (three 1D
// families, a channel occupancy and a 20x20 map), sends one lumisection with a dead region into
// the channel occupancy and one with a hot bin into the map, then checks as a shifter would:
//  1. the overview lists the five monitors under their subsystems;
//  2. the BAD channel occupancy opens with its histogram drawn by JSROOT, with the right number of
//     bins and the verdict's deviating bins marked, in ROOT's numbering;
//  3. the 2D map draws observed, expected and pulls side by side;
//  4. clicking a point of the significance history shows that lumisection;
//  5. labelling that lumisection BAD in the page is what the gRPC Inspect (the CLI) then reports.
// Screenshots of each step go to SCREENSHOT_DIR (default: the current folder). Environment:
// CHROMIUM (default /usr/bin/chromium).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';

const [histguardd, histguard, shots = '.'] = process.argv.slice(2);
if (!histguardd || !histguard) {
  console.error('usage: console_test.mjs HISTGUARDD HISTGUARD [SCREENSHOT_DIR]');
  process.exit(2);
}
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromium)) {
  console.error(`console_test: ${chromium} is missing (apt-get install chromium)`);
  process.exit(1);
}
fs.mkdirSync(shots, { recursive: true });

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
  if (!ok) failures += 1;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'histguard-console-'));
const daemon = spawn(histguardd, ['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0',
  '--data-dir', work, '--min-train-samples', '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
let daemonLog = '';
daemon.stderr.on('data', (d) => { daemonLog += d; });
let browser = null;

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  daemon.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
}

function fail(message) {
  console.error(`console_test: FAIL: ${message}`);
  console.error(daemonLog.split('\n').slice(-30).join('\n'));
  return cleanup().then(() => process.exit(1));
}

const listening = await new Promise((resolve, reject) => {
  const rl = readline.createInterface({ input: daemon.stdout });
  rl.once('line', (line) => resolve(JSON.parse(line)));
  daemon.once('exit', (code) => reject(new Error(`histguardd exited (${code})`)));
  setTimeout(() => reject(new Error('histguardd did not say where it listens')), 60000);
}).catch((e) => fail(e.message));
const grpc = listening.grpc;
const base = `http://${listening.metrics}`;

function cli(...args) {
  return execFileSync(histguard, ['-a', grpc, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
async function json(p) {
  const r = await fetch(base + p);
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
  return r.json();
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- data: five monitors trained on normal histograms, then two anomalies
cli('simulate', '--monitors', '5', '--count', '60', '--rate', '0', '--anomaly', 'none', '--run', '1',
    '--first-lumisection', '1', '--print', 'summary');
let monitors = [];
for (let i = 0; ; ++i) {
  monitors = (await json('/api/v1/monitors')).monitors;
  if (monitors.length === 5 && monitors.every((m) => Number(m.model_version) > 0)) break;
  if (i > 120) await fail('the monitors did not train in time');
  // More normal lumisections while the models train.
  cli('simulate', '--monitors', '5', '--count', '1', '--rate', '0', '--anomaly', 'none', '--run', '1',
      '--first-lumisection', String(61 + i), '--seed', String(100 + i), '--print', 'summary');
  await sleep(500);
}
const names = monitors.map((m) => m.monitor);
const shapes = new Map();
for (const n of names) shapes.set(n, (await json('/api/v1/monitor?monitor=' + encodeURIComponent(n))).shape.map(Number));
const occupancy = names.find((n) => /occupancy/.test(n) && shapes.get(n).length === 1);
const map = names.find((n) => shapes.get(n).length === 2);
if (!occupancy || !map) await fail(`no 1D occupancy or 2D map among ${names.join(', ')}`);
// The map's hot bin first, so that the occupancy's dead region is its last verdict.
const mapLs = 500, badLs = 501;
cli('simulate', '--monitors', '5', '--count', '1', '--rate', '0', '--anomaly', 'hot_bin',
    '--anomaly-monitor', map, '--anomaly-fraction', '1', '--warmup', '0', '--severity', '3',
    '--run', '1', '--first-lumisection', String(mapLs), '--seed', '8', '--print', 'summary');
cli('simulate', '--monitors', '5', '--count', '1', '--rate', '0', '--anomaly', 'dead_region',
    '--anomaly-monitor', occupancy, '--anomaly-fraction', '1', '--warmup', '0', '--severity', '3',
    '--run', '1', '--first-lumisection', String(badLs), '--seed', '7', '--print', 'summary');
const badVerdict = (await json(`/api/v1/inspect?monitor=${encodeURIComponent(occupancy)}&run=1&lumisection=${badLs}`)).verdict;
if (badVerdict.quality !== 'QUALITY_BAD') await fail(`the dead region came back ${badVerdict.quality}`);

// ---- the browser
browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage();
await page.setViewport({ width: 1400, height: 1100 });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
const waitReady = () => page.waitForFunction(() => window.histguardConsole && window.histguardConsole.state.ready,
  { timeout: 30000 });

// 1. overview
await page.goto(base + '/console/', { waitUntil: 'load' });
await waitReady();
await page.waitForSelector('.tile');
const tiles = await page.$$eval('.tile', (ts) => ts.map((t) => [t.dataset.monitor, t.dataset.quality]));
check(tiles.length === 5 && names.every((n) => tiles.some(([m]) => m === n)), `overview lists the 5 monitors (${tiles.length})`);
const subsystems = await page.$$eval('.subsystem h2', (hs) => hs.map((h) => h.textContent));
check(subsystems.length >= 2, `monitors grouped by subsystem: ${subsystems.join(', ')}`);
check(tiles.some(([m, q]) => m === occupancy && q === 'BAD'), `${occupancy} shows BAD`);
check(subsystems[0].startsWith(occupancy.split('/')[0]) || subsystems[0].startsWith(map.split('/')[0]),
      'a subsystem with a BAD monitor comes first');
await page.screenshot({ path: path.join(shots, 'console-overview.png'), fullPage: true });

// 2. the BAD monitor
await page.click(`.tile[data-monitor="${occupancy}"]`);
await page.waitForFunction(() => window.histguardConsole.state.page === 'monitor' && window.histguardConsole.state.ready
  && window.histguardConsole.state.drawn, { timeout: 30000 });
// What JSROOT holds for the pad (the painter its draw() returned), and what is on the screen.
const drawn = await page.evaluate(() => {
  const painter = window.histguardConsole.painters.observed;
  return { state: window.histguardConsole.state.drawn, ls: window.histguardConsole.state.ls,
           painted: painter ? painter.getObject().fXaxis.fNbins : 0,
           svg: document.querySelectorAll('#plot-observed svg').length,
           rows: [...document.querySelectorAll('#top-bins tr.marked')].map((r) => r.dataset.bin) };
});
const expectedBins = badVerdict.top_bins.map((b) => String(Number(b.bin) + 1));
check(drawn.ls === badLs, `the monitor page opens at the BAD lumisection ${badLs} (${drawn.ls})`);
check(drawn.svg > 0 && drawn.painted === shapes.get(occupancy)[0],
      `JSROOT drew ${drawn.painted} bins of ${shapes.get(occupancy)[0]}`);
check(JSON.stringify(drawn.state.markedRootBins) === JSON.stringify(expectedBins)
      && JSON.stringify(drawn.rows) === JSON.stringify(expectedBins),
      `the deviating bins are marked in ROOT's numbering: ${drawn.state.markedRootBins.join(' ')} (verdict: ${expectedBins.join(' ')})`);
await page.screenshot({ path: path.join(shots, 'console-monitor-1d.png'), fullPage: true });

// 3. the 2D map
await page.goto(`${base}/console/#monitor=${encodeURIComponent(map)}&run=1&ls=${mapLs}`);
await page.waitForFunction(() => window.histguardConsole.state.ready && window.histguardConsole.state.drawn
  && window.histguardConsole.state.drawn.dims === 2, { timeout: 30000 });
const maps = await page.evaluate(() => ['observed', 'expected', 'pulls'].map((id) => {
  const p = window.histguardConsole.painters[id];
  const svg = document.querySelectorAll(`#plot-${id} svg`).length;
  return p && svg ? [p.getObject().fXaxis.fNbins, p.getObject().fYaxis.fNbins] : null;
}));
const [nx, ny] = shapes.get(map);
check(maps.every((m) => m && m[0] === nx && m[1] === ny), `observed, expected and pulls maps drawn at ${nx}x${ny}: ${JSON.stringify(maps)}`);
await page.screenshot({ path: path.join(shots, 'console-monitor-2d.png'), fullPage: true });

// 3b. by time, as a Grafana point or an alert links to it: the lumisection received nearest then
const hist = await json(`/api/v1/history?monitor=${encodeURIComponent(occupancy)}&run=1`);
const badPoint = hist.points.find((p) => p.lumisection === badLs);
await page.goto(`${base}/console/#monitor=${encodeURIComponent(occupancy)}&at=${badPoint.time_unix_ms}`);
const atLs = await page.waitForFunction((name) => {
  const st = window.histguardConsole.state;
  return st.ready && st.drawn && st.drawn.dims === 1 && st.monitor.monitor === name && st.ls;
}, { timeout: 30000 }, occupancy).then((h) => h.jsonValue());
check(atLs === badLs, `a link by time (at=${badPoint.time_unix_ms}) opens lumisection ${badLs} (${atLs})`);

// 4. a history point
await page.goto(`${base}/console/#monitor=${encodeURIComponent(occupancy)}`);
await page.waitForFunction(() => window.histguardConsole.state.ready && window.histguardConsole.state.drawn, { timeout: 30000 });
const target = 30;
await page.click(`#history circle[data-ls="${target}"]`);
await page.waitForFunction((ls) => window.histguardConsole.state.ready && window.histguardConsole.state.ls === ls
  && window.histguardConsole.state.drawn, { timeout: 30000 }, target);
const heading = await page.$eval('#m-verdict', (e) => e.textContent);
check(heading.includes(`ls ${target}:`), `clicking the history point shows lumisection ${target}: "${heading}"`);

// 5. label it in the page, find the label through Inspect
await page.type('#label-comment', 'noisy readout, seen in the console');
await page.click('#label-bad');
await page.waitForFunction(() => /labelled BAD/.test(document.getElementById('m-label').textContent), { timeout: 30000 });
const inspected = cli('inspect', occupancy, '--run', '1', '--lumisection', String(target));
check(/label: BAD by .*noisy readout, seen in the console/.test(inspected), 'the label made in the console is what Inspect reports');
await page.screenshot({ path: path.join(shots, 'console-labelled.png'), fullPage: true });

check(pageErrors.length === 0, `no errors in the page${pageErrors.length ? ': ' + pageErrors.join('; ') : ''}`);
await cleanup();
console.log(failures ? `console_test: ${failures} checks failed` : 'console_test: all checks passed');
process.exit(failures ? 1 : 0);
