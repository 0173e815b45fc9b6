#!/usr/bin/env node
// The web gallery in a real browser, against a real media-server on a real
// folder.  Prints TAP.  Run by `meson test --suite browser`, or by hand:
//
//   MI_SERVER=build/server/media-server node tests/browser/gallery.test.mjs
//
// Environment:
//   MI_SERVER          media-server to start (default $MI_TEST_BUILD_DIR/server/media-server)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   MI_TEST_BUILD_DIR  screenshots go to $MI_TEST_BUILD_DIR/browser-screenshots/
//   MI_TEST_CORPUS     optional folder of real photos: a few more are indexed too
//   MI_TEST_WRAP       optional module exporting wrap(serverURL) -> {url, close}:
//                      a front between the browser and the server (development)
//   MI_TEST_KEEP=1     keep the temporary folders
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildGalleryCorpus, sha256 } from './corpus.mjs';
import { makeJpeg, exifDate } from './fixtures.mjs';

/* Runs a tool (ffmpeg, heif-enc) without blocking the event loop: a test that
 * blocked it for seconds would come back to pooled connections the server
 * closed meanwhile, and its next POST would go out on one of them. */
const tool = (cmd, args) => new Promise((resolve) =>
  execFile(cmd, args, { timeout: 60000 }, (err) => resolve(!err)));

const here = path.dirname(fileURLToPath(import.meta.url));
const TZ = 'Europe/Berlin';      // server and browser agree on local time
process.env.TZ = TZ;             // and so does this script (expected months)
const buildDir = process.env.MI_TEST_BUILD_DIR || path.resolve(here, '../../build');
const serverBin = process.env.MI_SERVER || path.join(buildDir, 'server/media-server');
const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = path.join(buildDir, 'browser-screenshots');

/* ------------------------------------------------------------------ TAP */

let count = 0, failures = 0;
function ok(cond, name, diag) {
  count++;
  console.log(`${cond ? 'ok' : 'not ok'} ${count} - ${name}`);
  if (!cond) {
    failures++;
    if (diag !== undefined) console.log(String(diag).split('\n').map((l) => '  # ' + l).join('\n'));
  }
  return cond;
}
function skip(name, why) { count++; console.log(`ok ${count} - ${name} # SKIP ${why}`); }
async function step(name, fn) {
  try { await fn(); } catch (e) { ok(false, name, e && e.stack ? e.stack : e); }
}
function eq(a, b, name) {
  const sa = JSON.stringify(a), sb = JSON.stringify(b);
  return ok(sa === sb, name, `got      ${sa}\nexpected ${sb}`);
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.log('1..0 # SKIP playwright-core is not installed: run `npm ci` in tests/browser (scripts/install-deps.sh --browser does)');
  process.exit(0);
}
for (const [what, p] of [['media-server', serverBin], ['chromium', chromiumBin]]) {
  if (!fs.existsSync(p)) { console.log(`Bail out! no ${what} at ${p}`); process.exit(1); }
}

/* --------------------------------------------------------------- server */

const children = [];
function startServer(dir) {
  return new Promise((resolve, reject) => {
    const proc = spawn(serverBin, ['--storage_dir', dir, '--port', '0', '--listen', '127.0.0.1'],
                       { env: { ...process.env, TZ }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(proc);
    let log = '';
    const timer = setTimeout(() => reject(new Error('media-server did not start: ' + log)), 20000);
    proc.stderr.on('data', (d) => {
      log = (log + d).slice(-20000);
      const m = /on http:\/\/[^/]*:(\d+)\//.exec(log);
      if (m && timer) { clearTimeout(timer); resolve({ proc, url: `http://127.0.0.1:${m[1]}`, log: () => log }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`media-server exited (${code}): ${log}`)); });
  });
}

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function waitIdle(url, minMedia) {
  const t0 = Date.now();
  for (;;) {
    try {
      const st = await getJSON(url + '/status');
      if (st.state === 'idle' && st.last_scan_finished && st.media >= minMedia) return st;
    } catch { /* not yet */ }
    if (Date.now() - t0 > 120000) throw new Error('the scan did not finish in 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mi-browser-'));
const fronts = [];
let browser;
async function cleanup() {
  for (const f of fronts) try { f.close(); } catch { /* gone */ }
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  if (!process.env.MI_TEST_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
}
process.on('SIGTERM', async () => { await cleanup(); process.exit(1); });

async function front(serverURL) {
  if (!process.env.MI_TEST_WRAP) return serverURL;
  const mod = await import(pathToFileURL(path.resolve(process.env.MI_TEST_WRAP)).href);
  const f = await mod.wrap(serverURL);
  fronts.push(f);
  return f.url;
}

/* ------------------------------------------------------------- fixtures */

const lib = path.join(tmp, 'library');
const items = buildGalleryCorpus(lib);
const corpus = process.env.MI_TEST_CORPUS;
let corpusCount = 0;
if (corpus && fs.existsSync(corpus)) {
  // A few real camera photos too (their dates and sizes are not asserted).
  const real = fs.readdirSync(corpus).filter((f) => /^DSCN.*\.jpe?g$/i.test(f)).slice(0, 4);
  fs.mkdirSync(path.join(lib, 'real'), { recursive: true });
  for (const f of real) fs.copyFileSync(path.join(corpus, f), path.join(lib, 'real', f));
  corpusCount = real.length;
}
// Newest first, ties by hash: the order the gallery shows.
const order = [...items].sort((a, b) => (b.date - a.date) || (a.sha < b.sha ? -1 : 1));
const monthLabel = (d) => new Intl.DateTimeFormat('en-US', { month: 'long', year: 'numeric' }).format(d);
const monthKey = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
function expectedMonths(list) {
  const out = [];
  for (const it of list) {
    const k = monthKey(it.date);
    if (!out.length || out[out.length - 1].key !== k) out.push({ key: k, label: monthLabel(it.date), n: 0 });
    out[out.length - 1].n++;
  }
  return out;
}

/* ------------------------------------------------------------- browser */

const consoleErrors = [];
function watch(page, tag) {
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${tag}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleErrors.push(`${tag}: uncaught ${e.message}`));
}

async function newPage(opts, tag, watched = true) {
  const ctx = await browser.newContext({ locale: 'en-US', timezoneId: TZ, colorScheme: 'light', ...opts });
  const page = await ctx.newPage();
  if (watched) watch(page, tag);
  return { ctx, page };
}

async function shot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name + '.png') });
}

