#!/usr/bin/env node
// tus-js-client (npm, its Node build: fs.ReadStream sources, FileUrlStorage)
// against a real media-server's tus 1.0 endpoint, /api/uploads/ (issue 12):
//   1. a 20 MiB file in 1 MiB chunks: byte-identical on disk, in GET /list;
//   2. abort() at random offsets, resumed each time by a new Upload through
//      findPreviousUploads() / resumeFromPreviousUpload();
//   3. the connection cut at random bytes (a TCP proxy in between): the
//      client's retryDelays resume the same upload by themselves;
//   4. the server killed (SIGKILL) mid-upload and restarted on the same
//      port: retryDelays resume it by themselves;
//   5. metadata sha256 of a file already stored: nothing is sent;
//   6. bytes that are not media: a clear error (415) and nothing stored.
// Needs node only (no browser).  Prints TAP.
//
//   MI_SERVER=build/server/media-server node tests/browser/tus.test.mjs
//
// Environment: MI_SERVER (the media-server binary), MI_TEST_BUILD_DIR,
// MI_TEST_KEEP=1 (keep the temporary folder), MI_TUS_SEED (repeat a run's
// random offsets; each run prints its seed), CI=true (a missing
// tus-js-client fails instead of skipping).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeJpeg } from './fixtures.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const buildDir = process.env.MI_TEST_BUILD_DIR || path.resolve(here, '../../build');
const serverBin = process.env.MI_SERVER || path.join(buildDir, 'server/media-server');

let count = 0, failures = 0;
function ok(cond, name, diag) {
  count++;
  console.log(`${cond ? 'ok' : 'not ok'} ${count} - ${name}`);
  if (!cond) {
    failures++;
    if (diag !== undefined) {
      const text = typeof diag === 'string' ? diag : JSON.stringify(diag, null, 1) ?? String(diag);
      console.log(text.split('\n').map((l) => '  # ' + l).join('\n'));
    }
  }
  return cond;
}
async function step(name, fn) {
  try { await fn(); } catch (e) {
    ok(false, name, (e && e.stack ? e.stack : String(e)) + (e && e.cause ? '\ncause: ' + (e.cause.stack || e.cause) : ''));
  }
}
const note = (s) => console.log('# ' + s);

let tus;
try {
  const mod = await import('tus-js-client');
  tus = mod.Upload ? mod : mod.default;
} catch {
  const why = 'tus-js-client is not installed: run `npm ci` in tests/browser ' +
              '(scripts/install-deps.sh --browser does)';
  if (process.env.CI === 'true') { console.log('Bail out! ' + why); process.exit(1); }
  console.log('1..0 # SKIP ' + why);
  process.exit(0);
}

// Random offsets from a seed printed first, so a failing run can be repeated.
const seed = Number(process.env.MI_TUS_SEED || crypto.randomInt(1, 2 ** 31 - 1));
note(`seed ${seed} (MI_TUS_SEED=${seed} repeats these offsets)`);
let rs = seed >>> 0;
function rand() {                       // mulberry32
  rs = (rs + 0x6d2b79f5) >>> 0;
  let t = rs;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (lo, hi) => Math.floor(lo + rand() * (hi - lo));
function bytes(n) {                     // seeded "random" content
  const b = Buffer.alloc(n);
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  return b;
}

const MiB = 1 << 20;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mi-tus-js-'));
const storage = path.join(tmp, 'library');
const work = path.join(tmp, 'client');
fs.mkdirSync(storage);
fs.mkdirSync(work);

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
// A real JPEG followed by random bytes (decoders stop at EOI), as
// tests/server/test_tus.py's media().
function media(name, n, s) {
  const jpeg = makeJpeg(64, 48, s, { date: '2021:07:04 12:00:00' });
  const data = Buffer.concat([jpeg, bytes(n - jpeg.length)]);
  const p = path.join(work, name);
  fs.writeFileSync(p, data);
  return { path: p, data, sha: sha256(data), name };
}

// ---- the server ----------------------------------------------------------
const children = new Set();
function startServer(port = 0) {
  return new Promise((resolve, reject) => {
    const proc = spawn(serverBin, ['--storage_dir', storage, '--port', String(port),
                                   '--listen', '127.0.0.1'],
                       { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(proc);
    let log = '', up = false;
    const timer = setTimeout(() => reject(new Error('media-server did not start: ' + log)), 60000);
    proc.stderr.on('data', (d) => {
      log = (log + d).slice(-20000);
      const m = /on http:\/\/[^/]*:(\d+)\//.exec(log);
      if (m && !up) {
        up = true;
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), url: `http://127.0.0.1:${m[1]}`, log: () => log });
      }
    });
    proc.on('exit', (code, sig) => {
      children.delete(proc);
      clearTimeout(timer);
      if (!up) reject(new Error(`media-server exited (${code ?? sig}): ${log}`));
    });
  });
}
function kill(srv, sig) {
  return new Promise((resolve) => {
    if (srv.proc.exitCode !== null || srv.proc.signalCode !== null) { resolve(); return; }
    srv.proc.once('exit', (code, s) => resolve(s || code));
    srv.proc.kill(sig);
  });
}

