#!/usr/bin/env node
// Accounts in a real browser: the first-run "create the admin account" form
// (from this machine), the account panel's API keys, logging out, a wrong
// and a right password, share links (from the viewer and a selection, one
// with a password, opened in fresh browsers, revoked), a viewer who cannot
// upload.  Prints TAP.
//
//   MI_SERVER=build/server/media-server node tests/browser/auth.test.mjs
//
// Environment: as gallery.test.mjs (MI_SERVER, CHROMIUM, MI_TEST_BUILD_DIR,
// MI_TEST_KEEP).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeJpeg } from './fixtures.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = process.env.MI_TEST_BUILD_DIR || path.resolve(here, '../../build');
const serverBin = process.env.MI_SERVER || path.join(buildDir, 'server/media-server');
const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = path.join(buildDir, 'browser-screenshots');

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
async function step(name, fn) {
  try { await fn(); } catch (e) { ok(false, name, e && e.stack ? e.stack : e); }
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.log('1..0 # SKIP playwright-core is not installed: run `npm ci` in tests/browser');
  process.exit(0);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mi-browser-auth-'));
const lib = path.join(tmp, 'library');
fs.mkdirSync(lib);
fs.writeFileSync(path.join(lib, 'one.jpg'), makeJpeg(64, 48, 11));
fs.writeFileSync(path.join(lib, 'two.jpg'), makeJpeg(48, 64, 12));

const children = [];
let browser;
function startServer(dir) {
  return new Promise((resolve, reject) => {
    const proc = spawn(serverBin, ['--storage_dir', dir, '--port', '0', '--listen', '127.0.0.1'],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
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
async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  if (!process.env.MI_TEST_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
}
async function shot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name + '.png') });
}
const consoleErrors = [];
async function newPage(tag) {
  const ctx = await browser.newContext({ locale: 'en-US', colorScheme: 'light', viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => consoleErrors.push(`${tag}: uncaught ${e.message}`));
  page.on('console', (m) => {
    // A 401 the page expects (who am I, before login) is logged by Chromium.
    // So is the 404 of a revoked link's page (it says so itself).
    if (m.type() === 'error' && !/401/.test(m.text()) &&
        !(tag === 'share-gone' && /404/.test(m.text()))) consoleErrors.push(`${tag}: ${m.text()}`);
  });
  return { ctx, page };
}
const cells = (page, n) => page.waitForFunction((k) => document.querySelectorAll('#timeline a.cell').length === k, n, { timeout: 15000 });

let srv;
try {
  srv = await startServer(lib);
  browser = await chromium.launch({
    executablePath: chromiumBin, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
} catch (e) {
  console.log('Bail out! ' + (e && e.message ? e.message : e));
  await cleanup();
  process.exit(1);
}

const { ctx, page } = await newPage('admin');

await step('open server: the gallery offers to set up accounts, from this machine', async () => {
  await page.goto(srv.url + '/');
  await cells(page, 2);
  await page.waitForSelector('#setup-link:not([hidden])', { timeout: 10000 });
  ok(true, 'open server: the gallery offers to set up accounts, from this machine');
});

await step('first run: create the admin account, logged in at once', async () => {
  await page.click('#setup-link');
  await page.waitForSelector('#login-again-row:not([hidden])');
  await shot(page, 'auth-setup');
  await page.fill('#login-user', 'admin');
  await page.fill('#login-pass', 'correct horse battery');
  await page.fill('#login-again', 'correct horse battery');
  await page.click('#login-submit');
  await page.waitForURL(srv.url + '/');
  await cells(page, 2);
  await page.waitForSelector('#account-btn:not([hidden])');
  ok((await page.textContent('#account-name')) === 'admin', 'first run: create the admin account, logged in at once');
  const r = await fetch(srv.url + '/list');
  ok(r.status === 401, 'and from then on, /list without credentials is 401', r.status);
});

let key = '';
await step('account panel: an API key created, shown once, works with curl-like clients', async () => {
  await page.click('#account-btn');
  await page.waitForSelector('#account:not([hidden])');
  await page.fill('#key-name', 'phone');
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#key-new:not([hidden])');
  key = (await page.textContent('#key-new-text')).trim();
  ok(/^mik_[A-Za-z0-9_-]{43}$/.test(key), 'account panel: an API key is created and shown once', key);
  await page.waitForFunction(() => /phone/.test(document.getElementById('key-list').textContent));
  await shot(page, 'auth-keys');
  const r = await fetch(srv.url + '/list', { headers: { Authorization: 'Bearer ' + key } });
  ok(r.status === 200, 'the key reads /list', r.status);
});

await step('revoke the key in the panel: it stops working', async () => {
  page.once('dialog', (d) => d.accept());
  await page.click('#key-list li button');
  await page.waitForFunction(() => !/phone/.test(document.getElementById('key-list').textContent));
  const r = await fetch(srv.url + '/list', { headers: { Authorization: 'Bearer ' + key } });
  ok(r.status === 401, 'revoke the key in the panel: it stops working', r.status);
});

await step('people: the admin adds an account, gives it a new password, deletes it', async () => {
  await page.waitForSelector('#user-form:not([hidden])');
  await page.fill('#user-name', 'dora');
  await page.selectOption('#user-role', 'member');
  await page.fill('#user-pw', 'dora-password-1');
  await page.click('#user-form button[type=submit]');
  await page.waitForFunction(() => /dora/.test(document.getElementById('user-list').textContent));
  await page.locator('#user-list li', { hasText: 'dora' }).scrollIntoViewIfNeeded();
  const people = await page.textContent('#user-list');
  ok(/dora/.test(people) && /member/.test(people) && /admin \(you\)/.test(people),
     'people: dora listed as a member beside the admin (you)', people);
  await shot(page, 'auth-people');
  const login = (pw) => fetch(srv.url + '/api/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'dora', password: pw }) });
  ok((await login('dora-password-1')).status === 200, 'the new account logs in');
  const li = page.locator('#user-list li', { hasText: 'dora' });
  await li.getByRole('button', { name: 'Set a new password for dora' }).click();
  await li.locator('.user-pw input').fill('dora-password-2');
  await li.locator('.user-pw button').click();
  await page.waitForFunction(() => /New password set for dora/.test(document.getElementById('toast').textContent));
  ok((await login('dora-password-1')).status === 401 && (await login('dora-password-2')).status === 200,
     'people: a new password replaces the old one');
  ok(await page.locator('#user-list li', { hasText: '(you)' }).getByRole('button', { name: /Delete/ }).count() === 0,
     'people: no Delete on one\'s own account');
  page.once('dialog', (d) => d.accept());
  await li.getByRole('button', { name: 'Delete the account dora' }).click();
  await page.waitForFunction(() => !/dora/.test(document.getElementById('user-list').textContent));
  ok((await login('dora-password-2')).status === 401, 'people: a deleted account cannot log in');
});

await step('log out: the login page, and the gallery is gone', async () => {
  await page.click('#logout-btn');
  await page.waitForSelector('#login-form');
  ok(await page.$('#timeline') === null, 'log out: the login page, not the gallery');
  await shot(page, 'auth-login');
});

await step('a wrong password says so; the right one shows the photos', async () => {
  await page.fill('#login-user', 'admin');
  await page.fill('#login-pass', 'wrong password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error:not([hidden])');
  ok(/wrong user name or password/i.test(await page.textContent('#login-error')), 'a wrong password says so');
  await page.fill('#login-pass', 'correct horse battery');
  await page.click('#login-submit');
  await cells(page, 2);
  ok(true, 'the right password shows the photos');
});

// Share links: the open item from the viewer, then a selection with a
// password; each opened in a fresh browser (no session), then revoked.
const links = {};
async function makeLink(p, password) {
  if (password) await p.fill('#sh-password', password);
  await p.click('#sh-create');
  await p.waitForSelector('#share-new:not([hidden])');
  const url = (await p.textContent('#share-new-url')).trim();
  await p.click('#sh-close');
  return url;
}
await step('share the open item from the viewer: a link shown once', async () => {
  await page.click('#timeline a.cell');
  await page.waitForSelector('#viewer:not([hidden])');
  await page.click('#v-share');
  await page.waitForSelector('#share-panel:not([hidden])');
  await shot(page, 'share-panel');
  links.one = await makeLink(page);
  ok(new RegExp('^' + srv.url + '/s/[A-Za-z0-9_-]{43}$').test(links.one), 'share the open item: a link', links.one);
  await page.keyboard.press('Escape');
  await page.waitForSelector('#viewer', { state: 'hidden' });
});

await step('a selection of two, with a password', async () => {
  await page.click('#select-btn');
  const cs = await page.$$('#timeline a.cell');
  for (const c of cs) await c.click();
  await page.waitForFunction(() => document.getElementById('sel-count').textContent === '2 selected');
  ok(await page.isHidden('#viewer'), 'clicks select in selection mode (no viewer)');
  await page.click('#sel-share');
  await page.waitForSelector('#share-panel:not([hidden])');
  links.two = await makeLink(page, 'open sesame 2');
  ok(await page.isHidden('#sel-bar'), 'a selection of two, with a password: made, selection ended');
});

await step('the item link in a fresh browser: that item only, read-only', async () => {
  const { ctx: c3, page: p3 } = await newPage('share-one');
  await p3.goto(links.one);
  await cells(p3, 1);
  ok(await p3.isHidden('#upload-btn') && await p3.isHidden('#account-btn') &&
     await p3.isHidden('#filter-btn'), 'no upload, account or dates on a share link');
  await p3.click('#timeline a.cell');
  await p3.waitForFunction(() => { const i = document.getElementById('v-full'); return !i.hidden && i.naturalWidth > 0; }, null, { timeout: 15000 });
  const src = await p3.getAttribute('#v-full', 'src');
  ok(/^\/s\/[^/]+\/preview\/[0-9a-f]{64}$/.test(src) && await p3.isHidden('#v-download'),
     'the viewer shows the preview, no download (originals not shared)', src);
  await shot(p3, 'share-page');
  const st = await p3.evaluate(async () => (await fetch('/list')).status);
  ok(st === 401, 'the link\'s page cannot read /list', st);
  await c3.close();
});

await step('the password link: asks, refuses a wrong one, then shows both', async () => {
  const { ctx: c4, page: p4 } = await newPage('share-two');
  await p4.goto(links.two);
  await p4.waitForSelector('#unlock-form:not([hidden])');
  await shot(p4, 'share-locked');
  await p4.fill('#unlock-pw', 'not it at all');
  await p4.click('#unlock-form button[type=submit]');
  await p4.waitForFunction(() => /wrong password/i.test(document.getElementById('toast').textContent));
  await p4.fill('#unlock-pw', 'open sesame 2');
  await p4.click('#unlock-form button[type=submit]');
  await cells(p4, 2);
  ok(true, 'the password link: asks, refuses a wrong one, then shows both');
  await c4.close();
});

await step('the account panel lists both links; revoking one ends it', async () => {
  await page.click('#account-btn');
  await page.waitForFunction(() => document.querySelectorAll('#share-list li button').length === 2);
  ok(/password/.test(await page.textContent('#share-list')), 'listed with what they allow');
  page.once('dialog', (d) => d.accept());
  // Newest first: the password link is first, the item link second.
  await page.click('#share-list li:nth-child(2) button');
  await page.waitForFunction(() => document.querySelectorAll('#share-list li button').length === 1);
  const { ctx: c5, page: p5 } = await newPage('share-gone');
  await p5.goto(links.one);
  await p5.waitForFunction(() => /does not work any more/.test(document.getElementById('state-title').textContent));
  ok(true, 'the account panel lists both links; revoking one ends it');
  await c5.close();
  await page.click('#ac-close');
});
await ctx.close();

await step('a viewer (added by the command line) browses but has no upload, select or trash', async () => {
  const r = spawnSync(serverBin, ['--storage_dir', lib, 'user', 'add', 'vera', '--role', 'viewer'],
                      { input: 'vera-password\n' });
  ok(r.status === 0, 'user add while the server runs', String(r.stderr));
  const { ctx: c2, page: p2 } = await newPage('viewer');
  await p2.goto(srv.url + '/');
  await p2.waitForSelector('#login-form');
  await p2.fill('#login-user', 'vera');
  await p2.fill('#login-pass', 'vera-password');
  await p2.click('#login-submit');
  await cells(p2, 2);
  await p2.waitForSelector('#account-btn:not([hidden])');
  ok(await p2.isHidden('#upload-btn'), 'a viewer has no upload button');
  ok(await p2.isHidden('#select-btn') && await p2.isHidden('#trash-link'), 'no Select and no Trash either');
  const sha = await p2.$eval('#timeline a.cell', (a) => a.getAttribute('href'));
  await p2.goto(srv.url + '/' + sha);
  await p2.waitForSelector('#viewer:not([hidden])');
  ok(await p2.isHidden('#v-delete'), 'nor "Move to the trash" in the viewer');
  await p2.goto(srv.url + '/#/trash');
  await cells(p2, 2);
  ok(await p2.isHidden('#trash'), '#/trash shows the timeline to a viewer');
  await c2.close();
});

ok(consoleErrors.length === 0, 'no console errors', consoleErrors.join('\n'));
console.log(`1..${count}`);
await cleanup();
process.exit(failures ? 1 : 0);