// Every month heading from top to bottom (the timeline is virtualised, so
// scroll through it and collect).
async function collectHeadings(page) {
  return page.evaluate(async () => {
    const seen = new Map();
    const grab = () => {
      for (const h of document.querySelectorAll('#timeline h2.month')) {
        seen.set(h.id, { top: parseFloat(h.style.top), label: h.firstChild.textContent, count: h.querySelector('.month-count').textContent });
      }
    };
    window.scrollTo(0, 0);
    for (let y = 0; ; y += 400) {
      window.scrollTo(0, y);
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      grab();
      if (window.scrollY + innerHeight >= document.documentElement.scrollHeight - 2) break;
    }
    window.scrollTo(0, 0);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return [...seen.entries()].sort((a, b) => a[1].top - b[1].top).map(([id, v]) => ({ id, label: v.label, count: v.count }));
  });
}

const viewerSha = (page) => page.evaluate(() => (/^#\/photo\/([0-9a-f]{64})$/.exec(location.hash) || [])[1] || null);
async function waitViewerOn(page, sha) {
  await page.waitForFunction((s) => location.hash === '#/photo/' + s && !document.getElementById('viewer').hidden, sha, { timeout: 5000 });
}
async function waitFullImage(page, sha) {
  await page.waitForFunction((s) => {
    const img = document.getElementById('v-full');
    return !img.hidden && img.complete && img.naturalWidth > 0 && img.getAttribute('src') === '/image/' + s;
  }, sha, { timeout: 5000 });
}

/* ----------------------------------------------------------------- main */

let srv, base;
try {
  srv = await startServer(lib);
  const st = await waitIdle(srv.url, items.length + corpusCount);
  ok(st.media === items.length + corpusCount, `server indexed ${items.length + corpusCount} files`, JSON.stringify(st));
  base = await front(srv.url);
  browser = await chromium.launch({
    executablePath: chromiumBin,
    headless: true,
    // A fresh profile (playwright makes a temporary --user-data-dir).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-quic'],
  });
} catch (e) {
  console.log('Bail out! ' + (e && e.message ? e.message : e));
  await cleanup();
  process.exit(1);
}

const listed = await getJSON(srv.url + '/list');
const visible = order.filter((it) => listed[it.sha]);
const months = expectedMonths(order);

await step('GET / serves the gallery page', async () => {
  const r = await fetch(base + '/');
  const body = await r.text();
  ok(r.status === 200 && /text\/html/.test(r.headers.get('content-type') || '') && body.includes('/static/app.js'),
     'GET / serves the gallery page', `${r.status} ${r.headers.get('content-type')}`);
});

await step('/list date filters', async () => {
  const count = async (p) => { try { return Object.keys(await getJSON(srv.url + p)).length; } catch (e) { return e.message; } };
  const inRange = (a, b) => items.filter((it) => it.date >= new Date(a + 'T00:00:00') &&
                                                 it.date < new Date(new Date(b + 'T00:00:00').getTime() + 86400e3)).length;
  eq(await count('/list?from=2021-01-01&to=2023-12-31'), inRange('2021-01-01', '2023-12-31'),
     '/list?from=&to= keeps only that date range (inclusive, local time)');
  eq(await count('/list?from=2023-12-31&to=2023-12-31'), 1, '/list?from=D&to=D is the whole local day D');
  eq(await count('/list/date/2023-12-31'), 1, '/list/date/<d> alias');
  eq(await count('/list/daterange/2023-12-01/2023-12-31'), inRange('2023-12-01', '2023-12-31'), '/list/daterange/<a>/<b> alias');
  eq(await count('/list?from=2024-01-01'), inRange('2024-01-01', '2099-12-31'), '/list?from= alone is open-ended');
});

/* Desktop */
const desk = await newPage({ viewport: { width: 1280, height: 800 } }, 'desktop');
const page = desk.page;

await step('timeline', async () => {
  const t0 = Date.now();
  await page.goto(base + '/');
  await page.waitForSelector('#timeline a.cell img.loaded', { timeout: 10000 });
  ok(true, `first thumbnail visible after ${Date.now() - t0} ms`);
  await page.waitForFunction(() => [...document.querySelectorAll('#timeline a.cell img')].slice(0, 8).every((i) => i.complete));
  const thumbs = await page.$$eval('#timeline img.loaded', (imgs) => imgs.map((i) => [i.naturalWidth, i.naturalHeight]));
  ok(thumbs.length > 0 && thumbs.every(([w, h]) => w === 256 && h === 256), `thumbnails are 256x256 PNGs (${thumbs.length} loaded)`);
  const heads = await collectHeadings(page);
  eq(heads.map((h) => h.label), months.map((m) => m.label), 'month headings, newest first');
  eq(heads.map((h) => h.count), months.map((m) => (m.n === 1 ? '1 item' : `${m.n} items`)), 'items per month');
  const countText = await page.textContent('#count');
  eq(countText, `${items.length + corpusCount} items`, 'item count in the top bar');
  const firstCells = await page.$$eval('#timeline a.cell', (as) => as.slice(0, 6).map((a) => a.getAttribute('href')));
  eq(firstCells, order.slice(0, 6).map((it) => '#/photo/' + it.sha), 'cells in date order');
  const video = order.find((it) => it.video);
  const badge = await page.$$eval('#timeline a.cell.video', (as) => as.map((a) => ({ href: a.getAttribute('href'), badge: !!a.querySelector('.badge') })));
  eq(badge, [{ href: '#/photo/' + video.sha, badge: true }], 'the video has a play badge');
  const alts = await page.$$eval('#timeline a.cell img', (imgs) => imgs.every((i) => i.alt.length > 10));
  ok(alts, 'every thumbnail has alt text');
  await shot(page, 'desktop-timeline');
});

await step('sidebar jump to month', async () => {
  const jul2015 = months.findIndex((m) => m.key === '2015-07');
  await page.click(`#months button[data-m="${jul2015}"]`);
  await page.waitForFunction(() => document.querySelector('#m-2015-07'), null, { timeout: 3000 });
  const pos = await page.evaluate(() => {
    const h = document.getElementById('m-2015-07').getBoundingClientRect();
    return { top: h.top, header: document.querySelector('.topbar').getBoundingClientRect().bottom };
  });
  ok(Math.abs(pos.top - pos.header) < 60 || pos.top > pos.header, 'July 2015 heading is in view after clicking it in the sidebar', JSON.stringify(pos));
  const current = await page.$eval('#months [aria-current]', (b) => b.getAttribute('aria-label'));
  ok(/July 2015/.test(current), 'the sidebar marks the month jumped to', current);
  await page.evaluate(() => window.scrollTo(0, 0));
});

await step('scrubber', async () => {
  const box = await page.locator('#scrubber').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height - 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height + 30, { steps: 3 });
  await page.waitForTimeout(100);
  const bubble = await page.textContent('#scrub-bubble');
  await page.mouse.up();
  await page.waitForTimeout(300);
  const atEnd = await page.evaluate(() => window.scrollY + innerHeight >= document.documentElement.scrollHeight - 4);
  ok(atEnd && bubble === months[months.length - 1].label, 'dragging the scrubber to the bottom reaches the oldest month', `${atEnd} "${bubble}"`);
  await page.keyboard.press('Escape');
  await page.evaluate(() => window.scrollTo(0, 0));
});

await step('viewer', async () => {
  await page.waitForSelector('#timeline a.cell img.loaded');
  const k = 3;
  await page.click(`#timeline a.cell[data-i="${k}"]`);
  await waitViewerOn(page, order[k].sha);
  await waitFullImage(page, order[k].sha);
  const dims = await page.$eval('#v-full', (i) => [i.naturalWidth, i.naturalHeight]);
  eq(dims, [order[k].w, order[k].h], 'clicking a thumbnail opens the viewer on that image (full size)');
  const cap = await page.textContent('#cap-title');
  eq(cap, path.basename(order[k].file), 'the caption names the file');
  const date = await page.textContent('#cap-date');
  ok(date.includes(String(order[k].date.getFullYear())), 'the caption has the date', date);
  await shot(page, 'desktop-viewer');

  await page.keyboard.press('ArrowRight');
  await waitViewerOn(page, order[k + 1].sha);
  await waitFullImage(page, order[k + 1].sha);
  ok(true, 'ArrowRight shows the next (older) item');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await waitViewerOn(page, order[k - 1].sha);
  ok(true, 'ArrowLeft twice shows the previous (newer) items');
  // A resource timing entry appears when its response has arrived: wait.
  const preloaded = order[k - 2].video || await page.waitForFunction((p) =>
    performance.getEntriesByType('resource').some((e) => new URL(e.name).pathname === p),
  '/image/' + order[k - 2].sha, { timeout: 5000 }).then(() => true, () => false);
  ok(preloaded, 'neighbours are preloaded');

  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('viewer').hidden && location.hash === '');
  ok(true, 'Escape closes the viewer and clears the URL');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute('href'));
  eq(focused, '#/photo/' + order[k - 1].sha, 'focus returns to the last item viewed');

  // Back button: open, then history.back() closes.
  await page.click(`#timeline a.cell[data-i="${k}"]`);
  await waitViewerOn(page, order[k].sha);
  await page.goBack();
  await page.waitForFunction(() => document.getElementById('viewer').hidden);
  ok(true, 'the Back button closes the viewer');
});