// ---- what the server holds -------------------------------------------------
// A request of its own on a new connection: media-server closes idle
// keep-alive connections after 2 s, and a pooled client (fetch) reusing
// one just then fails on a loaded machine.
function request(method, url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
                                    body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
async function listing(srv) {
  const res = await request('GET', srv.url + '/list');
  if (res.status !== 200) throw new Error(`GET /list: ${res.status}`);
  return JSON.parse(res.body);
}
function filesUnder(dir) {
  const out = [];
  const walk = (d) => {
    let ents;
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else out.push(path.relative(storage, p));
    }
  };
  walk(dir);
  return out.sort();
}
// Stored uploads (STORAGE/uploads/...) and unfinished ones' pieces
// (STORAGE/.mediaindex/uploads/).
const storedFiles = () => filesUnder(path.join(storage, 'uploads'));
const partFiles = () => filesUnder(path.join(storage, '.mediaindex', 'uploads'));

// The last response of a finished upload says where the file went: check
// it, the bytes there, and the /list entry.
async function checkStored(srv, f, r, what, wantStatus = 201) {
  const res = r.res;
  const st = res && res.getStatus();
  ok(st === wantStatus, `${what}: the last PATCH is answered ${wantStatus}`, { status: st, body: res && res.getBody() });
  ok(res && res.getHeader('Upload-Offset') === String(f.data.length),
     `${what}: its Upload-Offset is the file's length, ${f.data.length}`,
     res && res.getHeader('Upload-Offset'));
  ok(res && res.getHeader('Mi-Sha256') === f.sha, `${what}: Mi-Sha256 is the file's sha256`,
     { got: res && res.getHeader('Mi-Sha256'), want: f.sha });
  const rel = res && res.getHeader('Mi-File-Path') ? decodeURIComponent(res.getHeader('Mi-File-Path')) : '';
  ok(/^uploads\//.test(rel), `${what}: Mi-File-Path is under uploads/`, rel);
  let body = null;
  try { body = JSON.parse(res.getBody()); } catch { /* checked next */ }
  ok(body && body.sha256 === f.sha && body.file_path === rel && body.created === (wantStatus === 201),
     `${what}: the JSON body names the sha256 and the path`, res && res.getBody());
  let disk = null;
  try { disk = fs.readFileSync(path.join(storage, rel)); } catch { /* checked next */ }
  ok(disk && disk.equals(f.data), `${what}: the stored file is byte-identical`,
     disk ? `${disk.length} bytes, sha256 ${sha256(disk)}; want ${f.data.length}, ${f.sha}` : `no file at ${rel}`);
  const list = await listing(srv);
  const e = list[f.sha];
  ok(e && e.file_path === rel && e.size === f.data.length && e.kind === 'image' && e.mime_type === 'image/jpeg',
     `${what}: GET /list has it under its sha256`, e || `${Object.keys(list).length} entries, none ${f.sha}`);
  const id = r.upload.url ? r.upload.url.split('/').pop() : '?';
  const left = partFiles().filter((p) => path.basename(p).startsWith(id + '.'));
  ok(r.upload.url && left.length === 0, `${what}: nothing of the upload is left in .mediaindex/uploads`,
     { url: r.upload.url, left });
  return rel;
}

// ---- the client ------------------------------------------------------------
// tus-js-client's Node stack takes http.request options.  Keep-alive, as
// Node 20's default agent, but idle connections dropped after 1 s, before
// media-server drops them (2 s, with no Keep-Alive: timeout hint): a
// request written on a connection the server is closing fails, and a retry
// would change the requests these tests count.
const agent = new http.Agent({ keepAlive: true, timeout: 1000 });
const httpStack = new tus.DefaultHttpStack({ agent });
// One tus-js-client Upload of f, watched: every request's method and URL,
// every response, progress.  Resolves when it succeeds, fails or is
// aborted by `abortAt` (bytes sent); `onProgressHook(sent)` runs too.
function run(f, opts = {}) {
  const log = { requests: [], responses: [], progress: [], maxSent: 0 };
  let upload;
  const done = new Promise((resolve) => {
    const timer = setTimeout(() => {
      upload.abort().catch(() => {});
      resolve({ outcome: 'timeout' });
    }, opts.timeout || 180000);
    const finish = (r) => { clearTimeout(timer); resolve(r); };
    upload = new tus.Upload(fs.createReadStream(f.path), {
      endpoint: opts.endpoint,
      chunkSize: MiB,
      httpStack,
      metadata: { filename: f.name, ...(opts.metadata || {}) },
      ...(opts.urlStorage ? { urlStorage: opts.urlStorage } : { storeFingerprintForResuming: false }),
      removeFingerprintOnSuccess: true,
      retryDelays: opts.retryDelays === undefined ? [0, 1000, 3000, 5000] : opts.retryDelays,
      ...(opts.onShouldRetry ? { onShouldRetry: opts.onShouldRetry } : {}),
      onBeforeRequest: (req) => { log.requests.push({ method: req.getMethod(), url: req.getURL(), offset: req.getHeader('Upload-Offset') }); },
      onAfterResponse: (req, res) => {
        log.responses.push({ method: req.getMethod(), url: req.getURL(), status: res.getStatus(),
                             offset: res.getHeader('Upload-Offset'), location: res.getHeader('Location') });
      },
      onProgress: (sent) => {
        log.progress.push(sent);
        log.maxSent = Math.max(log.maxSent, sent);
        if (opts.onProgressHook) opts.onProgressHook(sent, upload);
        if (opts.abortAt !== undefined && sent >= opts.abortAt && !log.aborted) {
          log.aborted = sent;
          upload.abort().then(() => finish({ outcome: 'aborted' }));
        }
      },
      onSuccess: (payload) => finish({ outcome: 'success', res: payload.lastResponse }),
      onError: (err) => finish({ outcome: 'error', err }),
    });
    if (opts.before) opts.before(upload).then(() => upload.start(), (e) => finish({ outcome: 'error', err: e }));
    else upload.start();
  });
  return done.then((r) => ({ ...r, log, upload }));
}
const errText = (r) => r.err ? String(r.err.stack || r.err) : r.outcome;
const methods = (log) => log.requests.map((q) => q.method);

// ---- a TCP proxy that cuts connections ------------------------------------
// Forwards 127.0.0.1:<its port> to the server; when the bytes sent from the
// client reach the next of `cuts` (a running total over all connections),
// both sides of that connection are destroyed mid-request.
function cuttingProxy(targetPort, cuts) {
  let forwarded = 0;
  const pending = [...cuts].sort((a, b) => a - b);
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client); sockets.add(upstream);
    const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', drop); upstream.on('error', drop);
    client.on('close', drop); upstream.on('close', drop);
    upstream.on('data', (d) => client.write(d));
    client.on('data', (d) => {
      if (pending.length && forwarded + d.length >= pending[0]) {
        const keep = pending[0] - forwarded;
        forwarded = pending.shift();
        client.pause();
        upstream.write(d.subarray(0, keep), drop);
        return;
      }
      forwarded += d.length;
      if (!upstream.write(d)) { client.pause(); upstream.once('drain', () => client.resume()); }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    left: () => pending.length,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  })));
}

