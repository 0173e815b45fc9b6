#!/usr/bin/env node
// The gallery over a library of many months without downloading it: the
// page lays the timeline out from GET /api/timeline and fetches only the
// months near the viewport (GET /list?format=ndjson&from=..&to=..); a jump
// (sidebar, scrubber) fetches the month jumped to; the viewer steps across
// months, fetching the next one when it is not held; a link to an item of
// a month not fetched opens it (GET /api/items/<sha>).  Prints TAP.
//
//   MI_SERVER=build/server/media-server node tests/browser/timeline.test.mjs
//
// Environment: as gallery.test.mjs (MI_SERVER, CHROMIUM, MI_TEST_BUILD_DIR,
// MI_TEST_KEEP).
import fs from 'node:fs';
import path from 'node:path';
import { makeJpeg, exifDate } from './fixtures.mjs';
import { sha256 } from './corpus.mjs';
import { harness } from './harness.mjs';

const TZ = 'Europe/Berlin';      // server, browser and this script agree
process.env.TZ = TZ;
const t = await harness('timeline');
const { ok, step } = t;
const eq = (a, b, name) => ok(JSON.stringify(a) === JSON.stringify(b), name,
  `got      ${JSON.stringify(a)}\nexpected ${JSON.stringify(b)}`);

// 80 months (January 2010 to August 2016), 12 small photos each: about
// three rows, some 600 px, a month at 1280x800.
const MONTHS = 80, PER = 12;
const lib = path.join(t.tmp, 'library');
const items = [];
for (let k = 0; k < MONTHS; k++) {
  const y = 2010 + Math.floor(k / 12), m = k % 12;
  const folder = path.join(lib, `${y}`, String(m + 1).padStart(2, '0'));
  fs.mkdirSync(folder, { recursive: true });
  for (let i = 0; i < PER; i++) {
    const seed = 1000 + k * PER + i;
    const date = new Date(y, m, 1 + i * 2, 12, i, 0);
    const buf = makeJpeg(24, 16, seed, { date: exifDate(date) });
    fs.writeFileSync(path.join(folder, `P${seed}.jpg`), buf);
    items.push({ sha: sha256(buf), date, key: `${y}-${String(m + 1).padStart(2, '0')}` });
  }
}
// Newest first, ties by hash: the gallery's order.
const order = items.sort((a, b) => (b.date - a.date) || (a.sha < b.sha ? -1 : 1));
const monthKeys = [...new Set(order.map((it) => it.key))];