await step('shared link', async () => {
  const paris = items.find((it) => it.gps);
  await page.goto(base + '/#/photo/' + paris.sha);
  await waitViewerOn(page, paris.sha);
  await waitFullImage(page, paris.sha);
  ok(true, 'a link to #/photo/<sha> opens the viewer on reload');
  const place = await page.textContent('#cap-place');
  ok(/48\.8583\d*° N, 2\.2945\d*° E/.test(place), 'the caption shows the place', place);
  const entry = listed[paris.sha] || {};
  if ('make' in entry || 'model' in entry || 'camera' in entry) {
    const cam = await page.textContent('#cap-camera');
    ok(/D750/.test(cam), 'the caption shows the camera', cam);
  } else {
    skip('the caption shows the camera', '/list has no make/model fields yet');
  }
  await shot(page, 'desktop-viewer-caption');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('viewer').hidden && location.hash === '');
});

await step('keyboard', async () => {
  await page.goto(base + '/');
  await page.waitForSelector('#timeline a.cell');
  await page.keyboard.press('Tab');
  const skipLink = await page.evaluate(() => document.activeElement.className);
  eq(skipLink, 'skip', 'the first Tab reaches the "Skip to photos" link');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement.getAttribute('href'));
  eq(first, '#/photo/' + order[0].sha, 'then Tab reaches the newest item');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  await waitViewerOn(page, order[1].sha);
  ok(true, 'ArrowRight moves between thumbnails and Enter opens one');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('viewer').hidden);
});

await step('upload', async () => {
  await page.evaluate(() => { window.__noReload = true; });
  const date = new Date(2019, 4, 5, 10, 0, 0);
  const buf = makeJpeg(640, 480, 4242, { date: exifDate(date) });
  const sha = sha256(buf);
  await page.setInputFiles('#file-input', { name: 'new-upload.jpg', mimeType: 'image/jpeg', buffer: buf });
  await page.waitForSelector('#up-list li.created', { timeout: 15000 });
  eq(await page.textContent('#up-list li.created .up-state'), 'Backed up', 'an upload through the file input is reported as backed up');
  await page.waitForSelector(`#timeline a.cell[href="#/photo/${sha}"], #months button[aria-label^="May 2019"]`, { timeout: 10000 });
  const labels = await page.$$eval('#months button', (bs) => bs.map((b) => b.getAttribute('aria-label')));
  ok(labels.includes('May 2019, 1 items') || labels.includes('May 2019, 1 item') || labels.some((l) => l.startsWith('May 2019')),
     'the uploaded photo appears in the timeline under May 2019', labels.join('; '));
  const idx = labels.findIndex((l) => l.startsWith('May 2019'));
  ok(idx > 0 && labels[idx - 1].startsWith('September 2019') && labels[idx + 1].startsWith('May 2017'),
     'in the right place (between September 2019 and May 2017)', labels.join('; '));
  ok(await page.evaluate(() => window.__noReload === true), 'without reloading the page');
  await page.evaluate(() => { const m = [...document.querySelectorAll('#months button')].find((b) => b.getAttribute('aria-label').startsWith('May 2019')); m.click(); });
  await page.waitForSelector(`#timeline a.cell[href="#/photo/${sha}"] img.loaded`, { timeout: 5000 });
  ok(true, 'its thumbnail loads');
  await shot(page, 'desktop-upload');

  await page.setInputFiles('#file-input', { name: 'new-upload-again.jpg', mimeType: 'image/jpeg', buffer: buf });
  await page.waitForSelector('#up-list li.existed', { timeout: 15000 });
  const st = await page.textContent('#up-list li.existed .up-state');
  ok(st.startsWith('Already backed up'), 'the same file again is "already backed up", not an error', st);
  ok((await page.$$('#up-list li.failed')).length === 0, 'no upload failed');
  const title = await page.textContent('#up-title');
  ok(/1 backed up · 1 already backed up/.test(title), 'the uploads panel sums up', title);
  await shot(page, 'desktop-upload-again');
  await page.click('#up-close');
});

