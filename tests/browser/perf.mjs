#!/usr/bin/env node
// By hand, not in CI: the gallery with a large library, measured in the
// browser with the Performance API and the DevTools protocol.
//
//   node tests/browser/perf.mjs [--dir /tmp/mi-perf-50k] [--n 50000]
//        [--server build/server/media-server] [--wrap front.mjs]
//        [--jump 2015-07]
//
// Makes --n tiny unique JPEGs with EXIF dates over ten years in --dir when
// it does not exist (once; the server's index in DIR/.mediaindex is reused
// by later runs; an existing folder, say a catalog made otherwise, is used
// as it is), starts media-server on it, waits for the scan (at least --n
// media), then in headless Chromium at 1280x800 reports: /api/timeline and
// the months' /list requests, time to the first thumbnail drawn, the JS
// heap (CDP's JSHeapUsedSize: at the first thumbnail and the most seen),
// the most <img> elements ever in the page while scrolling by wheel,
// dragging the scrubber through the library and jumping to --jump in the
// sidebar (until its thumbnails show), and frame intervals and long tasks
// during all that.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { buildBigCorpus } from './corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({ options: {
  dir: { type: 'string', default: '/tmp/mi-perf-50k' },
  n: { type: 'string', default: '50000' },
  server: { type: 'string', default: path.resolve(here, '../../build/server/media-server') },
  chromium: { type: 'string', default: '/usr/bin/chromium' },
  wrap: { type: 'string' },
  jump: { type: 'string', default: '2015-07' },
} });
process.env.TZ = process.env.TZ || 'Europe/Berlin';
const n = Number(opt.n);
const { chromium } = await import('playwright-core');

if (!fs.existsSync(opt.dir)) {
  const t0 = Date.now();
  buildBigCorpus(opt.dir, n);
  console.log(`corpus: ${n} photos in ${opt.dir} in ${Date.now() - t0} ms`);
}