// ---------------------------------------------------------------------------
let srv;
try {
  srv = await startServer();
} catch (e) {
  console.log('Bail out! ' + (e && e.message ? e.message : e));
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
}
const endpoint = () => srv.url + '/api/uploads/';
const tStart = Date.now();

const big = media('big.jpg', 20 * MiB + 12345, 1);
await step('1: a 20 MiB file in 1 MiB chunks', async () => {
  const r = await run(big, { endpoint: endpoint() });
  if (!ok(r.outcome === 'success', '1: tus-js-client reports success', errText(r))) return;
  const m = methods(r.log);
  ok(m[0] === 'POST' && m.slice(1).every((x) => x === 'PATCH') && m.length === 1 + 21,
     '1: one POST, then 21 PATCHes of at most 1 MiB', m.join(' '));
  const patches = r.log.requests.filter((q) => q.method === 'PATCH').map((q) => Number(q.offset));
  ok(patches.every((o, i) => o === i * MiB), '1: each PATCH starts where the last ended', patches);
  ok(r.log.responses.slice(1, -1).every((x) => x.status === 204),
     '1: the chunks before the last are answered 204', r.log.responses.map((x) => x.status));
  await checkStored(srv, big, r, '1');
});

await step('2: abort() at random offsets, resumed by a new Upload from findPreviousUploads()', async () => {
  const f = media('aborted.jpg', 20 * MiB + 777, 2);
  const store = new tus.FileUrlStorage(path.join(work, 'tus-urls.json'));
  fs.writeFileSync(store.path, '{}');
  const n = f.data.length;
  const cuts = [between(0.05 * n, 0.3 * n), between(0.35 * n, 0.6 * n), between(0.65 * n, 0.95 * n)];
  note(`2: abort() at bytes ${cuts.join(', ')}`);
  let url = null, lastOffset = 0, abortedAt = 0, r;
  for (let i = 0; i <= cuts.length; i++) {
    let previous = null;
    r = await run(f, {
      endpoint: endpoint(), urlStorage: store, abortAt: cuts[i],
      retryDelays: [0, 500, 1000, 2000, 4000],   // 423/409 while the cut PATCH is still being read
      before: async (u) => {
        previous = await u.findPreviousUploads();
        if (previous.length) u.resumeFromPreviousUpload(previous[0]);
      },
    });
    const m = methods(r.log);
    if (i === 0) {
      ok(previous.length === 0 && m[0] === 'POST', '2: the first run creates the upload', { previous, m });
      url = r.log.responses[0] && r.log.responses[0].location
        ? new URL(r.log.responses[0].location, endpoint()).href : null;
    } else {
      ok(previous.length === 1 && previous[0].uploadUrl === url,
         `2: run ${i + 1} finds the upload in FileUrlStorage`, { previous, url });
      const head = r.log.responses.find((x) => x.method === 'HEAD');
      const off = head ? Number(head.offset) : -1;
      ok(m[0] === 'HEAD' && !m.includes('POST') && head.url === url && head.status === 200 &&
         off >= lastOffset && off > 0 && off <= abortedAt,
         `2: run ${i + 1} resumes with HEAD at an offset kept from the abort at ${abortedAt}`,
         { methods: m.join(' '), head, lastOffset });
      const first = r.log.requests.find((q) => q.method === 'PATCH');
      ok(first && Number(first.offset) > 0, `2: run ${i + 1} sends from there, not from 0`, first);
      lastOffset = Math.max(lastOffset, off);
    }
    abortedAt = r.log.aborted || 0;
    if (i < cuts.length &&
        !ok(r.outcome === 'aborted', `2: run ${i + 1} is aborted at ${cuts[i]}`, errText(r))) return;
  }
  if (!ok(r.outcome === 'success', '2: the last run succeeds', errText(r))) return;
  // removeFingerprintOnSuccess: removed after onSuccess (behind a lock file)
  let left = await store.findAllUploads();
  for (let i = 0; i < 100 && left.length; i++) {
    await new Promise((res) => setTimeout(res, 100));
    left = await store.findAllUploads();
  }
  ok(left.length === 0, '2: the finished upload leaves FileUrlStorage', left);
  await checkStored(srv, f, r, '2');
});