await step('live: another client\'s upload, a file copied in and a file deleted show without a reload', async () => {
  await page.evaluate(() => { window.__noReload = true; });
  const label = (d) => `${monthLabel(d)}`;
  const a = new Date(2005, 2, 3, 12, 0, 0), b = new Date(2006, 6, 7, 12, 0, 0);
  ok(!months.some((m) => m.key === monthKey(a) || m.key === monthKey(b)), 'the test months are empty at first');
  const hasMonth = (d) => page.evaluate((l) => [...document.querySelectorAll('#months button')]
    .some((x) => (x.getAttribute('aria-label') || '').startsWith(l)), label(d));
  // Another client's upload (not this page's).
  const up = makeJpeg(320, 240, 5151, { date: exifDate(a) });
  const form = new FormData();
  form.append('file', new Blob([up], { type: 'image/jpeg' }), 'other-client.jpg');
  const r = await fetch(srv.url + '/image/other-client.jpg', { method: 'PUT', body: form });
  ok(r.status === 201, 'another client uploads a photo', String(r.status));
  await page.waitForFunction((l) => [...document.querySelectorAll('#months button')]
    .some((x) => (x.getAttribute('aria-label') || '').startsWith(l)), label(a), { timeout: 15000 });
  ok(true, `it appears under ${label(a)} by itself`);
  // A file copied into the folder (the server's folder watch, then the feed).
  const copied = path.join(lib, 'copied-in.jpg');
  fs.writeFileSync(copied + '.part', makeJpeg(320, 240, 5252, { date: exifDate(b) }));
  fs.renameSync(copied + '.part', copied);
  await page.waitForFunction((l) => [...document.querySelectorAll('#months button')]
    .some((x) => (x.getAttribute('aria-label') || '').startsWith(l)), label(b), { timeout: 15000 });
  ok(true, `a file copied into the folder appears under ${label(b)}`);
  const count = await page.textContent('#count');
  fs.unlinkSync(copied);
  await page.waitForFunction((l) => ![...document.querySelectorAll('#months button')]
    .some((x) => (x.getAttribute('aria-label') || '').startsWith(l)), label(b), { timeout: 15000 });
  ok(!(await hasMonth(b)) && (await hasMonth(a)), 'deleted from the folder: it goes, the upload stays');
  ok(await page.textContent('#count') !== count, 'the count follows', count);
  ok(await page.evaluate(() => window.__noReload === true), 'all without reloading the page');
});