let srv;
try {
  srv = await t.startServer(lib);
  const t0 = Date.now();
  for (;;) {
    const st = await fetch(srv.url + '/status').then((r) => r.json()).catch(() => ({}));
    if (st.state === 'idle' && st.last_scan_finished && st.media >= items.length) break;
    if (Date.now() - t0 > 120000) throw new Error('the scan did not finish in 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  await t.launch();
} catch (e) {
  await t.bail(e);
}

// Every request the page makes for the library, by path and query.
async function open(url) {
  const ctx = await t.browser.newContext({ locale: 'en-US', timezoneId: TZ, colorScheme: 'light',
                                           viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => t.consoleErrors.push(`uncaught ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') t.consoleErrors.push(m.text()); });
  const reqs = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/list' || u.pathname.startsWith('/api/')) reqs.push(u);
  });
  await page.goto(srv.url + url);
  return { ctx, page, reqs };
}
const lists = (reqs) => reqs.filter((u) => u.pathname === '/list');
// The months the page fetched: "YYYY-MM" of each /list?from=YYYY-MM-01.
const fetched = (reqs) => lists(reqs).map((u) => (u.searchParams.get('from') || '').slice(0, 7));
const unfiltered = (reqs) => lists(reqs).filter((u) => !u.searchParams.get('from') || !u.searchParams.get('to'));
const cellOf = (sha) => `#timeline a.cell[href="#/photo/${sha}"]`;
const viewerOn = (page, sha) => page.waitForFunction((s) => location.hash === '#/photo/' + s &&
  !document.getElementById('viewer').hidden && document.getElementById('cap-title').textContent !== '', sha, { timeout: 10000 });
// Some thumbnail of month `key` loaded and on screen.
const monthShows = (page, key) => page.waitForFunction((k) => {
  const h = document.getElementById('m-' + k);
  if (!h) return false;
  const top = parseFloat(h.style.top);
  return [...document.querySelectorAll('#timeline .row')].some((row) => {
    const y = parseFloat(row.style.top);
    const r = row.getBoundingClientRect();
    return y > top && y < top + 2000 && r.bottom > 56 && r.top < innerHeight && row.querySelector('img.loaded');
  });
}, key, { timeout: 10000 });

const first = await open('/');
const { page, reqs } = first;

await step('start: laid out from /api/timeline, only the months near the viewport fetched', async () => {
  await page.waitForSelector(cellOf(order[0].sha) + ' img.loaded', { timeout: 10000 });
  await page.waitForTimeout(800);      // what else it fetches when idle
  ok(reqs.some((u) => u.pathname === '/api/timeline'), 'the page asks GET /api/timeline');
  eq(unfiltered(reqs).map(String), [], 'no request for the whole list (/list without from and to)');
  const got = fetched(reqs);
  ok(got.length >= 1 && got.length <= 8 && got.every((k) => monthKeys.indexOf(k) >= 0 && monthKeys.indexOf(k) < 8),
     `only months near the top fetched (${got.length} of ${MONTHS}: ${got.join(' ')})`, got.join(' '));
  ok(lists(reqs).every((u) => u.searchParams.get('format') === 'ndjson' && /-01$/.test(u.searchParams.get('from'))),
     'each a month of NDJSON, from its first day', lists(reqs).map(String).join('\n'));
  eq(await page.textContent('#count'), `${items.length} items`, 'the count is the whole library\'s');
  const nav = await page.$$eval('#months button', (bs) => bs.length);
  eq(nav, MONTHS, 'the sidebar lists every month');
  const h = await page.evaluate(() => document.documentElement.scrollHeight);
  ok(h > MONTHS * 400, 'the page is as tall as the whole library', h);
  await t.shot(page, 'timeline-start');
});

await step('sidebar: a jump to an old month shows its thumbnails', async () => {
  const key = monthKeys[MONTHS - 10];
  const idx = await page.$$eval('#months button', (bs, k) => {
    const label = new Intl.DateTimeFormat('en-US', { month: 'long', year: 'numeric' }).format(new Date(k + '-15T12:00:00'));
    return bs.findIndex((b) => b.getAttribute('aria-label').startsWith(label + ','));
  }, key);
  ok(idx >= 0, 'the month is in the sidebar', key);
  await page.click(`#months button[data-m="${idx}"]`);
  await monthShows(page, key);
  ok(fetched(reqs).includes(key), `the month jumped to (${key}) is fetched and its thumbnails show`);
  const pos = await page.evaluate((k) => document.getElementById('m-' + k).getBoundingClientRect().top, key);
  ok(pos > 0 && pos < 120, 'its heading stays at the top once its neighbours came', pos);
  eq(unfiltered(reqs).map(String), [], 'still no request for the whole list');
});

await step('scrubber: dragged to the bottom, the oldest month shows', async () => {
  const box = await page.locator('#scrubber').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + 4);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) { await page.mouse.move(box.x + box.width / 2, box.y + (box.height * i) / 12 + 20); await page.waitForTimeout(16); }
  await page.mouse.up();
  const key = monthKeys[MONTHS - 1];
  await monthShows(page, key);
  ok(fetched(reqs).includes(key), `the oldest month (${key}) is fetched after the drag, and its thumbnails show`);
  const mid = monthKeys.slice(15, MONTHS - 15).filter((k) => fetched(reqs).includes(k));
  ok(mid.length <= 6, 'the months flown over are not all fetched', mid.join(' '));
});

await step('viewer: steps across month boundaries, fetching the months it needs', async () => {
  // The last item of a month near the top, then 5 months onwards with
  // ArrowRight: the viewer does not scroll the timeline, so the later
  // months are fetched for the viewer.
  await page.evaluate(() => window.scrollTo(0, 0));
  const start = order.findIndex((it) => it.key === monthKeys[1]) + PER - 1;
  await page.waitForSelector(cellOf(order[start].sha));
  await page.click(cellOf(order[start].sha));
  await viewerOn(page, order[start].sha);
  const before = new Set(fetched(reqs));
  let k = start, bad = null;
  for (; k < start + PER * 5; k++) {
    await page.keyboard.press('ArrowRight');
    try { await viewerOn(page, order[k + 1].sha); } catch { bad = k + 1; break; }
  }
  ok(bad === null, `ArrowRight from the last item of ${monthKeys[1]} through ${order[k].key}: each item in order`,
     bad === null ? '' : `stuck before item ${bad} (${order[bad].key})`);
  const more = fetched(reqs).filter((m) => !before.has(m));
  ok(more.length > 0, 'months the viewer reached were fetched for it', more.join(' '));
  await page.keyboard.press('ArrowLeft');
  await viewerOn(page, order[k - 1].sha);
  ok(true, 'and ArrowLeft steps back');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('viewer').hidden);
  eq(unfiltered(reqs).map(String), [], 'no request for the whole list');
});
await first.ctx.close();

await step('a link to an item of a month not fetched opens it', async () => {
  const it = order.find((x) => x.key === monthKeys[50]);
  const { ctx, page: p, reqs: r } = await open('/#/photo/' + it.sha);
  await viewerOn(p, it.sha);
  await p.waitForFunction((s) => document.getElementById('v-full').getAttribute('src') === '/image/' + s, it.sha, { timeout: 10000 });
  ok(r.some((u) => u.pathname === '/api/items/' + it.sha), 'the page asks GET /api/items/<sha>');
  ok(fetched(r).includes(it.key), `its month (${it.key}) is fetched`, fetched(r).join(' '));
  const date = await p.textContent('#cap-date');
  ok(date.includes(String(it.date.getFullYear())), 'the viewer shows it, with its date', date);
  const i = order.indexOf(it);
  await p.keyboard.press('ArrowRight');
  await viewerOn(p, order[i + 1].sha);
  ok(true, 'and steps on to the next item');
  await p.keyboard.press('Escape');
  await p.waitForFunction(() => document.getElementById('viewer').hidden);
  await p.waitForSelector(cellOf(order[i + 1].sha) + ' img.loaded', { timeout: 10000 });
  ok(true, 'closed, the timeline shows where it was');
  eq(unfiltered(r).map(String), [], 'no request for the whole list');
  await ctx.close();
});

await step('live changes and a date filter, month by month', async () => {
  const { ctx, page: p, reqs: r } = await open('/');
  await p.waitForSelector(cellOf(order[0].sha) + ' img.loaded', { timeout: 10000 });
  const label = (k) => new Intl.DateTimeFormat('en-US', { month: 'long', year: 'numeric' }).format(new Date(k + '-15T12:00:00'));
  const navSays = (k, n) => p.waitForFunction(([l, n]) => [...document.querySelectorAll('#months button')]
    .some((b) => b.getAttribute('aria-label') === `${l}, ${n} items`), [label(k), n], { timeout: 15000 });
  const put = async (date, seed) => {
    const buf = makeJpeg(24, 16, seed, { date: exifDate(date) });
    const f = new FormData();
    f.append('file', new Blob([buf], { type: 'image/jpeg' }), `live-${seed}.jpg`);
    const res = await fetch(srv.url + `/image/live-${seed}.jpg`, { method: 'PUT', body: f });
    return [res.status, sha256(buf)];
  };
  // Another client's upload into the month at the top (held): its cell comes.
  const [st1, s1] = await put(new Date(2016, 7, 28, 9, 0, 0), 900001);
  await p.waitForSelector(cellOf(s1), { timeout: 15000 });
  await navSays('2016-08', PER + 1);
  ok(st1 === 201, 'an upload into a month held shows in it, the month\'s count follows');
  // Into a month far below (not held): its count and the total follow.
  const far = monthKeys[60];
  const [y, m] = far.split('-').map(Number);
  const [st2] = await put(new Date(y, m - 1, 27, 9, 0, 0), 900002);
  await navSays(far, PER + 1);
  ok(st2 === 201, `an upload into a month not held (${far}): its count follows`);
  // A delete in another month not held.
  const gone = order.find((it) => it.key === monthKeys[61]);
  const del = await fetch(srv.url + '/image/' + gone.sha, { method: 'DELETE' });
  await navSays(monthKeys[61], PER - 1);
  ok(del.status === 200, `a photo deleted in a month not held (${monthKeys[61]}): its count follows`);
  await p.waitForFunction((n) => document.getElementById('count').textContent === `${n} items`, items.length + 1, { timeout: 15000 });
  ok(true, 'and the total');
  eq(unfiltered(r).map(String), [], 'no request for the whole list');
  await ctx.close();

  // A date filter of more than a few hundred items: by month too.
  const { ctx: c2, page: p2, reqs: r2 } = await open('/?from=2011-01-01&to=2016-03-31');
  await p2.waitForSelector('#timeline a.cell img.loaded', { timeout: 10000 });
  const tl = r2.find((u) => u.pathname === '/api/timeline');
  ok(tl && tl.searchParams.get('from') === '2011-01-01' && tl.searchParams.get('to') === '2016-03-31',
     'the filter goes to /api/timeline', tl && String(tl));
  eq(await p2.$$eval('#months button', (bs) => bs.length), 63, 'the sidebar lists the months in the dates');
  const ls = lists(r2);
  ok(ls.length > 0 && ls.every((u) => u.searchParams.get('from') >= '2011-01-01' && u.searchParams.get('to') <= '2016-03-31' &&
                                     u.searchParams.get('from').slice(0, 7) === u.searchParams.get('to').slice(0, 7)),
     'each month fetched within the dates', ls.map(String).join('\n'));
  const top = await p2.$eval('#timeline h2.month', (h) => h.id);
  eq(top, 'm-2016-03', 'the newest month in the dates comes first');
  await c2.close();
});

await t.finish();
