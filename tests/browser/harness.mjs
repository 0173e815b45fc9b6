// What a browser test needs around its checks: TAP output, a real
// media-server on a free loopback port, Chromium, screenshots, cleanup.
// (gallery, auth and tus tests predate it and carry their own copies.)
//
//   const t = await harness('search');      // SKIPs when playwright-core is missing
//   const srv = await t.startServer(dir);  t.ok(cond, name, diag);
//   await t.step(name, async () => {...}); await t.finish();
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = process.env.MI_TEST_BUILD_DIR || path.resolve(here, '../../build');
const serverBin = process.env.MI_SERVER || path.join(buildDir, 'server/media-server');
const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = path.join(buildDir, 'browser-screenshots');

export async function harness(tag) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    console.log('1..0 # SKIP playwright-core is not installed: run `npm ci` in tests/browser');
    process.exit(0);
  }
  const t = { count: 0, failures: 0, browser: null, children: [], consoleErrors: [] };
  t.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `mi-browser-${tag}-`));

  t.ok = (cond, name, diag) => {
    t.count++;
    console.log(`${cond ? 'ok' : 'not ok'} ${t.count} - ${name}`);
    if (!cond) {
      t.failures++;
      if (diag !== undefined) console.log(String(diag).split('\n').map((l) => '  # ' + l).join('\n'));
    }
    return cond;
  };
  t.step = async (name, fn) => {
    try { await fn(); } catch (e) { t.ok(false, name, e && e.stack ? e.stack : e); }
  };
  t.startServer = (dir, extra = []) => new Promise((resolve, reject) => {
    const proc = spawn(serverBin, ['--storage_dir', dir, '--port', '0', '--listen', '127.0.0.1', ...extra],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
    t.children.push(proc);
    let log = '';
    const timer = setTimeout(() => reject(new Error('media-server did not start: ' + log)), 20000);
    proc.stderr.on('data', (d) => {
      log = (log + d).slice(-20000);
      const m = /on http:\/\/[^/]*:(\d+)\//.exec(log);
      if (m && timer) { clearTimeout(timer); resolve({ proc, url: `http://127.0.0.1:${m[1]}`, log: () => log }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`media-server exited (${code}): ${log}`)); });
  });
  t.launch = async () => {
    t.browser = await chromium.launch({
      executablePath: chromiumBin, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return t.browser;
  };
  // A page whose console errors are collected, but those `expected` matches.
  t.newPage = async (name, expected = null) => {
    const ctx = await t.browser.newContext({ locale: 'en-US', colorScheme: 'light', viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => t.consoleErrors.push(`${name}: uncaught ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !(expected && expected.test(m.text()))) t.consoleErrors.push(`${name}: ${m.text()}`);
    });
    return { ctx, page };
  };
  t.shot = async (page, name) => {
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, name + '.png') });
  };
  t.cleanup = async () => {
    if (t.browser) await t.browser.close().catch(() => {});
    for (const c of t.children) if (c.exitCode === null) c.kill('SIGTERM');
    if (!process.env.MI_TEST_KEEP) fs.rmSync(t.tmp, { recursive: true, force: true });
  };
  // The plan line, cleanup, and the exit status.
  t.finish = async () => {
    t.ok(t.consoleErrors.length === 0, 'no console errors', t.consoleErrors.join('\n'));
    console.log(`1..${t.count}`);
    await t.cleanup();
    process.exit(t.failures ? 1 : 0);
  };
  t.bail = async (e) => {
    console.log('Bail out! ' + (e && e.message ? e.message : e));
    await t.cleanup();
    process.exit(1);
  };
  return t;
}