await step('trash: delete a selection and undo, delete from the viewer, restore and delete for good in the trash view', async () => {
  await page.goto(base + '/');
  await page.waitForSelector('#timeline a.cell');
  const da = new Date(2004, 5, 6, 12, 0, 0), db = new Date(2004, 6, 8, 12, 0, 0);
  const put = async (buf, name) => {
    const f = new FormData();
    f.append('file', new Blob([buf], { type: 'image/jpeg' }), name);
    return (await fetch(srv.url + '/image/' + name, { method: 'PUT', body: f })).status;
  };
  const A = makeJpeg(320, 240, 6161, { date: exifDate(da) }), B = makeJpeg(320, 240, 6262, { date: exifDate(db) });
  const sa = sha256(A), sb = sha256(B);
  ok(await put(A, 'trash-a.jpg') === 201 && await put(B, 'trash-b.jpg') === 201, 'two photos uploaded by another client');
  const hasMonth = (d) => page.evaluate((l) => [...document.querySelectorAll('#months button')]
    .some((x) => (x.getAttribute('aria-label') || '').startsWith(l)), monthLabel(d));
  const waitMonth = (d, there) => page.waitForFunction(([l, t]) => [...document.querySelectorAll('#months button')]
    .some((x) => (x.getAttribute('aria-label') || '').startsWith(l)) === t, [monthLabel(d), there], { timeout: 15000 });
  const jump = (d) => page.evaluate((l) => {
    const m = [...document.querySelectorAll('#months button')].find((b) => (b.getAttribute('aria-label') || '').startsWith(l));
    if (m) m.click();
  }, monthLabel(d));
  const cellOf = (s) => `#timeline a.cell[href="#/photo/${s}"]`;
  const inTrash = async () => (await getJSON(srv.url + '/api/trash')).items.map((e) => e.sha256);
  const toastText = () => page.textContent('#toast');
  await waitMonth(da, true);
  await waitMonth(db, true);
  const listed0 = await getJSON(srv.url + '/list');
  const fileA = path.join(lib, listed0[sa].file_path), fileB = path.join(lib, listed0[sb].file_path);
  ok(fs.existsSync(fileA) && fs.existsSync(fileB), 'both are on disk', fileA);

  // A tile's check circle starts a selection; Delete moves it to the trash.
  await jump(da);
  await page.waitForSelector(cellOf(sa));
  await page.hover(cellOf(sa));
  await page.click(cellOf(sa) + ' .check');
  await page.waitForSelector('#sel-bar:not([hidden])');
  eq(await page.textContent('#sel-count'), '1 selected', 'the check circle selects the tile (the viewer stays closed)');
  ok(await page.isHidden('#viewer'), 'without opening the viewer');
  await shot(page, 'desktop-selection');
  await page.click('#sel-delete');
  await page.waitForSelector('#toast:not([hidden]) .toast-action');
  ok(/1 item moved to the trash/.test(await toastText()), 'a toast says it went to the trash, with Undo', await toastText());
  await waitMonth(da, false);
  ok(true, 'the photo leaves the timeline at once');
  ok((await inTrash()).includes(sa) && !(await getJSON(srv.url + '/list'))[sa], 'the server has it in the trash, not in /list');
  ok(!fs.existsSync(fileA), 'the file left its place on disk');
  await page.click('#toast .toast-action');
  await waitMonth(da, true);
  ok(!(await inTrash()).includes(sa) && fs.existsSync(fileA), 'Undo brings it back, to the timeline and to its path');

  // The viewer's Delete key: gone, and the viewer moves on.
  await page.goto(base + '/#/photo/' + sb);
  await waitViewerOn(page, sb);
  ok(await page.isVisible('#v-delete'), 'the viewer offers "Move to the trash"');
  await page.keyboard.press('Delete');
  await page.waitForFunction((s) => location.hash !== '#/photo/' + s, sb, { timeout: 10000 });
  await page.waitForSelector('#toast:not([hidden])');
  ok(/trash-b\.jpg.* moved to the trash/.test(await toastText()), 'Delete in the viewer: the toast names the file', await toastText());
  if (!(await page.isHidden('#viewer'))) { await page.keyboard.press('Escape'); await page.waitForFunction(() => document.getElementById('viewer').hidden); }
  await waitMonth(db, false);

  // Select mode: a click on a tile selects it.
  await jump(da);
  await page.click('#select-btn');
  await page.click(cellOf(sa));
  eq(await page.textContent('#sel-count'), '1 selected', 'after Select, a click on a tile selects it');
  await page.click('#sel-delete');
  await waitMonth(da, false);
  await page.waitForFunction(() => document.getElementById('trash-count').textContent === '2', null, { timeout: 10000 });
  ok(true, 'the sidebar counts 2 in the trash');

  // The trash view: most recent first, when each goes for good.
  await page.click('#trash-link');
  await page.waitForSelector('#trash:not([hidden]) .t-tile');
  ok(/#\/trash$/.test(page.url()) && await page.isHidden('#timeline'), 'the trash view has its own address (#/trash) and hides the timeline', page.url());
  // The last deleted first (both may have gone in the same second).
  const tnames = await page.$$eval('#trash-grid .t-name', (n) => n.map((x) => x.textContent));
  const tat = Object.fromEntries((await getJSON(srv.url + '/api/trash')).items.map((e) => [e.filename || e.name, e.trashed_at]));
  ok(tnames.length === 2 && [...tnames].sort().join() === 'trash-a.jpg,trash-b.jpg' &&
     tat[tnames[0]] >= tat[tnames[1]], 'the trash lists both, the last deleted first', JSON.stringify([tnames, tat]));
  const meta = await page.textContent('#trash-grid .t-tile');
  ok(/Deleted for good on/.test(meta), 'each says when it goes for good', meta);
  await page.waitForSelector('#trash-grid img.loaded', { timeout: 5000 });
  ok(true, 'with its thumbnail');
  await page.click(`#trash-grid .t-tile[data-sha="${sa}"]`);
  ok(await page.isVisible('#sel-restore') && await page.isVisible('#sel-purge') && await page.isHidden('#sel-delete'),
     'a tile selected in the trash offers Restore and Delete forever');
  await shot(page, 'desktop-trash');
  await page.click('#sel-restore');
  await page.waitForSelector(`#trash-grid .t-tile[data-sha="${sa}"]`, { state: 'detached', timeout: 10000 });
  ok(/1 item restored/.test(await toastText()), 'Restore: a toast says so', await toastText());
  ok(!(await inTrash()).includes(sa) && (await getJSON(srv.url + '/list'))[sa] && fs.existsSync(fileA), 'restored: in /list and at its path again');
  page.once('dialog', (d) => d.accept());
  await page.click(`#trash-grid .t-tile[data-sha="${sb}"]`);
  await page.click('#sel-purge');
  await page.waitForSelector('#trash-state:not([hidden])', { timeout: 10000 });
  ok((await inTrash()).length === 0 && !(await getJSON(srv.url + '/list'))[sb], 'Delete forever (confirmed): gone from the trash and the list');
  ok(!fs.existsSync(fileB) && !fs.readdirSync(path.join(lib, '.mediaindex', 'trash')).some((f) => f.includes('trash-b')), 'and from the disk');
  await page.click('#photos-link');
  await page.waitForSelector('#timeline a.cell');
  ok(await page.isHidden('#trash') && await hasMonth(da) && !(await hasMonth(db)), 'Photos: back to the timeline, the restored photo in it');

  // Empty trash.
  const r = await fetch(srv.url + '/image/' + sa, { method: 'DELETE' });
  ok(r.status === 200 || r.status === 204, 'another client deletes the restored one', String(r.status));
  await waitMonth(da, false);
  await page.click('#trash-link');
  await page.waitForSelector(`#trash-grid .t-tile[data-sha="${sa}"]`, { timeout: 10000 });
  page.once('dialog', (d) => d.accept());
  await page.click('#trash-empty');
  await page.waitForSelector('#trash-state:not([hidden])', { timeout: 10000 });
  ok((await inTrash()).length === 0 && !fs.existsSync(fileA), 'Empty trash (confirmed) deletes everything in it for good');
  await page.goBack();
  await page.waitForSelector('#timeline a.cell');
  ok(await page.isHidden('#trash'), 'Back leaves the trash view');
});

await step('similar: copies of a photo grouped, the original marked; the copies to the trash', async () => {
  const dir = path.join(lib, 'similar');
  fs.mkdirSync(dir);
  const made = (name, ...args) =>
    tool('ffmpeg', ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'mandelbrot=s=1200x900:start_scale=2.5',
                    '-frames:v', '1', ...args, path.join(dir, name)]);
  if (!(await made('original.jpg', '-q:v', '2') && await made('small.jpg', '-vf', 'scale=600:450', '-q:v', '6') &&
        await made('low.jpg', '-q:v', '20'))) {
    if (process.env.CI) ok(false, 'ffmpeg makes the photos (scripts/install-deps.sh --tests)');
    else skip('similar', 'ffmpeg missing (scripts/install-deps.sh --tests)');
    return;
  }
  const sha = (n) => sha256(fs.readFileSync(path.join(dir, n)));
  const [so, ss, sl] = ['original.jpg', 'small.jpg', 'low.jpg'].map(sha);
  await fetch(srv.url + '/api/rescan', { method: 'POST' });
  for (const t0 = Date.now(); ;) {
    const l = await getJSON(srv.url + '/list');
    if (l[so] && l[ss] && l[sl]) break;
    if (Date.now() - t0 > 30000) throw new Error('the photos were not indexed in 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  await page.click('#similar-link');
  const tile = (s) => `#similar-groups .t-tile[data-sha="${s}"]`;
  await page.waitForSelector(tile(so), { timeout: 15000 });
  ok(/#\/similar$/.test(page.url()) && await page.isHidden('#timeline'), 'the Similar view has its own address (#/similar) and hides the timeline', page.url());
  const group = await page.$eval(tile(so), (b) => [...b.closest('.sim-group').querySelectorAll('.t-tile')].map((t) => t.dataset.sha));
  ok(group.length === 3 && group[0] === so && group.includes(ss) && group.includes(sl), 'the photo and its two copies in one group, the original first', JSON.stringify(group));
  eq(await page.textContent(tile(so) + ' .sim-badge'), 'Original', 'the original is marked');
  ok(!(await page.$(tile(ss) + ' .sim-badge')) && /1200 × 900/.test(await page.textContent(tile(so))) &&
     /600 × 450/.test(await page.textContent(tile(ss))), 'the copies are not, and each says its pixels');
  await page.click(tile(ss));
  await page.click(tile(sl));
  eq(await page.textContent('#sel-count'), '2 selected', 'a click selects a copy');
  ok(await page.isVisible('#sel-delete') && await page.isHidden('#sel-restore') && await page.isHidden('#sel-share'),
     'the selection offers Delete');
  await shot(page, 'desktop-similar');
  await page.click('#sel-delete');
  await page.waitForSelector(tile(so), { state: 'detached', timeout: 10000 });
  ok(/2 items moved to the trash/.test(await page.textContent('#toast')), 'Delete: the copies go to the trash, with a toast', await page.textContent('#toast'));
  const trashed = (await getJSON(srv.url + '/api/trash')).items.map((e) => e.sha256);
  ok(trashed.includes(ss) && trashed.includes(sl) && !trashed.includes(so), 'the server has the copies in the trash, the original not');
  await page.click('#photos-link');
  await page.waitForSelector('#timeline a.cell');
  ok(await page.isHidden('#similar'), 'Photos: back to the timeline');
  // Leave the library as it was for the steps after.
  await fetch(srv.url + '/api/trash', { method: 'DELETE' });
  await fetch(srv.url + '/image/' + so, { method: 'DELETE' });
  await fetch(srv.url + '/api/trash', { method: 'DELETE' });
});

await step('date filter', async () => {
  await page.goto(base + '/');
  await page.waitForSelector('#timeline a.cell');
  await page.click('#filter-btn');
  await page.fill('#from', '2021-01-01');
  await page.fill('#to', '2023-12-31');
  const resp = page.waitForResponse((r) => r.url().includes('/list?') &&
    r.url().includes('from=2021-01-01&to=2023-12-31'));
  await page.click('#filter-panel button[type=submit]');
  ok((await resp).status() === 200, 'the filter asks the server: /list?...from=2021-01-01&to=2023-12-31');
  await page.waitForFunction(() => !document.querySelector('#m-2024-11'));
  const heads = await collectHeadings(page);
  const want = months.filter((m) => m.key >= '2021-01' && m.key <= '2023-12');
  eq(heads.map((h) => h.label), want.map((m) => m.label), 'the date filter narrows the grid');
  ok(new URL(page.url()).search === '?from=2021-01-01&to=2023-12-31', 'the URL keeps the filter', page.url());
  await shot(page, 'desktop-filter');
  await page.reload();
  await page.waitForSelector('#timeline a.cell');
  eq((await collectHeadings(page)).map((h) => h.label), want.map((m) => m.label), 'a reload keeps the filter');
  await page.click('#chip-x');
  await page.waitForSelector('#m-2024-11');
  ok(true, 'clearing the filter shows everything again');
});
await desk.ctx.close();

/* Phone */
await step('phone', async () => {
  const { ctx, page: ph } = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }, 'phone');
  await ph.goto(base + '/');
  await ph.waitForSelector('#timeline a.cell img.loaded');
  const width = await ph.evaluate(() => document.documentElement.scrollWidth);
  ok(width <= 390, 'no horizontal scrolling at 390 px', width);
  const perRow = await ph.$$eval('#timeline .row', (rows) => rows.slice(1, 4).map((r) => r.children.length));
  ok(perRow.every((n) => n >= 2 && n <= 5), 'two to five thumbnails per row on a phone', perRow.join(','));
  // Twice as many device pixels: a square over 150 CSS px takes the 512 px
  // JPEG, a smaller one the 256 px PNG.
  const picks = await ph.$$eval('#timeline a.cell img', (imgs) => imgs
    .filter((i) => i.style.width)
    .map((i) => [parseFloat(i.style.width), i.getAttribute('src') || i.dataset.src || '']));
  const large = picks.filter(([, src]) => src.endsWith('?size=512')).length;
  ok(picks.length > 0 && picks.every(([side, src]) => src.endsWith('?size=512') === side * 2 > 300),
     `on a HiDPI phone the 512 px thumbnail goes to squares over 150 px (${large} of ${picks.length})`,
     JSON.stringify(picks.slice(0, 12)));
  await shot(ph, 'phone-timeline');
  await ph.tap('#menu-btn');
  await ph.waitForSelector('#sidebar.open');
  await ph.waitForTimeout(300);
  await shot(ph, 'phone-drawer');
  const jul2015 = months.findIndex((m) => m.key === '2015-07');
  await ph.tap(`#months button[data-m="${jul2015}"]`);
  await ph.waitForSelector('#m-2015-07');
  ok(!(await ph.$('#sidebar.open')), 'the month drawer jumps and closes');
  await ph.evaluate(() => window.scrollTo(0, 0));
  await ph.waitForSelector('#timeline a.cell[data-i="2"] img.loaded');
  await ph.tap('#timeline a.cell[data-i="2"]');
  await waitViewerOn(ph, order[2].sha);
  await waitFullImage(ph, order[2].sha);
  await shot(ph, 'phone-viewer');
  // Swipe left: the next item.
  const cdp = await ctx.newCDPSession(ph);
  const touch = async (type, x, y) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [{ x, y }] });
  await touch('touchStart', 300, 420);
  for (let x = 280; x >= 80; x -= 40) await touch('touchMove', x, 425);
  await touch('touchEnd');
  await waitViewerOn(ph, order[3].sha);
  ok(true, 'a swipe to the left shows the next item');
  await ctx.close();
});