const proc = spawn(opt.server, ['--storage_dir', opt.dir, '--port', '0', '--listen', '127.0.0.1'],
                   { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((resolve, reject) => {
  let log = '';
  proc.stderr.on('data', (d) => {
    log = (log + d).slice(-10000);
    const m = /on http:\/\/[^/]*:(\d+)\//.exec(log);
    if (m) resolve(`http://127.0.0.1:${m[1]}`);
  });
  proc.on('exit', (c) => reject(new Error(`media-server exited ${c}: ${log}`)));
});
const t0 = Date.now();
for (;;) {
  const st = await fetch(url + '/status').then((r) => r.json()).catch(() => ({}));
  if (st.state === 'idle' && st.last_scan_finished && st.media >= n) {
    console.log(`server: ${st.media} media indexed, scan done ${((Date.now() - t0) / 1000).toFixed(1)} s after start`);
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
let base = url, front = null;
if (opt.wrap) { front = await (await import(pathToFileURL(path.resolve(opt.wrap)).href)).wrap(url); base = front.url; }

const browser = await chromium.launch({
  executablePath: opt.chromium, headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const results = [];
const runs = Number(process.env.MI_PERF_RUNS || 3);
for (let run = 0; run < runs; run++) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', timezoneId: process.env.TZ });
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  // Sample from the first frame: <img> count, frame intervals, long tasks.
  await page.addInitScript(() => {
    // Every request kept (the default of 250 entries is full of thumbnails
    // long before the months fetched while scrolling).
    performance.setResourceTimingBufferSize(1000000);
    const s = window.__perf = { maxImgs: 0, frames: [], longTasks: [] };
    let last = 0;
    const tick = (t) => {
      if (last) s.frames.push(t - last);
      last = t;
      const k = document.getElementsByTagName('img').length;
      if (k > s.maxImgs) s.maxImgs = k;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    try {
      new PerformanceObserver((l) => { for (const e of l.getEntries()) s.longTasks.push(e.duration); })
        .observe({ type: 'longtask', buffered: true });
    } catch { /* no longtask support */ }
  });
  // The JS heap, sampled every 250 ms from the DevTools side.
  let heapMax = 0, heapTimer = null;
  const heapNow = async () => (await metrics()).JSHeapUsedSize / 1048576;
  const sampleHeap = async () => { try { heapMax = Math.max(heapMax, await heapNow()); } catch { /* closing */ } };
  heapTimer = setInterval(sampleHeap, 250);
  await page.goto(base + '/');
  // The first thumbnail, and the timeline laid out (mi:list).
  await page.waitForFunction(() => performance.getEntriesByName('mi:first-thumb').length > 0 &&
    performance.getEntriesByName('mi:list').length > 0, null, { timeout: 60000 });
  const heapFirst = await heapNow();
  const load = await page.evaluate(() => {
    const res = performance.getEntriesByType('resource');
    const tl = res.find((e) => new URL(e.name).pathname === '/api/timeline');
    const lists = res.filter((e) => new URL(e.name).pathname === '/list');
    const whole = lists.find((e) => !new URL(e.name).searchParams.get('from'));
    const mark = (name) => { const m = performance.getEntriesByName(name)[0]; return m ? m.startTime : null; };
    return {
      timelineEnd: tl ? tl.responseEnd : null, timelineBytes: tl ? tl.encodedBodySize : 0,
      lists: lists.length, listBytes: lists.reduce((a, e) => a + (e.encodedBodySize || 0), 0),
      wholeList: !!whole, listReady: mark('mi:list'), firstThumb: mark('mi:first-thumb'),
      domNodes: document.getElementsByTagName('*').length,
    };
  });
  await page.evaluate(() => { window.__perf.frames.length = 0; window.__perf.longTasks.length = 0; });

  // 1. Wheel scrolling, ~10 s.
  await page.mouse.move(600, 400);
  const m0 = await metrics();
  const w0 = Date.now();
  for (let i = 0; i < 150; i++) { await page.mouse.wheel(0, 450); await page.waitForTimeout(50); }
  const wheelMs = Date.now() - w0;
  const m1 = await metrics();
  const busy = {};
  for (const k of ['TaskDuration', 'ScriptDuration', 'LayoutDuration', 'RecalcStyleDuration']) busy[k] = Math.round((m1[k] - m0[k]) * 1000);
  const wheel = await page.evaluate(() => {
    const f = [...window.__perf.frames].sort((a, b) => a - b);
    const q = (p) => f[Math.min(f.length - 1, Math.floor(p * f.length))];
    const r = { frames: f.length, p50: q(0.5), p95: q(0.95), max: f[f.length - 1], over50: f.filter((x) => x > 50).length,
                longTasks: window.__perf.longTasks.length, scrolledPx: window.scrollY };
    window.__perf.frames.length = 0; window.__perf.longTasks.length = 0;
    return r;
  });

  // 2. Drag the scrubber from top to bottom in 2 s, then back up.
  const box = await page.locator('#scrubber').boundingBox();
  const x = box.x + box.width / 2;
  await page.mouse.move(x, box.y + 1);
  await page.mouse.down();
  for (let i = 1; i <= 60; i++) { await page.mouse.move(x, box.y + (box.height * i) / 60); await page.waitForTimeout(33); }
  for (let i = 60; i >= 30; i--) { await page.mouse.move(x, box.y + (box.height * i) / 60); await page.waitForTimeout(33); }
  await page.mouse.up();
  const settle0 = Date.now();
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('#timeline img')].filter((i) => {
      const r = i.parentNode.getBoundingClientRect();
      return r.bottom > 56 && r.top < innerHeight;
    });
    return imgs.length > 0 && imgs.every((i) => i.complete && i.src);
  }, null, { timeout: 20000 });
  const scrubSettleMs = Date.now() - settle0;
  const scrub = await page.evaluate(() => {
    const f = [...window.__perf.frames].sort((a, b) => a - b);
    const q = (p) => f[Math.min(f.length - 1, Math.floor(p * f.length))];
    const r = { frames: f.length, p50: q(0.5), p95: q(0.95), max: f[f.length - 1], over50: f.filter((x) => x > 50).length,
                longTasks: window.__perf.longTasks.length };
    window.__perf.frames.length = 0;
    return r;
  });

  // 3. Jump to a month in the sidebar (--jump) and wait for its thumbnails
  // in view under its heading.
  await page.evaluate(() => { window.__perf.frames.length = 0; });
  const j0 = Date.now();
  const jumped = await page.evaluate((ym) => {
    const label = new Intl.DateTimeFormat('en-US', { month: 'long', year: 'numeric' }).format(new Date(ym + '-15T12:00:00'));
    const b = [...document.querySelectorAll('#months button')].find((x) => x.getAttribute('aria-label').startsWith(label + ','));
    if (!b) return false;
    b.click();
    return true;
  }, opt.jump);
  if (jumped) {
    await page.waitForFunction((ym) => {
      const h = document.getElementById('m-' + ym);
      if (!h) return false;
      const top = parseFloat(h.style.top);
      return [...document.querySelectorAll('#timeline .row')].some((row) => {
        const r = row.getBoundingClientRect();
        return parseFloat(row.style.top) > top && r.bottom > 56 && r.top < innerHeight && row.querySelector('img.loaded');
      });
    }, opt.jump, { timeout: 20000, polling: 'raf' });
  }
  const jumpMs = Date.now() - j0;
  const jumpFrames = await page.evaluate(() => {
    const f = [...window.__perf.frames].sort((a, b) => a - b);
    return { max: f.length ? f[f.length - 1] : 0 };
  });
  await sampleHeap();
  clearInterval(heapTimer);
  const listsEnd = await page.evaluate(() => {
    const lists = performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname === '/list');
    return { n: lists.length, bytes: lists.reduce((a, e) => a + (e.encodedBodySize || 0), 0) };
  });
  const maxImgs = await page.evaluate(() => window.__perf.maxImgs);
  const imgsNow = await page.evaluate(() => document.getElementsByTagName('img').length);
  results.push({ run, load, heapFirst, heapMax, listsEnd, wheel, wheelMs, busy, scrub, scrubSettleMs,
                 jumpMs: jumped ? jumpMs : null, jumpFrames, maxImgs, imgsNow, errors });
  await ctx.close();
}
await browser.close();
if (front) front.close();
proc.kill('SIGTERM');

const f1 = (v) => (v == null ? '-' : v.toFixed(0));
const mb = (b) => (b / 1048576).toFixed(1) + ' MB';
for (const r of results) {
  console.log(`run ${r.run}: /api/timeline ${(r.load.timelineBytes / 1024).toFixed(1)} KB at ${f1(r.load.timelineEnd)} ms, timeline laid out at ${f1(r.load.listReady)} ms, ` +
              `first thumbnail drawn at ${f1(r.load.firstThumb)} ms (from navigation start); by then ${r.load.lists} /list requests (${mb(r.load.listBytes)})` +
              `${r.load.wholeList ? ', one of them the WHOLE list' : ''}; ${r.load.domNodes} DOM elements; JS heap ${r.heapFirst.toFixed(1)} MB, at most ${r.heapMax.toFixed(1)} MB over the run`);
  console.log(`  wheel ${r.wheelMs} ms, ${r.wheel.scrolledPx} px: ${r.wheel.frames} frames, interval p50 ${r.wheel.p50.toFixed(1)} / p95 ${r.wheel.p95.toFixed(1)} / max ${r.wheel.max.toFixed(1)} ms, ${r.wheel.over50} over 50 ms, ${r.wheel.longTasks} long tasks; main thread busy ${r.busy.TaskDuration} ms (script ${r.busy.ScriptDuration}, layout ${r.busy.LayoutDuration}, style ${r.busy.RecalcStyleDuration})`);
  console.log(`  scrubber drag: ${r.scrub.frames} frames, p50 ${r.scrub.p50.toFixed(1)} / p95 ${r.scrub.p95.toFixed(1)} / max ${r.scrub.max.toFixed(1)} ms, ${r.scrub.over50} over 50 ms; thumbnails in view loaded ${r.scrubSettleMs} ms after release`);
  console.log(`  jump to ${opt.jump}: its thumbnails in view in ${r.jumpMs} ms (longest frame ${r.jumpFrames.max.toFixed(1)} ms); /list requests in the run ${r.listsEnd.n} (${mb(r.listsEnd.bytes)}); <img> max ${r.maxImgs}, at the end ${r.imgsNow}; console errors ${r.errors.length}${r.errors.length ? ': ' + r.errors.slice(0, 3).join(' | ') : ''}`);
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const worstImgs = Math.max(...results.map((r) => r.maxImgs));
const firstThumbs = results.map((r) => r.load.firstThumb);
const heap = Math.max(...results.map((r) => r.heapMax));
const jumps = results.map((r) => r.jumpMs).filter((v) => v != null);
console.log(`summary: first thumbnail median ${f1(median(firstThumbs))} ms (runs: ${firstThumbs.map(f1).join(', ')}), ` +
            `JS heap at most ${heap.toFixed(1)} MB, jump median ${jumps.length ? f1(median(jumps)) : '-'} ms, ` +
            `wheel frame p95 median ${median(results.map((r) => r.wheel.p95)).toFixed(1)} ms, max <img> ${worstImgs} (< 2000: ${worstImgs < 2000 ? 'yes' : 'NO'})`);
process.exit(worstImgs < 2000 && median(firstThumbs) < 1000 ? 0 : 1);