await step('3: the connection cut at random bytes by a proxy: retryDelays resume it', async () => {
  const f = media('cut.jpg', 20 * MiB + 4321, 3);
  const n = f.data.length;
  const cuts = [between(0.05 * n, 0.3 * n), between(0.35 * n, 0.6 * n), between(0.65 * n, 0.95 * n)];
  note(`3: connections cut after ${cuts.join(', ')} bytes from the client`);
  const proxy = await cuttingProxy(srv.port, cuts);
  let r;
  try {
    r = await run(f, { endpoint: proxy.url + '/api/uploads/',
                       retryDelays: [0, 500, 1000, 2000, 4000, 8000] });
  } finally { proxy.close(); }
  if (!ok(r.outcome === 'success', '3: tus-js-client reports success', errText(r))) return;
  ok(proxy.left() === 0, '3: all three cuts happened', proxy.left());
  const m = methods(r.log);
  ok(m.filter((x) => x === 'POST').length === 1 && m.filter((x) => x === 'HEAD').length >= 3,
     '3: one POST; a HEAD after each cut (the same upload resumed)', m.join(' '));
  const heads = r.log.responses.filter((x) => x.method === 'HEAD').map((x) => Number(x.offset));
  ok(heads.length >= 3 && heads.every((o, i) => o > 0 && (i === 0 || o >= heads[i - 1])),
     '3: the offsets the HEADs report only grow', heads);
  ok(r.log.requests.filter((q) => q.method === 'PATCH').every((q) => Number(q.offset) < n),
     '3: no PATCH past the end', r.log.requests);
  await checkStored(srv, f, r, '3');
});