/* Empty library and unreachable server */
await step('empty and error states', async () => {
  const emptyDir = path.join(tmp, 'empty');
  fs.mkdirSync(emptyDir);
  const s2 = await startServer(emptyDir);
  await waitIdle(s2.url, 0);
  const b2 = await front(s2.url);
  const { ctx, page: p } = await newPage({ viewport: { width: 1280, height: 800 } }, 'empty');
  await p.goto(b2 + '/');
  await p.waitForSelector('#state:not([hidden])');
  eq(await p.textContent('#state-title'), 'No photos yet', 'an empty library shows a friendly empty state');
  await shot(p, 'desktop-empty');
  await ctx.close();
  s2.proc.kill('SIGTERM');

  // The server goes away: /list fails.  (Console errors expected here.)
  const { ctx: c3, page: p3 } = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }, 'error', false);
  await p3.route('**/list*', (r) => r.abort('connectionrefused'));
  await p3.goto(base + '/');
  await p3.waitForSelector('#state:not([hidden])');
  eq(await p3.textContent('#state-title'), 'Cannot reach the server', 'an unreachable server shows an error state');
  await shot(p3, 'phone-error');
  await p3.unroute('**/list*');
  await p3.click('#state-action');
  await p3.waitForSelector('#timeline a.cell');
  ok(true, '"Try again" recovers when the server is back');
  await c3.close();
});

/* Files that could not be read or shown are listed, with why */
await step('problems: the files that could not be read', async () => {
  const dir = path.join(tmp, 'problems');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'fine.jpg'), makeJpeg(64, 48, 7));
  fs.writeFileSync(path.join(dir, 'broken.jpg'), Buffer.from('\xff\xd8\xff\xe0 this is no JPEG', 'latin1'));
  const s4 = await startServer(dir);
  const st = await waitIdle(s4.url, 2);
  eq(st.problems, 1, '/status counts the problems');
  const b4 = await front(s4.url);
  const { ctx, page: p } = await newPage({ viewport: { width: 1280, height: 800 } }, 'problems');
  await p.goto(b4 + '/');
  await p.waitForSelector('#problems-btn:not([hidden])');
  eq(await p.textContent('#problems-btn'), '1 file could not be read', 'the top bar says how many files could not be read');
  await p.click('#problems-btn');
  await p.waitForSelector('#problems:not([hidden]) #pr-list li');
  const rows = await p.$$eval('#pr-list li', (lis) => lis.map((li) => li.textContent));
  ok(rows.length === 1 && rows[0].includes('broken.jpg') && /no preview could be made: .*decoded/.test(rows[0]),
     'the list names the file and why', JSON.stringify(rows));
  await shot(p, 'desktop-problems');
  await p.click('#pr-close');
  ok(await p.$eval('#problems', (e) => e.hidden), 'the list closes');
  await ctx.close();
  s4.proc.kill('SIGTERM');
});