await step('4: the server killed (SIGKILL) mid-upload, restarted on its port: retryDelays resume it', async () => {
  const f = media('killed.jpg', 20 * MiB + 99, 4);
  const n = f.data.length;
  const killAt = between(0.2 * n, 0.8 * n);
  note(`4: SIGKILL once ${killAt} bytes were sent`);
  let killing = null, killedAt = -1, headsAfter = [];
  const r = await run(f, {
    endpoint: endpoint(),
    // ~35 s of retries, for a slow restart on a loaded machine
    retryDelays: [200, 500, 1000, 1000, 2000, 2000, 3000, 5000, 10000, 10000],
    onProgressHook: (sent) => {
      if (killing || sent < killAt) return;
      killedAt = sent;
      const old = srv;
      killing = (async () => {
        const how = await kill(old, 'SIGKILL');
        // Its port again (a few tries, should binding race the kill).
        for (let i = 0; ; i++) {
          try { srv = await startServer(old.port); break; } catch (e) {
            if (i === 9) throw e;
            await new Promise((res) => setTimeout(res, 500));
          }
        }
        return how;
      })();
    },
  });
  let how = null;
  try { how = await killing; } catch (e) { ok(false, '4: the server restarts on its port', e.stack); return; }
  ok(how === 'SIGKILL', '4: the server was killed by SIGKILL mid-upload', { how, killedAt });
  if (!ok(r.outcome === 'success', '4: tus-js-client reports success', errText(r))) return;
  const m = methods(r.log);
  const heads = r.log.responses.filter((x) => x.method === 'HEAD' && x.status === 200);
  headsAfter = heads.map((x) => Number(x.offset));
  ok(m.filter((x) => x === 'POST').length === 1 && heads.length >= 1,
     '4: one POST; after the restart a HEAD on the same upload', m.join(' '));
  ok(headsAfter.length && headsAfter[0] > 0 && headsAfter[0] < n,
     '4: the restarted server still has the bytes synced before the kill', { headsAfter, killedAt });
  ok(r.log.requests.filter((q) => q.method === 'PATCH' && Number(q.offset) === 0).length === 1,
     '4: nothing is sent twice from 0', r.log.requests);
  await checkStored(srv, f, r, '4');
});