/* Phone formats: a HEIC photo, a TIFF and a video, through mi-decode */
await step('phone formats: HEIC, TIFF and video in the timeline and the viewer', async () => {
  const dir = path.join(tmp, 'formats');
  fs.mkdirSync(dir);
  const src = path.join(dir, 'src.jpg');
  fs.writeFileSync(src, makeJpeg(320, 160, 11));
  const make = tool;
  const made = await make('heif-enc', ['-q', '80', '-o', path.join(dir, 'photo.heic'), src]) &&
    await make('ffmpeg', ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=3',
                    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', path.join(dir, 'clip.mp4')]) &&
    await make('ffmpeg', ['-y', '-loglevel', 'error', '-i', src, path.join(dir, 'scan.tif')]) &&
    // An iPhone-like HEVC clip with sound: browsers without HEVC play the
    // sound alone unless the gallery notices.
    await make('ffmpeg', ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=2',
                    '-f', 'lavfi', '-i', 'sine=d=2', '-c:v', 'libx265', '-x265-params', 'log-level=error',
                    '-tag:v', 'hvc1', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', path.join(dir, 'iphone.mov')]);
  fs.unlinkSync(src);
  // A Live Photo: a JPEG whose maker note carries Apple's id, and a MOV
  // whose QuickTime key carries the same.
  const LIVE = '0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9';
  fs.writeFileSync(path.join(dir, 'live.jpg'), makeJpeg(320, 240, 12, { make: 'Apple', model: 'iPhone 12', liveId: LIVE }));
  const madeLive = await make('ffmpeg', ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=2',
                                   '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-metadata',
                                   'com.apple.quicktime.content.identifier=' + LIVE, '-movflags', 'use_metadata_tags',
                                   path.join(dir, 'live.mov')]);
  if (!made || !madeLive) {
    if (process.env.CI) ok(false, 'heif-enc and ffmpeg make the fixtures (scripts/install-deps.sh --tests)');
    else skip('phone formats', 'heif-enc or ffmpeg missing (scripts/install-deps.sh --tests)');
    return;
  }
  const s5 = await startServer(dir);
  await waitIdle(s5.url, 5);
  const lst = await getJSON(s5.url + '/list');
  const shaOf = Object.fromEntries(Object.entries(lst).map(([h, e]) => [e.filename, h]));
  eq([lst[shaOf['live.jpg']].live_photo_id, lst[shaOf['live.mov']].live_photo_id], [LIVE, LIVE],
     "/list gives both halves of the Live Photo Apple's id");
  const b5 = await front(s5.url);
  const { ctx, page: p } = await newPage({ viewport: { width: 1280, height: 800 } }, 'formats');
  await p.goto(b5 + '/');
  await p.waitForFunction(() => document.querySelectorAll('#timeline a.cell img.loaded').length === 5, null, { timeout: 10000 });
  // Each tile: the 256 px PNG square, or (a tile wider than 300 device
  // pixels) the 512 px JPEG of the picture as displayed, never enlarged.
  const tiles = await p.$$eval('#timeline a.cell img.loaded', (imgs) => imgs.map((i) =>
    [i.getAttribute('src'), i.naturalWidth, i.naturalHeight]));
  const fit512 = (w, h) => (w <= 512 && h <= 512 ? [w, h]
    : w >= h ? [512, Math.round(h * 512 / w)] : [Math.round(w * 512 / h), 512]);
  const want = tiles.map(([src]) => {
    const e = lst[src.slice('/thumbnail/'.length, '/thumbnail/'.length + 64)];
    return [src, ...(src.endsWith('?size=512') ? fit512(e.width, e.height) : [256, 256])];
  });
  eq(tiles, want, 'the HEIC, the TIFF, two videos and the Live Photo all have a thumbnail in the timeline, at its size');
  const sides = await p.$$eval('#timeline a.cell img.loaded', (imgs) => imgs.map((i) =>
    [parseFloat(i.style.width), i.getAttribute('src').endsWith('?size=512')]));
  ok(sides.some(([, large]) => large) && sides.every(([side, large]) => large === side > 300),
     'squares over 300 px load the 512 px thumbnail, smaller ones the 256 px PNG', JSON.stringify(sides));
  eq(await p.$$eval('#timeline a.cell', (cs) => cs.length), 5, "the Live Photo's video is not a tile of its own");
  eq(await p.$eval(`#timeline a.cell[href="#/photo/${shaOf['live.jpg']}"] .badge-live`, (b) => b.textContent), 'LIVE',
     'the Live Photo is marked LIVE');
  const badge = await p.$eval(`#timeline a.cell[href="#/photo/${shaOf['clip.mp4']}"] .badge`, (b) => b.textContent);
  eq(badge, '0:03', "the video's tile shows its duration");
  await shot(p, 'desktop-formats');
  for (const n of ['photo.heic', 'scan.tif']) {
    await p.click(`#timeline a.cell[href="#/photo/${shaOf[n]}"]`);
    await waitViewerOn(p, shaOf[n]);
    await p.waitForFunction((s) => {
      const img = document.getElementById('v-full');
      return !img.hidden && img.complete && img.naturalWidth > 0 && img.getAttribute('src') === '/preview/' + s;
    }, shaOf[n], { timeout: 10000 });
    const dims = await p.$eval('#v-full', (i) => [i.naturalWidth, i.naturalHeight]);
    eq(dims, [320, 160], `the viewer shows ${n} through its JPEG preview`);
    if (n === 'photo.heic') await shot(p, 'desktop-viewer-heic');
    await p.keyboard.press('Escape');
    await p.waitForFunction(() => document.getElementById('viewer').hidden);
  }
  await p.click(`#timeline a.cell[href="#/photo/${shaOf['live.jpg']}"]`);
  await waitViewerOn(p, shaOf['live.jpg']);
  await waitFullImage(p, shaOf['live.jpg']);
  {
    const b = await p.$eval('#v-full', (i) => { const r = i.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; });
    await p.mouse.move(5, 5);
    await p.mouse.move(b[0], b[1], { steps: 4 });
  }
  await p.waitForFunction((s) => {
    const v = document.getElementById('v-video');
    return !v.hidden && v.getAttribute('src') === '/image/' + s;
  }, shaOf['live.mov'], { timeout: 5000 });
  ok(true, "pointing at a Live Photo plays its motion (the paired video)");
  await p.keyboard.press('Escape');
  await p.waitForFunction(() => document.getElementById('viewer').hidden);
  await p.click(`#timeline a.cell[href="#/photo/${shaOf['clip.mp4']}"]`);
  await waitViewerOn(p, shaOf['clip.mp4']);
  const poster = await p.$eval('#v-video', (v) => v.getAttribute('poster'));
  eq(poster, '/thumbnail/' + shaOf['clip.mp4'] + '?size=512', 'the video plays with its 512 px poster frame');
  await p.waitForFunction(() => document.getElementById('v-video').videoWidth > 0, null, { timeout: 10000 });
  ok(await p.$eval('#v-note', (n) => n.hidden), 'an H.264 clip plays, with no note');
  await p.keyboard.press('Escape');
  await p.waitForFunction(() => document.getElementById('viewer').hidden);
  // The HEVC clip: a browser that decodes HEVC shows its picture; one that
  // cannot keeps the poster and says so, instead of playing the sound alone.
  await p.click(`#timeline a.cell[href="#/photo/${shaOf['iphone.mov']}"]`);
  await waitViewerOn(p, shaOf['iphone.mov']);
  const hevc = await p.$eval('#v-video', (v) => v.canPlayType('video/mp4; codecs="hvc1.1.6.L120.B0"'));
  await p.waitForFunction(() => {
    const v = document.getElementById('v-video');
    return v.videoWidth > 0 || !document.getElementById('v-note').hidden;
  }, null, { timeout: 10000 });
  const seen = await p.$eval('#v-video', (v) => ({
    note: document.getElementById('v-note').hidden ? '' : document.getElementById('v-note').textContent,
    width: v.videoWidth, poster: v.getAttribute('poster'), hidden: v.hidden,
    playing: !!v.getAttribute('src') && !v.paused, controls: v.controls }));
  if (seen.width > 0) {
    ok(hevc !== '', `this browser plays HEVC (canPlayType ${JSON.stringify(hevc)}) and shows its picture`);
  } else {
    ok(/cannot play this video \(HEVC\)/.test(seen.note), `the viewer says the HEVC clip cannot be played: ${JSON.stringify(seen.note)}`);
    eq([seen.poster, seen.hidden, seen.playing, seen.controls], ['/thumbnail/' + shaOf['iphone.mov'] + '?size=512', false, false, false],
       'the poster stays, with no play button, and nothing plays (no sound without a picture)');
  }
  await shot(p, 'desktop-viewer-hevc');
  await p.keyboard.press('Escape');
  await p.waitForFunction(() => document.getElementById('viewer').hidden);
  // The upload picker takes exactly what the server takes (GET /api/formats).
  const accept = await p.$eval('#file-input', (i) => i.accept.split(','));
  ok(['.dng', '.heic', '.hif', '.mts', '.cr3'].every((x) => accept.includes(x)),
     `the picker offers raw, HEIF and camera video files: ${accept.join(',')}`);
  await p.setInputFiles('#file-input', [{ name: 'drawing.svg', mimeType: 'image/svg+xml', buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') }]);
  await p.waitForFunction(() => [...document.querySelectorAll('#up-list li')].some((li) => /drawing\.svg/.test(li.textContent)), null, { timeout: 5000 });
  const svgState = await p.$$eval('#up-list li', (lis) => lis.filter((li) => /drawing\.svg/.test(li.textContent)).map((li) => li.querySelector('.up-state').textContent));
  eq(svgState, ['Skipped: not a photo or video'], 'an SVG (image/ to the browser, refused by the server) is skipped, not sent');
  await ctx.close();
  s5.proc.kill('SIGTERM');
});

/* A full disk: the library is served read-only, and the top bar says so */
await step('a full disk: the gallery shows "Disk full: read-only" and still shows the photos', async () => {
  const dir = path.join(tmp, 'fulldisk');
  fs.mkdirSync(dir);
  const mounted = process.getuid && process.getuid() === 0 &&
    (() => { try { execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir], { stdio: 'ignore' }); return true; } catch { return false; } })();
  if (!mounted) { skip('the read-only pill', 'cannot mount a small tmpfs here (not root)'); return; }
  let s6;
  try {
    fs.writeFileSync(path.join(dir, 'kept.jpg'), makeJpeg(320, 240, 21));
    s6 = await startServer(dir);
    await waitIdle(s6.url, 1);
    s6.proc.kill('SIGTERM');
    await new Promise((r) => s6.proc.once('exit', r));
    // Fill the disk to its last block, then start again.
    const fd = fs.openSync(path.join(dir, 'filler.bin'), 'w');
    for (const size of [1 << 20, 4096, 512]) {
      const buf = Buffer.alloc(size);
      try { for (;;) fs.writeSync(fd, buf); } catch { /* full */ }
    }
    fs.closeSync(fd);
    s6 = await startServer(dir);
    const st = await waitIdle(s6.url, 1);
    eq(st.writable, false, '/status says the catalog cannot be written');
    const { ctx, page: p } = await newPage({ viewport: { width: 1280, height: 800 } }, 'fulldisk');
    await p.goto((await front(s6.url)) + '/');
    await p.waitForFunction(() => !document.getElementById('readonly').hidden, null, { timeout: 10000 });
    eq(await p.$eval('#readonly', (e) => e.textContent), 'Disk full: read-only', 'the top bar says the disk is full');
    await p.waitForFunction(() => document.querySelectorAll('#timeline a.cell img.loaded').length === 1, null, { timeout: 10000 });
    ok(true, 'the photo is still shown, with its thumbnail');
    await shot(p, 'desktop-disk-full');
    // Room again: the pill goes by itself (the page asks /status again).
    fs.unlinkSync(path.join(dir, 'filler.bin'));
    await p.waitForFunction(() => document.getElementById('readonly').hidden, null, { timeout: 20000 });
    ok(true, 'the pill goes once there is room');
    await ctx.close();
  } finally {
    if (s6 && s6.proc.exitCode === null) s6.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    try { execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); } catch { /* gone */ }
  }
});

eq(consoleErrors, [], 'no console errors');

console.log(`1..${count}`);
console.log(`# screenshots in ${shots}`);
await cleanup();
process.exit(failures ? 1 : 0);