await step('5: metadata sha256 of a stored file: "already stored", no byte sent', async () => {
  // The same bytes as case 1 under another name.  The server answers the
  // POST 200 with Mi-Sha256 and no Location; tus-js-client 4 has no
  // "already there" outcome, so it takes a creation without a Location for
  // an error ("invalid or missing Location header") and retries it, as a
  // 2xx is no client error: an app tells it apart in onShouldRetry/onError.
  const f = { ...big, name: 'again.jpg', path: path.join(work, 'again.jpg') };
  fs.copyFileSync(big.path, f.path);
  const before = storedFiles(), partsBefore = partFiles();
  const r = await run(f, {
    endpoint: endpoint(), metadata: { sha256: f.sha },
    onShouldRetry: (err) => !(err.originalResponse && err.originalResponse.getStatus() === 200),
  });
  const res = r.err && r.err.originalResponse;
  ok(r.outcome === 'error' && res && res.getStatus() === 200 && !res.getHeader('Location'),
     '5: the creation is answered 200 without a Location (tus-js-client calls onError)', errText(r));
  ok(methods(r.log).join(' ') === 'POST', '5: one POST and no PATCH', methods(r.log).join(' '));
  ok(r.log.maxSent === 0, '5: onProgress never reports a byte sent', r.log.progress);
  ok(res && res.getHeader('Mi-Sha256') === f.sha && res.getHeader('Mi-Created') === 'false',
     '5: Mi-Sha256 is the file\'s, Mi-Created false', res && { sha: res.getHeader('Mi-Sha256'), created: res.getHeader('Mi-Created') });
  let body = null;
  try { body = JSON.parse(res.getBody()); } catch { /* checked next */ }
  const list = await listing(srv);
  ok(body && body.created === false && body.sha256 === f.sha && list[f.sha] &&
     body.file_path === list[f.sha].file_path,
     '5: the JSON body points at the stored copy', res && res.getBody());
  ok(JSON.stringify(storedFiles()) === JSON.stringify(before) &&
     JSON.stringify(partFiles()) === JSON.stringify(partsBefore),
     '5: nothing new is stored or left', { before, after: storedFiles(), partsBefore, parts: partFiles() });
});

await step('6: bytes that are not media: onError with a 415, nothing stored', async () => {
  const data = bytes(3 * MiB + 5);
  data.write('this is not an image at all', 0, 'latin1');
  const f = { name: 'fake.jpg', path: path.join(work, 'fake.jpg'), data, sha: sha256(data) };
  fs.writeFileSync(f.path, data);
  const before = storedFiles(), partsBefore = partFiles();
  const listBefore = Object.keys(await listing(srv)).sort();
  const r = await run(f, { endpoint: endpoint() });
  const res = r.err && r.err.originalResponse;
  ok(r.outcome === 'error' && res && res.getStatus() === 415,
     '6: onError, the last PATCH answered 415', errText(r));
  let body = null;
  try { body = JSON.parse(res.getBody()); } catch { /* checked next */ }
  ok(body && typeof body.error === 'string' && body.error.length > 0 && /415/.test(r.err.message),
     '6: the error says why (415 and a JSON "error")', { message: r.err && r.err.message });
  note(`6: tus-js-client: ${r.err && r.err.message.split('\n')[0]}`);
  const m = methods(r.log);
  ok(m.join(' ') === 'POST PATCH PATCH PATCH PATCH', '6: not retried (a 4xx)', m.join(' '));
  const url = r.upload.url;
  const head = url ? await request('HEAD', url, { 'Tus-Resumable': '1.0.0' }) : null;
  ok(head && head.status === 404, '6: the upload is gone (HEAD 404)', head && head.status);
  ok(JSON.stringify(storedFiles()) === JSON.stringify(before) &&
     JSON.stringify(partFiles()) === JSON.stringify(partsBefore),
     '6: nothing is stored or left', { before, after: storedFiles(), partsBefore, parts: partFiles() });
  ok(JSON.stringify(Object.keys(await listing(srv)).sort()) === JSON.stringify(listBefore),
     '6: GET /list is unchanged');
});

await step('the server stops cleanly on SIGTERM', async () => {
  const how = await kill(srv, 'SIGTERM');
  ok(how === 0, 'the server stops cleanly on SIGTERM', { how, log: srv.log().slice(-2000) });
});
note(`${((Date.now() - tStart) / 1000).toFixed(1)} s`);

agent.destroy();
for (const c of children) c.kill('SIGKILL');
if (!process.env.MI_TEST_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
else note(`kept ${tmp}`);
console.log(`1..${count}`);
process.exit(failures ? 1 : 0);
