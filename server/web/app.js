/* mediaindex web gallery: plain JavaScript, no framework, no build step.
 *
 * The timeline is laid out from GET /api/timeline (each month's count):
 * a month not fetched yet takes the height its count would fill, so the
 * scrollbar, the sidebar and the scrubber span the whole library at once.
 * The months near the viewport are fetched (/list?format=ndjson of their
 * days) and laid out exactly, the item at the top of the viewport kept in
 * place; at most 60,000 items are held, the months farthest away dropped.
 * A share link's page reads its whole (small) list at once.  The timeline
 * is virtualised by row: a justified layout is computed for the months
 * held (arithmetic only), and only the rows near the viewport exist in the
 * DOM, so a library of a million items holds a few hundred elements.
 */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const GAP = 4;             // px between cells and rows
  const HEAD_H = 56;         // month heading block
  const MONTH_GAP = 12;      // extra space after a month
  const MAX_ASPECT = 3;      // panoramas are cropped to this
  const UPLOAD_PARALLEL = 3;
  // What the server takes, from its own table (GET /api/formats): the
  // extensions it accepts as uploads and the MIME types it makes JPEG
  // previews of (HEIC, TIFF, raw...).  Filled once at start.
  const formats = { upload: new Set(), preview: new Set() };
  // A share link's page (/s/<token>): the same gallery, showing only what
  // the link holds, through the link's own routes (/s/<token>/list, ...).
  const SHARE = (/^\/s\/([A-Za-z0-9_-]{43})\/?$/.exec(location.pathname) || [])[1] || null;
  const BASE = SHARE ? '/s/' + SHARE : '';
  let shareInfo = null;      // GET /s/<token>/info: {gps, originals, ...}
  function loadFormats(url) {
    return fetch(url)
      .then((r) => (r.ok ? r.json() : { types: [] }))
      .catch(() => ({ types: [] }))
      .then((f) => {
        for (const t of (f && f.types) || []) {
          if (t.upload) formats.upload.add(t.ext);
          if (t.preview) formats.preview.add(t.mime);
        }
        // The picker offers photos and videos as the system knows them, and
        // every extension the server takes (raw files often have no image/
        // type on the client's system).
        $('file-input').accept = ['image/*', 'video/*', ...[...formats.upload].map((x) => '.' + x)].join(',');
      });
  }
  // A link's formats come once it is open (it may need its password).
  let formatsReady = SHARE ? Promise.resolve() : loadFormats('/api/formats');

  const monthFmt = new Intl.DateTimeFormat(undefined, { month: 'long', year: 'numeric' });
  const shortMonthFmt = new Intl.DateTimeFormat(undefined, { month: 'short' });
  const longDateFmt = new Intl.DateTimeFormat(undefined, {
    weekday: 'short', year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  const numFmt = new Intl.NumberFormat();

  const el = {
    timeline: $('timeline'), months: $('months'), sidebar: $('sidebar'), scrim: $('scrim'),
    menuBtn: $('menu-btn'), count: $('count'), scan: $('scan-status'),
    state: $('state'), stateIcon: $('state-icon'), stateTitle: $('state-title'),
    stateText: $('state-text'), stateAction: $('state-action'),
    scrubber: $('scrubber'), scrubYears: $('scrub-years'), scrubThumb: $('scrub-thumb'),
    bubble: $('scrub-bubble'),
    viewer: $('viewer'), stage: $('stage'), vThumb: $('v-thumb'), vFull: $('v-full'),
    vVideo: $('v-video'), vNote: $('v-note'), vPrev: $('v-prev'), vNext: $('v-next'),
    vClose: $('v-close'), vInfo: $('v-info-btn'), vDownload: $('v-download'),
    caption: $('caption'), capTitle: $('cap-title'), capDate: $('cap-date'),
    capPlace: $('cap-place'), capCamera: $('cap-camera'), capFile: $('cap-file'),
    filterBtn: $('filter-btn'), filterPanel: $('filter-panel'), from: $('from'), to: $('to'),
    filterClear: $('filter-clear'), chipRow: $('chip-row'), chipText: $('chip-text'),
    chipX: $('chip-x'), uploadBtn: $('upload-btn'), fileInput: $('file-input'),
    dropzone: $('dropzone'), uploads: $('uploads'), upTitle: $('up-title'),
    upList: $('up-list'), upClose: $('up-close'), toast: $('toast'), main: $('main'),
    problemsBtn: $('problems-btn'), problems: $('problems'), prList: $('pr-list'),
    prClose: $('pr-close'), prMore: $('pr-more'), readonly: $('readonly'),
    accountBtn: $('account-btn'), account: $('account'), setupLink: $('setup-link'),
    selectBtn: $('select-btn'), selBar: $('sel-bar'), selCount: $('sel-count'),
    selShare: $('sel-share'), selDelete: $('sel-delete'), selRestore: $('sel-restore'),
    selPurge: $('sel-purge'), selCancel: $('sel-cancel'), vDelete: $('v-delete'), vShare: $('v-share'),
    sideLinks: $('side-links'), photosLink: $('photos-link'), trashLink: $('trash-link'),
    trashCount: $('trash-count'), trash: $('trash'), trashTitle: $('trash-title'),
    trashGrid: $('trash-grid'), trashState: $('trash-state'), trashEmpty: $('trash-empty'),
    searchForm: $('search-form'), q: $('q'), placesLink: $('places-link'),
    places: $('places'), placesTitle: $('places-title'), placesList: $('places-list'),
    placesNone: $('places-none'),
    similarLink: $('similar-link'), similarCount: $('similar-count'), similar: $('similar'),
    similarTitle: $('similar-title'), similarGroups: $('similar-groups'),
    similarState: $('similar-state'), similarStateTitle: $('similar-state-title'),
    similarPick: $('similar-pick'),
  };

  // The session ended (logged out elsewhere, expired, a new password): the
  // server answers 401, and / shows its login page, which comes back here.
  let reloading = false;
  function authLost(status) {
    if (status !== 401 || reloading) return false;
    if (SHARE) { showUnlock(); return true; }
    reloading = true;
    location.reload();
    return true;
  }

  /* ---------------------------------------------------------------- data */

  // The library is a list of months, newest first, each with its count
  // (GET /api/timeline) and, once fetched (GET /list of its days), its
  // items, newest first: {sha, t, name, path, w, h, a, video, thumb, ...}.
  // Item i of the library (a cell's data-i) is item i - m.start of the
  // month m that holds it.  Only the months near the viewport are fetched,
  // and at most KEEP items are held: the months farthest from the viewport
  // are dropped first (and fetched again when they come near).  A share
  // link's page (few items, and no /api/timeline) reads its whole list at
  // once and holds every month (`whole`), as does a server without it.
  let months = [];       // {key, ym, year, month, label, short, count, items, start, top, h, ...}
  let bySha = new Map(); // sha -> item held (it.mo: its month, it.j: its place in it)
  let motionOf = new Map(); // a Live Photo's motion: video sha -> the photo's item
  let nItems = 0;        // in the library: the sum of the months' counts
  let whole = false;     // every month held, read from one /list
  const filter = { from: '', to: '', q: '' };
  let loaded = false;
  const KEEP = 60000;    // items held at most
  const NEAR = 1.5;      // screens above and below the viewport fetched
  const FETCHES = 2;     // months fetched at once, at most
  const SMALL = 500;     // items read in one /list at most, rather than by month
  function num(v) {
    if (typeof v === 'number') return Number.isFinite(v) ? v : NaN;
    if (typeof v === 'string' && v !== '') {
      const n = Number(v);
      if (Number.isFinite(n)) return n;
      const d = Date.parse(v);
      return Number.isFinite(d) ? d / 1000 : NaN;
    }
    return NaN;
  }

  function toItem(sha, e) {
    let t = num(e.original_creation_date);
    if (!Number.isFinite(t)) t = num(e.last_modified);
    if (!Number.isFinite(t)) t = 0;
    const name = String(e.filename || e.original_filename || (e.file_path || '').split('/').pop() || sha);
    const mime = typeof e.mime_type === 'string' ? e.mime_type : '';
    const video = e.kind === 'video' || mime.startsWith('video/');
    const w = num(e.width), h = num(e.height);
    const known = w > 0 && h > 0;
    const lat = num(e.latitude), lon = num(e.longitude);
    // Images have a thumbnail unless the server says none; videos only
    // when it names one (it answers 404 for videos otherwise).
    const hasThumbField = Object.prototype.hasOwnProperty.call(e, 'thumbnail_file');
    const thumb = video ? !!e.thumbnail_file : (!hasThumbField || !!e.thumbnail_file);
    return {
      sha: sha.toLowerCase(), t, name, path: String(e.file_path || ''), mime, video, thumb,
      w: known ? w : 0, h: known ? h : 0, a: known ? w / h : (video ? 16 / 9 : 1),
      lat: Number.isFinite(lat) ? lat : null, lon: Number.isFinite(lon) ? lon : null,
      make: e.make || e.camera_make || '', model: e.model || e.camera_model || e.camera || '',
      size: num(e.size),
      codec: typeof e.codec === 'string' ? e.codec : '',
      live: typeof e.live_photo_id === 'string' ? e.live_photo_id : '',
      duration: num(e.duration),
      city: typeof e.city === 'string' ? e.city : '',
      region: typeof e.region === 'string' ? e.region : '',
      country: typeof e.country === 'string' ? e.country : '',
    };
  }

  // A Live Photo is one item: the photo, with its motion (the video that
  // carries the same id) attached; the video is not shown on its own.
  function pairLive(list) {
    const videos = new Map();
    for (const it of list) if (it.video && it.live) videos.set(it.live, it);
    if (!videos.size) return list;
    const paired = new Set();
    for (const it of list) {
      const v = !it.video && it.live ? videos.get(it.live) : null;
      it.motion = v || null;
      if (v) paired.add(v);
    }
    return list.filter((it) => !paired.has(it));
  }

  const newestFirst = (x, y) => (y.t - x.t) || (x.sha < y.sha ? -1 : x.sha > y.sha ? 1 : 0);
  function monthKeyOf(t) {
    const d = new Date(t * 1000);   // local time, like the server's calendar
    return d.getFullYear() * 12 + d.getMonth();
  }
  function newMonth(key) {
    const year = Math.floor(key / 12), month = key - year * 12;
    const d = new Date(year, month, 1);
    return { key, year, month, ym: `${year}-${String(month + 1).padStart(2, '0')}`,
             label: monthFmt.format(d), short: shortMonthFmt.format(d),
             count: 0, raw: 0, items: null, start: 0, top: 0, h: 0, b0: 0,
             lay: null, known: null, ver: 0, stale: false, heldAt: 0, retryAt: 0, pending: null };
  }
  function monthByKey(key) {
    let lo = 0, hi = months.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (months[mid].key === key) return months[mid];
      if (months[mid].key > key) lo = mid + 1; else hi = mid - 1;
    }
    return null;
  }

  // Hold these items (a month's, Live Photos paired) as month m's.
  function holdMonth(m, list, raw) {
    if (m.items) unhold(m);
    list.sort(newestFirst);
    for (let j = 0; j < list.length; j++) {
      const it = list[j];
      it.mo = m; it.j = j;
      bySha.set(it.sha, it);
      if (it.motion) motionOf.set(it.motion.sha, it);
      aspectSum += aspectOf(it);
      aspectN++;
    }
    m.items = list;
    m.count = list.length;
    m.raw = raw;
    m.stale = false;
    m.lay = null;
    m.ver++;
    m.heldAt = performance.now();
  }
  function unhold(m) {
    for (const it of m.items) {
      if (bySha.get(it.sha) === it) bySha.delete(it.sha);
      if (it.motion && motionOf.get(it.motion.sha) === it) motionOf.delete(it.motion.sha);
    }
  }
  // Let a month go: its height at this width is kept for its placeholder.
  function dropMonth(m) {
    if (!m.items) return;
    unhold(m);
    if (m.lay) m.known = { w: m.lay.w, h: m.lay.h };
    m.items = null;
    m.lay = null;
    m.ver++;
  }

  // Months without items go; each month's first index, and the total.
  function recount() {
    months = months.filter((m) => m.count > 0);
    let s = 0;
    for (const m of months) { m.start = s; s += m.count; }
    nItems = s;
    if (vItem && vItem.mo && bySha.get(vItem.sha) === vItem) vIndex = indexOf(vItem);
  }

  function monthIndexOf(i) {   // the month of item i
    let lo = 0, hi = months.length - 1, ans = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (months[mid].start <= i) { ans = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return ans;
  }
  // Item i, or undefined while its month is not held.
  function itemAt(i) {
    if (!(i >= 0 && i < nItems)) return undefined;
    const m = months[monthIndexOf(i)];
    return m.items ? m.items[i - m.start] : undefined;
  }
  function indexOf(it) { return it.mo.start + it.j; }

  // The whole list at once (a share link): grouped by local month, all held.
  function holdWhole(list) {
    for (const m of months) dropMonth(m);
    bySha = new Map();
    motionOf = new Map();
    const raw = new Map(), by = new Map();
    for (const it of list) {
      const k = monthKeyOf(it.t);
      raw.set(k, (raw.get(k) || 0) + 1);
    }
    for (const it of pairLive(list)) {
      const k = monthKeyOf(it.t);
      if (!by.has(k)) by.set(k, []);
      by.get(k).push(it);
    }
    months = [...by.keys()].sort((a, b) => b - a).map((k) => {
      const m = newMonth(k);
      holdMonth(m, by.get(k), raw.get(k));
      return m;
    });
    recount();
  }

  // The months of /api/timeline: the months held stay held (a month whose
  // count changed is fetched again when it is near: `stale`), the others
  // take the server's count.
  function applyTimeline(list, refetchAll) {
    const old = new Map(months.map((m) => [m.ym, m]));
    const next = [];
    for (const e of list) {
      const mm = e && /^(\d{4})-(\d{2})$/.exec(e.month);
      if (!mm || !(e.count > 0)) continue;
      let m = old.get(e.month);
      old.delete(e.month);
      if (!m) m = newMonth(Number(mm[1]) * 12 + Number(mm[2]) - 1);
      if (!m.items) m.count = e.count;
      else if (refetchAll || m.raw !== e.count) m.stale = true;
      next.push(m);
    }
    for (const m of old.values()) { dropMonth(m); abortFetch(m); }
    months = next;
    recount();
  }

  // Items added (new, or changed: they replace the one with their hash)
  // and hashes gone, in the months held; a month the library did not have
  // is made, and held.  A month not held is left to the timeline's counts.
  function applyChanges(adds, gone) {
    const touched = new Map();   // month -> its raw items (Live Photos apart)
    const rawOf = (m) => {
      let r = touched.get(m);
      if (!r) {
        r = [];
        for (const it of m.items || []) { r.push(it); if (it.motion) r.push(it.motion); }
        touched.set(m, r);
      }
      return r;
    };
    const out = new Set(gone);
    for (const it of adds) out.add(it.sha);
    for (const sha of out) {
      const it = bySha.get(sha) || motionOf.get(sha);
      if (it) rawOf(it.mo);
    }
    for (const [m, r] of touched) touched.set(m, r.filter((it) => !out.has(it.sha)));
    for (const it of adds) {
      const k = monthKeyOf(it.t);
      let m = monthByKey(k);
      if (!m) {
        m = newMonth(k);
        m.items = [];
        months.push(m);
        months.sort((a, b) => b.key - a.key);
      }
      if (m.items) rawOf(m).push(it);
    }
    for (const [m, r] of touched) {
      holdMonth(m, pairLive(r), r.length);
      if (!m.count) { unhold(m); abortFetch(m); }
    }
    recount();
  }

  // Only the months near the viewport are held: those farthest go first.
  function evict() {
    if (whole) return;
    let held = 0;
    for (const m of months) if (m.items) held += m.items.length;
    if (held <= KEEP) return;
    const [top, bottom] = viewRange();
    const now = performance.now();
    const far = months.filter((m) => m.items && !kept(m, now))
      .map((m) => [m, distance(m, top, bottom)])
      .filter(([, d]) => d > (bottom - top) * (NEAR + 1))
      .sort((a, b) => b[1] - a[1]);
    for (const [m] of far) {
      if (held <= KEEP) break;
      held -= m.items.length;
      dropMonth(m);
    }
  }
  // Not dropped: the viewer's month, one with a selected item, one just fetched.
  function kept(m, now) {
    if (vItem && vItem.mo === m) return true;
    if (now - m.heldAt < 2000) return true;
    if (selected.size) for (const it of m.items) if (selected.has(it.sha)) return true;
    return false;
  }
  function distance(m, top, bottom) {
    return m.top > bottom ? m.top - bottom : m.top + m.h < top ? top - (m.top + m.h) : 0;
  }

  /* ------------------------------------------------------------ fetching */

  function query(extra) {
    const q = new URLSearchParams(extra);
    if (filter.from) q.set('from', filter.from);
    if (filter.to) q.set('to', filter.to);
    if (filter.q) q.set('q', filter.q);
    return q.toString();
  }
  // Newest first, one entry per line: the first screenful can be drawn
  // while the rest of a large library is still arriving.
  function listURL() {
    return SHARE ? BASE + '/list' : '/list?' + query({ format: 'ndjson' });
  }
  function timelineURL() {
    const q = query({});
    return '/api/timeline' + (q ? '?' + q : '');
  }
  // A month's days (within the date filter), with the search.
  function monthURL(m) {
    const last = new Date(m.year, m.month + 1, 0).getDate();
    let from = m.ym + '-01', to = m.ym + '-' + String(last).padStart(2, '0');
    if (filter.from > from) from = filter.from;
    if (filter.to && filter.to < to) to = filter.to;
    const q = new URLSearchParams({ format: 'ndjson', from, to });
    if (filter.q) q.set('q', filter.q);
    return '/list?' + q.toString();
  }

  function parseLines(text, list) {
    for (const line of text.split('\n')) {
      if (!line) continue;
      const e = JSON.parse(line);
      if (e && typeof e === 'object' && typeof e.sha256 === 'string') list.push(toItem(e.sha256, e));
    }
  }

  // Read the NDJSON body; call early(list) once, as soon as the first
  // screenful of items has arrived (and not on a quiet refresh).
  async function readList(r, seq, early) {
    const list = [];
    const ctype = r.headers.get('Content-Type') || '';
    if (!ctype.includes('ndjson')) {          // an older server: one object
      const data = await r.json();
      for (const sha in data) {
        const e = data[sha];
        if (e && typeof e === 'object') list.push(toItem(sha, e));
      }
      return list;
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let rest = '', earlyDone = !early;
    for (;;) {
      const { value, done } = await reader.read();
      if (seq !== loadSeq) { reader.cancel(); return null; }
      const text = rest + (done ? dec.decode() : dec.decode(value, { stream: true }));
      const cut = done ? text.length : text.lastIndexOf('\n') + 1;
      rest = text.slice(cut);
      parseLines(text.slice(0, cut), list);
      if (!earlyDone && (list.length >= 60 || done)) {
        earlyDone = true;
        early(list.slice());
        if (!done) await firstPaint(600);
      }
      if (done) return list;
    }
  }

  // Months fetched now: their AbortControllers.  `epoch` changes with the
  // filter: what a fetch of another epoch brings is thrown away.
  const inflight = new Map();
  let epoch = 0;
  function abortFetch(m) {
    const c = inflight.get(m);
    if (c) { c.abort(); inflight.delete(m); }
  }
  function abortAll() {
    for (const c of inflight.values()) c.abort();
    inflight.clear();
  }

  // Fetch month m (once at a time); resolves when it is held, or failed.
  // `keep`: not aborted when it leaves the viewport's surroundings (the
  // viewer or the keyboard waits for it).
  function fetchMonth(m, keep) {
    if (m.pending) {
      if (keep) m.keepFetch = true;
      return m.pending;
    }
    const c = new AbortController(), ep = epoch;
    inflight.set(m, c);
    m.keepFetch = !!keep;
    m.pending = (async () => {
      try {
        const r = await fetch(monthURL(m), { cache: 'no-cache', signal: c.signal,
                                             headers: { Accept: 'application/x-ndjson' } });
        if (authLost(r.status)) return;
        if (!r.ok) throw new Error('HTTP ' + r.status);
        const text = await r.text();
        if (ep !== epoch || c.signal.aborted) return;
        const raw = [];
        parseLines(text, raw);
        gotMonth(m, raw);
      } catch (err) {
        if (err && err.name === 'AbortError') return;
        m.retryAt = performance.now() + 5000;
        if (ep === epoch && !months.some((x) => x.items)) showError(err);   // nothing to show
        else if (ep === epoch) toast('Could not load ' + m.label + ': ' + (err && err.message ? err.message : 'the server did not answer'));
      } finally {
        if (inflight.get(m) === c) inflight.delete(m);
        m.pending = null;
        m.keepFetch = false;
        if (ep === epoch) scheduleRender();
      }
    })();
    return m.pending;
  }

  function gotMonth(m, raw) {
    if (!months.includes(m)) return;   // gone from the library meanwhile
    const anchor = trashOn ? null : topAnchor();
    const before = m.count;
    holdMonth(m, pairLive(raw), raw.length);
    recount();
    evict();
    if (m.count !== before || !m.count) { buildNav(); updateCount(); }
    if (!otherView()) relayout(anchor, false);
    if (!nItems) showEmpty();
    performance.mark('mi:month');
  }

  // The months in and near the viewport, the nearest first: fetch those not
  // held (at most FETCHES at once), stop fetching those scrolled away.
  function fetchNear() {
    if (whole || !loaded || !nBlocks || otherView()) return;
    const [top, bottom] = viewRange();
    const vh = bottom - top, lo = top - vh * NEAR, hi = bottom + vh * NEAR;
    const near = [];
    for (let k = monthAt(Math.max(0, lo)); k < months.length && months[k].top <= hi; k++) near.push(months[k]);
    const want = new Set(near);
    for (const [m, c] of inflight) {
      if (!want.has(m) && !m.keepFetch) { c.abort(); inflight.delete(m); }
    }
    near.sort((a, b) => distance(a, top, bottom) - distance(b, top, bottom));
    const now = performance.now();
    for (const m of near) {
      if (inflight.size >= FETCHES) break;
      if ((m.items && !m.stale) || m.pending || now < m.retryAt) continue;
      fetchMonth(m);
    }
  }

  let loadSeq = 0;
  // Start, a new filter, or (keepScroll and quiet) the library changed.
  async function load(opts = {}) {
    if (SHARE) return loadWhole(opts);
    const seq = ++loadSeq;
    if (!opts.quiet) el.count.textContent = 'Loading…';
    let tl;
    try {
      const r = await fetch(timelineURL(), { cache: 'no-cache' });
      if (authLost(r.status)) return;
      if (r.status === 404 || r.status === 405) { if (seq === loadSeq) loadWhole(opts); return; }
      if (r.status === 400 && filter.q) { if (seq === loadSeq) cannotRead(r, seq); return; }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      tl = await r.json();
    } catch (err) {
      if (seq !== loadSeq) return;
      if (opts.quiet && loaded) { toast('Could not refresh the library: the server did not answer.'); return; }
      showError(err);
      return;
    }
    if (seq !== loadSeq) return;
    // A small library (or search) is read in one request, like a share
    // link's: fewer requests than its months, and laid out exactly at once.
    if (tl && tl.total <= SMALL) { loadWhole(opts); return; }
    const anchor = opts.keepScroll && loaded && !whole ? topAnchor() : null;
    if (!anchor) {
      epoch++;
      abortAll();
      for (const m of months) dropMonth(m);
      months = [];
      bySha = new Map();
      motionOf = new Map();
    }
    whole = false;
    applyTimeline((tl && Array.isArray(tl.months)) ? tl.months : [], !!opts.all);
    performance.mark('mi:timeline');
    shown(anchor, !anchor);
  }

  // The timeline drawn again from the months: after a load or a change.
  function shown(anchor, fresh) {
    loaded = true;
    if (nItems) hideState();   // the timeline must be shown to be measured
    if (!otherView()) relayout(anchor, fresh);
    buildNav();
    updateCount();
    if (!nItems) showEmpty();
    performance.mark('mi:list');
    route();
  }

  // A search that does not parse: say why, keep the words to fix.
  async function cannotRead(r, seq) {
    let why = '';
    try { why = (await r.json()).error || ''; } catch (e) { /* none */ }
    if (seq !== loadSeq) return;
    epoch++;
    abortAll();
    holdWhole([]);
    relayout(null, true);
    buildNav();
    el.count.textContent = '';
    showState('#i-search', 'This search cannot be read', why.replace(/^search: /, ''),
              'Clear the search', () => applySearch(''));
  }

  // The whole list in one request: a share link's, or a server without
  // /api/timeline.
  async function loadWhole(opts = {}) {
    const seq = ++loadSeq;
    let anchor = opts.keepScroll ? topAnchor() : null;
    if (!opts.quiet) el.count.textContent = 'Loading…';
    let list;
    let drewEarly = false;
    try {
      const r = await fetch(listURL(), { cache: 'no-cache', headers: { Accept: 'application/x-ndjson, application/json' } });
      if (authLost(r.status)) return;
      if (SHARE && r.status === 404) { showGone(); return; }
      if (r.status === 400 && filter.q) { cannotRead(r, seq); return; }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      epoch++;
      abortAll();
      whole = true;
      list = await readList(r, seq, opts.keepScroll || opts.quiet ? null : (first) => {
        // The first screenful: lay it out and draw it now.
        holdWhole(first);
        if (nItems) hideState();
        relayout(null, true);
        drewEarly = true;
        performance.mark('mi:early');
      });
    } catch (err) {
      if (seq !== loadSeq) return;
      if (opts.quiet && loaded) { toast('Could not refresh the library: the server did not answer.'); return; }
      showError(err);
      return;
    }
    if (seq !== loadSeq || !list) return;
    performance.mark('mi:list-parsed');
    if (drewEarly && !anchor) anchor = topAnchor();
    holdWhole(list);
    shown(anchor, true);
  }

  function updateCount() {
    const n = nItems;
    el.count.textContent = n === 1 ? '1 item' : numFmt.format(n) + ' items';
  }
  /* -------------------------------------------------------------- layout */

  // Blocks, in document order: a month heading, a row of cells, or the
  // place of a month not held (its height estimated from its count).
  let bTop = new Float64Array(0), bH = new Float64Array(0);
  let bKind = new Uint8Array(0);          // 0 heading, 1 row, 2 a month not held
  let bM = new Int32Array(0);             // the block's month
  let bA = new Int32Array(0), bB = new Int32Array(0); // row: item range
  let nBlocks = 0, total = 0, layoutWidth = 0;
  let aspectSum = 0, aspectN = 0;         // of the items held so far: for estimates

  function targetHeight(width) {
    return width < 520 ? 108 : width < 900 ? 150 : 180;
  }

  function aspectOf(it) {
    return Math.min(MAX_ASPECT, Math.max(1 / MAX_ASPECT, it.a));
  }

  // Month m's justified rows at this width: per item its x, width and row;
  // per row its first item, end and height; h: the rows' height with gaps.
  function layMonth(m, width, target) {
    const list = m.items, n = list.length;
    const cx = new Float32Array(n), cw = new Float32Array(n), crow = new Int32Array(n);
    const ra = [], rb = [], rh = [];
    let y = 0, i = 0;
    while (i < n) {
      let sum = 0, j = i, full = false;
      while (j < n) {
        sum += aspectOf(list[j]);
        j++;
        if (sum * target + (j - i - 1) * GAP >= width) { full = true; break; }
      }
      let h;
      if (full) {
        h = (width - (j - i - 1) * GAP) / sum;
        // Would the row look closer to the target without its last item?
        if (j - i > 1) {
          const s2 = sum - aspectOf(list[j - 1]);
          const h2 = (width - (j - i - 2) * GAP) / s2;
          if (h2 < target * 1.3 && Math.abs(h2 - target) < Math.abs(h - target)) {
            j--; sum = s2; h = h2;
          }
        }
      } else {
        h = target;
      }
      h = Math.round(h);
      let x = 0;
      for (let k = i; k < j; k++) {
        const w = k === j - 1 && full ? width - x : Math.round(aspectOf(list[k]) * h);
        cx[k] = x; cw[k] = Math.max(1, w); crow[k] = ra.length;
        x += w + GAP;
      }
      ra.push(i); rb.push(j); rh.push(h);
      y += h + GAP;
      i = j;
    }
    m.lay = { w: width, cx, cw, crow, ra, rb, rh, h: y };
  }

  // The rows' height of a month not held: its own when it was held at this
  // width, else its count in rows of the target height, filled with items
  // of the average aspect ratio seen so far.
  function estimate(m, width, target) {
    if (m.known && m.known.w === width) return m.known.h;
    const a = aspectN ? aspectSum / aspectN : 4 / 3;
    const line = m.count * (a * target + GAP) - GAP;
    const rows = line <= width ? 1 : Math.max(1, Math.round((line + GAP) / (width + GAP)));
    return rows * (target + GAP);
  }

  function computeLayout(width) {
    let cap = months.length * 2 + 1;
    for (const m of months) if (m.items) cap += m.items.length;
    if (bTop.length < cap) {
      const c = Math.max(cap, bTop.length * 2);
      bTop = new Float64Array(c); bH = new Float64Array(c); bKind = new Uint8Array(c);
      bM = new Int32Array(c); bA = new Int32Array(c); bB = new Int32Array(c);
    }
    const target = targetHeight(width);
    let y = 0, nb = 0;
    for (let k = 0; k < months.length; k++) {
      const mo = months[k];
      mo.top = y;
      bTop[nb] = y; bH[nb] = HEAD_H; bKind[nb] = 0; bM[nb] = k; nb++;
      y += HEAD_H;
      mo.b0 = nb;
      if (mo.items) {
        if (!mo.lay || mo.lay.w !== width) layMonth(mo, width, target);
        const L = mo.lay;
        for (let r = 0; r < L.ra.length; r++) {
          bTop[nb] = y; bH[nb] = L.rh[r]; bKind[nb] = 1; bM[nb] = k;
          bA[nb] = mo.start + L.ra[r]; bB[nb] = mo.start + L.rb[r]; nb++;
          y += L.rh[r] + GAP;
        }
      } else {
        const h = estimate(mo, width, target);
        bTop[nb] = y; bH[nb] = h - GAP; bKind[nb] = 2; bM[nb] = k;
        bA[nb] = mo.start; bB[nb] = mo.start + mo.count; nb++;
        y += h;
      }
      y += MONTH_GAP;
      mo.h = y - mo.top;
    }
    nBlocks = nb;
    total = Math.ceil(y);
    layoutWidth = width;
  }

  // Item i's cell (its month held): x, width, and its row's block.
  function cellX(i) { const m = months[monthIndexOf(i)]; return m.lay.cx[i - m.start]; }
  function cellW(i) { const m = months[monthIndexOf(i)]; return m.lay.cw[i - m.start]; }
  function cellRow(i) { const m = months[monthIndexOf(i)]; return m.b0 + m.lay.crow[i - m.start]; }

  // The first block whose bottom is below y.
  function blockAt(y) {
    let lo = 0, hi = nBlocks - 1, ans = nBlocks;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (bTop[mid] + bH[mid] >= y) { ans = mid; hi = mid - 1; } else lo = mid + 1;
    }
    return ans;
  }

  function monthAt(y) {
    let lo = 0, hi = months.length - 1, ans = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (months[mid].top <= y) { ans = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return ans;
  }

  /* ----------------------------------------------------------- rendering */

  const rendered = new Map(); // block key (its month and place) -> element
  let timelineTop = 0, headerH = 56;
  let lastScrollY = 0, fastUntil = 0, lastBigMove = -1e9, settleTimer = 0, rafPending = false;
  let firstThumb = false, firstThumbWaiter = null;

  // Until the first thumbnails are on screen, reading the rest of a large
  // list would keep the main thread (and the server) busy: wait for them,
  // at most a moment.
  function firstPaint(ms) {
    if (firstThumb) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => { firstThumbWaiter = null; resolve(); }, ms);
      firstThumbWaiter = () => { clearTimeout(t); firstThumbWaiter = null; resolve(); };
    });
  }

  function measure() {
    headerH = document.querySelector('.topbar').getBoundingClientRect().height;
    timelineTop = el.timeline.getBoundingClientRect().top + window.scrollY;
  }

  // Visible range of the timeline, in timeline coordinates.
  function viewRange() {
    const top = window.scrollY + headerH - timelineTop;
    return [top, window.scrollY + window.innerHeight - timelineTop];
  }

  // What is at the top of the viewport, to keep it there when what is
  // above it changes height: an item's row, or a place in a month.
  function topAnchor() {
    if (!nBlocks || otherView()) return null;
    const [top] = viewRange();
    const b = blockAt(Math.max(0, top));
    if (b >= nBlocks) return null;
    const m = months[bM[b]];
    if (bKind[b] === 1 || (bKind[b] === 0 && m.items && m.items.length)) {
      const it = bKind[b] === 1 ? itemAt(bA[b]) : m.items[0];
      return { sha: it.sha, off: bTop[b] - top, heading: bKind[b] === 0 };
    }
    return { ym: m.ym, off: m.top - top };
  }

  // Lay out again (after a change of width or of the months held), the
  // anchor where it was; `fresh`: every element is made anew.
  function relayout(anchor, fresh = true) {
    if (fresh) {
      for (const node of rendered.values()) node.remove();
      rendered.clear();
    }
    measure();
    const width = Math.floor(el.timeline.clientWidth);
    computeLayout(width);
    el.timeline.style.height = total + 'px';
    const it = anchor && anchor.sha ? bySha.get(anchor.sha) : null;
    let y = null;
    if (it) {
      let b = cellRow(indexOf(it));
      if (anchor.heading && b > 0 && bKind[b - 1] === 0) b--;
      y = bTop[b];
    } else if (anchor && anchor.ym) {
      const m = months.find((x) => x.ym === anchor.ym);
      if (m) y = m.top;
    }
    if (y !== null) {
      const to = Math.max(0, timelineTop + y - headerH - anchor.off);
      if (Math.abs(to - window.scrollY) >= 1) {
        window.scrollTo(0, to);
        if (pinned) pinned.y = window.scrollY;
        lastScrollY = window.scrollY;   // not a move of the user's
      }
    }
    buildScrubber();
    render();
  }
  function thumbURL(it) { return BASE + '/thumbnail/' + it.sha; }
  // The 512 px JPEG: sharp on HiDPI screens and large tiles (and lighter
  // than the 256 px PNG).
  function largeURL(it) { return BASE + '/thumbnail/' + it.sha + '?size=512'; }
  function imageURL(it) { return BASE + '/image/' + it.sha; }
  // A link without its originals shows previews, and no downloads.
  function originals() { return !SHARE || !!(shareInfo && shareInfo.originals); }
  // Formats browsers cannot show, and large originals (a 1600 px JPEG
  // loads many times faster than a 12 MP photo): the server's preview.
  // A GIF's, an APNG's or a WebP's preview would lose its animation.
  const PREVIEW_ABOVE = 3 * 1024 * 1024;
  const MAY_MOVE = new Set(['image/gif', 'image/apng', 'image/webp']);
  function wantsPreview(it) {
    return !originals() || formats.preview.has(it.mime) ||
      (it.thumb && !it.video && !MAY_MOVE.has(it.mime) && it.size > PREVIEW_ABOVE);
  }
  function viewURL(it) { return wantsPreview(it) ? BASE + '/preview/' + it.sha : imageURL(it); }

  function altText(it) {
    const kind = it.video ? 'Video' : 'Photo';
    return `${kind} ${it.name}, ${longDateFmt.format(new Date(it.t * 1000))}`;
  }
  function makeHeading(b) {
    const m = months[bM[b]];
    const h = document.createElement('h2');
    h.className = 'month';
    h.id = 'm-' + m.ym;
    h.style.top = bTop[b] + 'px';
    h.textContent = m.label;
    const c = document.createElement('span');
    c.className = 'month-count';
    const n = m.count;
    c.textContent = n === 1 ? '1 item' : numFmt.format(n) + ' items';
    h.append(' ', c);
    return h;
  }

  // The place of a month not held yet: grey rows until its items come.
  function makePlaceholder(b) {
    const d = document.createElement('div');
    d.className = 'ph';
    d.style.top = bTop[b] + 'px';
    d.style.height = bH[b] + 'px';
    d.style.setProperty('--rh', targetHeight(layoutWidth) + 'px');
    return d;
  }

  // Sizes the tile's image; returns the side of its square in CSS px.
  function placeImg(img, it, w, h) {
    // Thumbnails are the picture fitted in a 256x256 transparent square
    // (the large ones, fitted in 512x512 with object-fit: contain, take
    // the same place): size the square so the picture covers the cell.
    if (!it.w) { img.style.cssText = ''; return Math.max(w, h); }
    const a = it.a;
    const s = Math.ceil(Math.max(w / Math.min(1, a), h / Math.min(1, 1 / a)));
    img.style.width = s + 'px';
    img.style.height = s + 'px';
    img.style.left = Math.round((w - s) / 2) + 'px';
    img.style.top = Math.round((h - s) / 2) + 'px';
    return s;
  }

  // The grid image for a square of `side` CSS px: the 256 px PNG while it
  // is sharp enough, else the 512 px JPEG.
  function gridURL(it, side) {
    return side * (window.devicePixelRatio || 1) > 300 ? largeURL(it) : thumbURL(it);
  }

  // Start loading a tile's image.  A large thumbnail not made yet (most
  // are made on their first request: about 60 ms for a phone's JPEG, a
  // second for a HEIC) is fetched aside, once: the small one shows if it
  // takes long, and the large one replaces it when it is there; if it
  // cannot be made, the small one stays.
  function loadThumb(img, url) {
    if (!url.endsWith('?size=512')) { img.src = url; return; }
    const small = url.slice(0, -'?size=512'.length);
    const hi = new Image();
    const slow = setTimeout(() => { if (img.isConnected && !img.getAttribute('src')) img.src = small; }, 700);
    hi.onload = () => { clearTimeout(slow); if (img.isConnected) img.src = url; };
    hi.onerror = () => { clearTimeout(slow); if (img.isConnected && img.getAttribute('src') !== small) img.src = small; };
    hi.src = url;
  }
  function makeRow(b, loadNow) {
    const row = document.createElement('div');
    row.className = 'row';
    row.style.top = bTop[b] + 'px';
    row.style.height = bH[b] + 'px';
    const h = bH[b];
    const m = months[bM[b]], L = m.lay;
    for (let i = bA[b]; i < bB[b]; i++) {
      const it = m.items[i - m.start];
      const a = document.createElement('a');
      a.className = it.video ? 'cell video' : 'cell';
      a.href = '#/photo/' + it.sha;
      a.dataset.i = i;
      if (selected.has(it.sha)) { a.classList.add('selected'); a.setAttribute('aria-pressed', 'true'); }
      const x = L.cx[i - m.start], w = L.cw[i - m.start];
      a.style.left = x + 'px';
      a.style.width = w + 'px';
      const check = document.createElement('span');
      check.className = 'check';
      check.title = 'Select';
      a.append(check);
      if (it.thumb) {
        const img = document.createElement('img');
        img.alt = altText(it);
        img.decoding = 'async';
        img.draggable = false;
        const url = gridURL(it, placeImg(img, it, w, h));
        if (loadNow) loadThumb(img, url); else img.dataset.src = url;
        a.append(img);
      } else {
        a.setAttribute('aria-label', altText(it));
        const n = document.createElement('span');
        n.className = 'cell-name';
        n.textContent = it.name;
        a.append(n);
      }
      if (it.motion) {
        const badge = document.createElement('span');
        badge.className = 'badge badge-live';
        badge.textContent = 'LIVE';
        a.append(badge);
      }
      if (it.video) {
        const badge = document.createElement('span');
        badge.className = 'badge';
        badge.innerHTML = '<svg aria-hidden="true"><use href="#i-play"/></svg>';
        if (it.duration > 0) {
          const d = document.createElement('span');
          d.className = 'badge-time';
          const sec = Math.round(it.duration);
          d.textContent = `${Math.floor(sec / 60)}:${String(sec % 60).padStart(2, '0')}`;
          badge.append(d);
        }
        a.append(badge);
      }
      row.append(a);
    }
    return row;
  }

  // A block's element is kept while what it shows is the same (a month
  // fetched above it only moves it): its key names its place, its `sig`
  // what it shows.
  function blockKey(b) {
    const m = months[bM[b]];
    return bKind[b] === 0 ? 'h' + m.key : bKind[b] === 2 ? 'p' + m.key : 'r' + m.key + ':' + (bA[b] - m.start);
  }
  function blockSig(b) {
    const m = months[bM[b]];
    return bKind[b] === 0 ? m.count + ':' + m.label : bKind[b] === 2 ? String(bH[b])
      : m.ver + ':' + m.start + ':' + layoutWidth + ':' + bB[b];
  }

  // A view over the timeline (it is hidden, and laid out on return).
  function otherView() { return trashOn || placesOn || simOn; }

  function render() {
    rafPending = false;
    if (!nBlocks || otherView()) return;
    const [top, bottom] = viewRange();
    const vh = bottom - top;
    const now = performance.now();
    const dy = Math.abs(window.scrollY - lastScrollY);
    lastScrollY = window.scrollY;
    // While flying through the library (scrubber drags, flings: big moves
    // frame after frame) build rows but request no thumbnails, and fetch no
    // months, until the scroll settles.  A single jump loads at once.
    if (dy > vh * 1.5) {
      if (now - lastBigMove < 120) fastUntil = Math.max(fastUntil, now + 150);
      lastBigMove = now;
    }
    const loadNow = now >= fastUntil;
    const lo = top - vh, hi = bottom + vh * 1.5;
    const first = blockAt(Math.max(0, lo));
    let last = first;
    while (last < nBlocks && bTop[last] <= hi) last++;
    const want = new Set();
    let prev = null;   // the elements stay in document order (the Tab order)
    for (let b = first; b < last; b++) {
      const key = blockKey(b), sig = blockSig(b);
      want.add(key);
      let node = rendered.get(key);
      if (node && node.miSig !== sig) { node.remove(); node = null; }
      if (!node) {
        node = bKind[b] === 0 ? makeHeading(b) : bKind[b] === 2 ? makePlaceholder(b) : makeRow(b, loadNow);
        node.miSig = sig;
        node.miTop = bTop[b];
        rendered.set(key, node);
        if (prev) prev.after(node); else el.timeline.prepend(node);
      } else if (node.miTop !== bTop[b]) {
        node.style.top = bTop[b] + 'px';
        node.miTop = bTop[b];
      }
      prev = node;
    }
    for (const [key, node] of rendered) {
      if (!want.has(key)) { node.remove(); rendered.delete(key); }
    }
    if (!loadNow) {
      clearTimeout(settleTimer);
      settleTimer = setTimeout(fillPending, 160);
    } else {
      fetchNear();
    }
    updateActiveMonth(top);
    updateScrubThumb();
  }

  function fillPending() {
    if (performance.now() < fastUntil) { settleTimer = setTimeout(fillPending, 60); return; }
    for (const img of el.timeline.querySelectorAll('img[data-src]')) {
      loadThumb(img, img.dataset.src);
      delete img.dataset.src;
    }
    fetchNear();
  }

  function scheduleRender() {
    if (!rafPending) { rafPending = true; requestAnimationFrame(render); }
  }

  // Thumbnail load/error, delegated (load events do not bubble: capture).
  el.timeline.addEventListener('load', (e) => {
    if (e.target.tagName !== 'IMG') return;
    e.target.classList.add('loaded');
    e.target.parentNode.classList.remove('broken');   // the large one came after all
    if (!firstThumb) {
      firstThumb = true;
      performance.mark('mi:first-thumb');
      if (firstThumbWaiter) firstThumbWaiter();
    }
  }, true);
  el.timeline.addEventListener('error', (e) => {
    if (e.target.tagName !== 'IMG') return;
    // A large thumbnail that could not be made: the small one, if any.
    const src = e.target.getAttribute('src') || '';
    if (src.endsWith('?size=512')) e.target.src = src.slice(0, -'?size=512'.length);
    else e.target.parentNode.classList.add('broken');
  }, true);

  el.timeline.addEventListener('click', (e) => {
    const a = e.target.closest('a.cell');
    if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.altKey) return;
    // A tile's check circle, or any tile while selecting, selects; shift
    // selects the range from the last one.  (Otherwise shift-click keeps
    // its meaning: the link in a new window.)
    const onCheck = canSelect() && !!e.target.closest('.check');
    if (e.shiftKey && !selecting && !onCheck) return;
    e.preventDefault();
    if (longPressed) { longPressed = false; return; }   // the end of a long press
    if (e.shiftKey) { selectRange(Number(a.dataset.i)); return; }
    if (selecting || onCheck) { toggleSelected(a); return; }
    openViewer(Number(a.dataset.i), 'push');
  });

  // On touch screens a long press starts a selection (and a tap then adds).
  let press = null, longPressed = false;
  const endPress = () => { if (press) { clearTimeout(press.timer); press = null; } };
  el.timeline.addEventListener('pointerdown', (e) => {
    endPress();
    longPressed = false;
    if (e.pointerType === 'mouse' || !canSelect()) return;
    const a = e.target.closest('a.cell');
    if (!a) return;
    press = { x: e.clientX, y: e.clientY, id: e.pointerId, timer: setTimeout(() => {
      press = null;
      longPressed = true;
      const it = itemAt(Number(a.dataset.i));
      if (it && !selected.has(it.sha)) toggleSelected(a);
      if (navigator.vibrate) navigator.vibrate(15);
    }, 500) };
  });
  el.timeline.addEventListener('pointermove', (e) => {
    if (press && e.pointerId === press.id && Math.hypot(e.clientX - press.x, e.clientY - press.y) > 10) endPress();
  });
  el.timeline.addEventListener('pointerup', endPress);
  el.timeline.addEventListener('pointercancel', endPress);
  el.timeline.addEventListener('contextmenu', (e) => {
    if (longPressed || press) { e.preventDefault(); endPress(); }
  });

  // Arrow keys move between cells; Home/End go to the ends.
  el.timeline.addEventListener('keydown', (e) => {
    const a = e.target.closest && e.target.closest('a.cell');
    if (!a || e.altKey || e.ctrlKey || e.metaKey) return;
    const i = Number(a.dataset.i);
    // Space (or x) selects the focused item; Enter opens it, or, while
    // selecting, selects it too (the click handler).
    if ((e.key === ' ' || e.key === 'x') && canSelect()) {
      e.preventDefault();
      if (e.shiftKey && selecting) selectRange(i); else toggleSelected(a);
      return;
    }
    let j = -1;
    if (e.key === 'ArrowRight') j = i + 1;
    else if (e.key === 'ArrowLeft') j = i - 1;
    else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') j = verticalNeighbour(i, e.key === 'ArrowDown' ? 1 : -1);
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = nItems - 1;
    else return;
    e.preventDefault();
    if (j >= 0 && j < nItems) focusIndex(j);
  });

  // The item in the row above or below (dir), nearest the middle of item
  // i; in a month not held yet, its first (or last) item.
  function verticalNeighbour(i, dir) {
    let b = cellRow(i) + dir;
    while (b >= 0 && b < nBlocks && bKind[b] === 0) b += dir;
    if (b < 0 || b >= nBlocks) return -1;
    if (bKind[b] === 2) return dir > 0 ? bA[b] : bB[b] - 1;
    const cx = cellX(i) + cellW(i) / 2;
    let best = bA[b];
    for (let k = bA[b]; k < bB[b]; k++) {
      if (cellX(k) <= cx) best = k;
    }
    return best;
  }

  // Focus item j, once its month is held.
  function focusIndex(j) {
    if (itemAt(j)) { focusItem(j); return; }
    const m = months[monthIndexOf(j)];
    scrollToMonth(m);
    fetchMonth(m, true).then(() => { if (itemAt(j)) focusItem(j); });
  }

  function scrollToItem(i, center) {
    if (otherView() || !itemAt(i)) return;
    const b = cellRow(i);
    const [top, bottom] = viewRange();
    if (bTop[b] >= top && bTop[b] + bH[b] <= bottom) return;
    const y = center ? bTop[b] - (bottom - top - bH[b]) / 2 : bTop[b] < top ? bTop[b] - 8 : bTop[b] + bH[b] - (bottom - top) + 8;
    window.scrollTo(0, Math.max(0, timelineTop + y - headerH));
    render();
  }

  function focusItem(i, center) {
    if (otherView()) return;
    scrollToItem(i, center);
    const a = el.timeline.querySelector(`a.cell[data-i="${i}"]`);
    if (a) a.focus({ preventScroll: true });
  }

  window.addEventListener('scroll', scheduleRender, { passive: true });
  let lastWidth = 0;
  new ResizeObserver(() => {
    const w = Math.floor(el.timeline.clientWidth);
    if (w && w !== lastWidth) {
      const anchor = lastWidth ? topAnchor() : null;
      lastWidth = w;
      if (loaded) relayout(anchor);
    } else if (loaded) {
      measure(); buildScrubber(); scheduleRender();
    }
  }).observe(el.timeline);
  window.addEventListener('resize', () => { if (loaded) { measure(); buildScrubber(); scheduleRender(); } });

  /* ---------------------------------------------------- month navigation */

  let activeMonth = -1;
  function buildNav() {
    el.months.textContent = '';
    let year = null, ol = null;
    const frag = document.createDocumentFragment();
    months.forEach((m, idx) => {
      if (m.year !== year) {
        year = m.year;
        const sec = document.createElement('section');
        const h = document.createElement('h3');
        h.textContent = year;
        ol = document.createElement('ol');
        sec.append(h, ol);
        frag.append(sec);
      }
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.m = idx;
      b.textContent = m.short;
      b.title = `${m.label}: ${numFmt.format(m.count)}`;
      b.setAttribute('aria-label', `${m.label}, ${numFmt.format(m.count)} items`);
      li.append(b);
      ol.append(li);
    });
    el.months.append(frag);
    activeMonth = -1;
  }

  // After a jump the month jumped to stays marked, even when it is too
  // near the end of the library to reach the top of the window.
  let pinned = null;
  function jumpToMonth(idx) {
    const m = months[idx];
    if (!m) return;
    scrollToMonth(m);
    pinned = { mo: m, y: window.scrollY };
    render();
  }
  function scrollToMonth(m) {
    window.scrollTo(0, timelineTop + m.top - headerH);
    render();
  }

  el.months.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-m]');
    if (!b) return;
    if (trashOn) { history.replaceState(null, '', urlWith('')); route(); }
    jumpToMonth(Number(b.dataset.m));
    closeDrawer();
    const first = el.timeline.querySelector(`a.cell[data-i="${months[Number(b.dataset.m)].start}"]`);
    if (first) first.focus({ preventScroll: true });
  });

  function updateActiveMonth(top) {
    if (!months.length) return;
    const at = pinned ? months.indexOf(pinned.mo) : -1;
    if (pinned && (at < 0 || Math.abs(window.scrollY - pinned.y) > 1)) pinned = null;
    const m = pinned ? at : monthAt(Math.max(0, top + 1));
    if (m === activeMonth) return;
    const old = el.months.querySelector('[aria-current]');
    if (old) old.removeAttribute('aria-current');
    const cur = el.months.querySelector(`button[data-m="${m}"]`);
    if (cur) {
      cur.setAttribute('aria-current', 'true');
      // Keep the highlighted month visible in the sidebar.
      const sb = el.sidebar, r = cur.getBoundingClientRect(), sr = sb.getBoundingClientRect();
      if (r.top < sr.top + 40 || r.bottom > sr.bottom - 20) sb.scrollTop += r.top - sr.top - sr.height / 3;
    }
    activeMonth = m;
    el.scrubber.setAttribute('aria-valuetext', months[m].label);
  }

  function openDrawer() {
    el.sidebar.classList.add('open');
    el.scrim.hidden = false;
    el.menuBtn.setAttribute('aria-expanded', 'true');
    const cur = el.months.querySelector('[aria-current]') || el.months.querySelector('button');
    if (cur) cur.focus();
  }
  function closeDrawer() {
    if (!el.sidebar.classList.contains('open')) return;
    el.sidebar.classList.remove('open');
    el.scrim.hidden = true;
    el.menuBtn.setAttribute('aria-expanded', 'false');
  }
  el.menuBtn.addEventListener('click', () => {
    if (el.sidebar.classList.contains('open')) closeDrawer(); else openDrawer();
  });
  el.scrim.addEventListener('click', closeDrawer);
  el.sidebar.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { closeDrawer(); el.menuBtn.focus(); }
  });

  /* ------------------------------------------------------------ scrubber */

  function scrollMax() {
    return Math.max(0, document.documentElement.scrollHeight - window.innerHeight);
  }
  function trackRect() { return el.scrubber.getBoundingClientRect(); }
  let trackH = 0; // cached: read on every scroll frame

  // A point f (0..1) of the track stands for the timeline at f * total,
  // and for the scroll position f * scrollMax: the point moves from the
  // top of the window at f = 0 to its bottom at f = 1, like a scrollbar.
  function fracOfY(y) {
    return total ? Math.min(1, Math.max(0, y / total)) : 0;
  }

  function buildScrubber() {
    el.scrubber.hidden = nItems === 0;
    el.scrubYears.textContent = '';
    if (!months.length) return;
    const h = trackH = trackRect().height;
    let lastPos = -1e9, year = null;
    const frag = document.createDocumentFragment();
    for (const m of months) {
      if (m.year === year) continue;
      year = m.year;
      const pos = fracOfY(m.top) * h;
      const dot = document.createElement('span');
      dot.className = 'scrub-dot';
      dot.style.top = pos + 'px';
      frag.append(dot);
      if (pos - lastPos < 18) continue;
      const s = document.createElement('span');
      s.className = 'scrub-year';
      s.style.top = pos + 'px';
      s.textContent = year;
      frag.append(s);
      lastPos = pos;
    }
    el.scrubYears.append(frag);
    updateScrubThumb();
  }

  function updateScrubThumb() {
    const max = scrollMax();
    const f = max ? window.scrollY / max : 0;
    el.scrubThumb.style.top = f * trackH + 'px';
    el.scrubber.setAttribute('aria-valuenow', Math.round(f * 100));
  }

  function scrubTo(clientY, showBubble) {
    const r = trackRect();
    const f = Math.min(1, Math.max(0, (clientY - r.top) / r.height));
    window.scrollTo(0, f * scrollMax());
    scheduleRender();
    if (showBubble) bubbleAt(clientY - r.top, f);
  }

  function bubbleAt(y, f) {
    if (!months.length) return;
    el.bubble.textContent = months[monthAt(Math.max(0, f * total))].label;
    el.bubble.style.top = y + 'px';
    el.bubble.hidden = false;
  }

  let scrubbing = false;
  el.scrubber.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    scrubbing = true;
    el.scrubber.setPointerCapture(e.pointerId);
    el.scrubber.classList.add('active');
    scrubTo(e.clientY, true);
    e.preventDefault();
  });
  // A drag is a flight however slowly its moves come (a busy machine, a
  // hand that hesitates): nothing is fetched for the months it passes
  // until it rests SCRUB_REST_MS or lets go.
  const SCRUB_REST_MS = 250;
  el.scrubber.addEventListener('pointermove', (e) => {
    if (scrubbing) {
      fastUntil = performance.now() + SCRUB_REST_MS;
      scrubTo(e.clientY, true);
    }
    else if (e.pointerType === 'mouse') {
      const r = trackRect();
      bubbleAt(e.clientY - r.top, Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)));
    }
  });
  const endScrub = () => {
    if (scrubbing) {
      fastUntil = 0;               // where it was let go loads at once
      scheduleRender();
    }
    scrubbing = false;
    el.scrubber.classList.remove('active');
    el.bubble.hidden = true;
  };
  el.scrubber.addEventListener('pointerup', endScrub);
  el.scrubber.addEventListener('pointercancel', endScrub);
  el.scrubber.addEventListener('pointerleave', () => { if (!scrubbing) el.bubble.hidden = true; });
  el.scrubber.addEventListener('keydown', (e) => {
    if (!months.length) return;
    const [top] = viewRange();
    const m = monthAt(Math.max(0, top + 1));
    let target = -1;
    if (e.key === 'ArrowDown') target = Math.min(months.length - 1, m + 1);
    else if (e.key === 'ArrowUp') target = Math.max(0, months[m].top < top - 1 ? m : m - 1);
    else if (e.key === 'PageDown') {           // the previous (older) year
      target = months.findIndex((x) => x.year < months[m].year);
      if (target < 0) target = months.length - 1;
    } else if (e.key === 'PageUp') {           // the next (newer) year
      const firstOfYear = months.findIndex((x) => x.year === months[m].year);
      target = firstOfYear > 0 ? months.findIndex((x) => x.year === months[firstOfYear - 1].year) : 0;
    } else if (e.key === 'Home') target = 0;
    else if (e.key === 'End') target = months.length - 1;
    else return;
    e.preventDefault();
    jumpToMonth(target);
  });

  /* -------------------------------------------------------------- viewer */

  let vIndex = -1, vItem = null, vPushed = false;
  const preloads = [];

  function urlWith(hash) {
    return location.pathname + location.search + (hash || '');
  }

  function openViewer(i, mode, item) {
    const it = item || itemAt(i);
    if (!it) return;
    const hash = '#/photo/' + it.sha;
    if (mode === 'push' && vIndex < 0 && !vItem) {
      history.pushState({ photo: it.sha }, '', urlWith(hash));
      vPushed = true;
    } else if (mode !== 'none' && location.hash !== hash) {
      history.replaceState({ photo: it.sha }, '', urlWith(hash));
    }
    const wasOpen = !el.viewer.hidden;
    vIndex = item ? -1 : i;
    vItem = it;
    if (!wasOpen) {
      el.viewer.hidden = false;
      document.body.classList.add('viewing');
      el.main.inert = true;
      el.scrubber.inert = true;
      el.vClose.focus();
    }
    showItem(it);
  }

  function stopVideo() {
    const v = el.vVideo;
    if (!v.hidden || v.getAttribute('src')) {
      v.pause();
      v.removeAttribute('src');
      v.load();
    }
    v.hidden = true;
  }

  // Whether this browser decodes a video codec, by FFmpeg's codec name
  // (from /list).  Unknown names are tried, and caught when they fail.
  const CODEC_TYPES = {
    h264: 'video/mp4; codecs="avc1.640028"',
    hevc: 'video/mp4; codecs="hvc1.1.6.L120.B0"',
    av1: 'video/mp4; codecs="av01.0.08M.08"',
    vp9: 'video/webm; codecs="vp9"',
    vp8: 'video/webm; codecs="vp8"',
    theora: 'video/ogg; codecs="theora"',
  };
  const NEVER_PLAYED = new Set(['mpeg4', 'prores', 'mjpeg', 'dvvideo', 'wmv1', 'wmv2', 'wmv3',
                                'vc1', 'mpeg2video', 'mpeg1video', 'msmpeg4v3', 'h263', 'flv1']);
  function playable(codec) {
    if (!codec) return true;
    if (NEVER_PLAYED.has(codec)) return false;
    const type = CODEC_TYPES[codec];
    return !type || el.vVideo.canPlayType(type) !== '';
  }

  function showItem(it) {
    stopVideo();
    el.vNote.hidden = true;
    el.vFull.hidden = true;
    el.vFull.onload = el.vFull.onerror = null;
    el.stage.onpointerdown = el.stage.onmouseenter = null;
    el.vFull.removeAttribute('src');
    el.vThumb.hidden = true;
    el.vThumb.removeAttribute('src');
    const label = altText(it);
    if (it.video) {
      el.vVideo.hidden = false;
      el.vVideo.controls = true;
      el.vVideo.setAttribute('aria-label', label);
      if (it.thumb) {
        // The 512 px poster, or the 256 px one if it cannot be made.
        el.vVideo.poster = largeURL(it);
        const probe = new Image();
        probe.onerror = () => { if (vItem === it) el.vVideo.poster = thumbURL(it); };
        probe.src = largeURL(it);
      } else {
        el.vVideo.removeAttribute('poster');
      }
      // HEVC and other codecs this browser cannot play: the poster stays,
      // with a way to the file.
      const cannotPlay = () => {
        if (vItem !== it) return;
        stopVideo();
        el.vVideo.hidden = false;   // the poster stays, with no play button
        el.vVideo.controls = false;
        el.vNote.textContent = `This browser cannot play this video${it.codec ? ' (' + it.codec.toUpperCase() + ')' : ''}; download it to watch.`;
        el.vNote.hidden = false;
      };
      el.vVideo.onerror = cannotPlay;
      // A browser without the video's codec often plays its sound alone
      // (HEVC from an iPhone in Chromium): no error fires, the picture is
      // just 0x0.  Ask first, and check the picture once it is known.
      el.vVideo.onloadedmetadata = () => {
        if (vItem === it && el.vVideo.videoWidth === 0) cannotPlay();
      };
      if (!originals()) {
        if (vItem !== it) return;
        el.vVideo.controls = false;
        el.vNote.textContent = 'The owner of this link shared this video\'s picture only.';
        el.vNote.hidden = false;
      } else if (playable(it.codec)) el.vVideo.src = imageURL(it);
      else cannotPlay();
    } else {
      if (it.thumb) {
        el.vThumb.src = thumbURL(it);
        el.vThumb.hidden = false;
        sizeLikeFull(el.vThumb, it);
      }
      el.vFull.alt = label;
      el.vFull.onload = () => {
        if (vItem !== it) return;
        el.vFull.hidden = false;
        el.vThumb.hidden = true;
      };
      el.vFull.onerror = () => {
        if (vItem !== it) return;
        // A large original's preview that could not be made: the original.
        if (originals() && el.vFull.getAttribute('src') !== imageURL(it) && !formats.preview.has(it.mime)) {
          el.vFull.src = imageURL(it);
          return;
        }
        el.vNote.textContent = 'This browser cannot show this file; download the original to open it.';
        el.vNote.hidden = false;
      };
      // The server's list of previewed types arrives at start; a viewer
      // opened before it (a link to #/photo/...) waits for it.
      formatsReady.then(() => { if (vItem === it) el.vFull.src = viewURL(it); });
      if (it.motion && originals()) {
        // The motion plays when the picture is pressed or pointed at.
        const play = () => {
          if (vItem !== it) return;
          const v = el.vVideo;
          v.onerror = v.onloadedmetadata = null;
          v.muted = true;
          v.loop = false;
          v.src = imageURL(it.motion);
          v.hidden = false;
          el.vFull.hidden = el.vThumb.hidden = true;
          v.onended = () => {
            if (vItem !== it) return;
            stopVideo();
            el.vFull.hidden = false;
          };
          v.play().catch(() => {});
        };
        el.stage.onpointerdown = el.stage.onmouseenter = play;
      }
    }
    el.vDownload.href = imageURL(it);
    el.vDownload.setAttribute('download', it.name);
    el.vDownload.hidden = !originals();
    el.vDelete.hidden = !canDelete;
    el.vPrev.disabled = vIndex <= 0;
    el.vNext.disabled = vIndex < 0 || vIndex >= nItems - 1;
    fillCaption(it);
    preloadAround(vIndex);
  }

  // The thumbnail placeholder is stretched to the size the full image will
  // have, so the swap does not jump.
  function sizeLikeFull(img, it) {
    img.style.width = img.style.height = '';
    if (!it.w) return;
    const r = el.stage.getBoundingClientRect();
    const s = Math.min(r.width / it.w, r.height / it.h, 1);
    const w = it.w * s, h = it.h * s;
    const side = Math.max(w, h); // the thumbnail is square, the picture centred in it
    img.style.width = side + 'px';
    img.style.height = side + 'px';
  }

  function fillCaption(it) {
    el.capTitle.textContent = it.name;
    el.capDate.textContent = it.t ? longDateFmt.format(new Date(it.t * 1000)) : '';
    el.capPlace.textContent = '';
    if (it.city) {
      // The nearest town (GeoNames, on the server), then the position.
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'cap-town';
      b.textContent = [it.city, it.region, it.country].filter(Boolean).join(', ');
      b.title = 'Every photo from ' + it.city;
      b.addEventListener('click', () => { closeViewer(); applySearch(placeTerm(it.city, it.country)); });
      el.capPlace.append(b, document.createElement('br'));
    }
    if (it.lat !== null && it.lon !== null) {
      const a = document.createElement('a');
      a.href = `https://www.openstreetmap.org/?mlat=${it.lat}&mlon=${it.lon}#map=15/${it.lat}/${it.lon}`;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = formatLatLon(it.lat, it.lon);
      el.capPlace.append(a);
    }
    el.capPlace.hidden = !el.capPlace.textContent;
    const cam = [it.make, it.model].filter(Boolean);
    if (cam.length === 2 && cam[1].toLowerCase().startsWith(cam[0].toLowerCase())) cam.shift();
    el.capCamera.textContent = cam.join(' ');
    el.capCamera.hidden = !cam.length;
    const bits = [];
    if (it.w) bits.push(`${it.w} × ${it.h}`);
    if (Number.isFinite(it.size)) bits.push(formatBytes(it.size));
    if (it.path) bits.push(it.path);
    el.capFile.textContent = bits.join(' · ');
  }

  function formatLatLon(lat, lon) {
    const f = (v, p, n) => `${Math.abs(v).toFixed(5)}° ${v >= 0 ? p : n}`;
    return `${f(lat, 'N', 'S')}, ${f(lon, 'E', 'W')}`;
  }

  function formatBytes(n) {
    if (n < 1024) return n + ' B';
    const u = ['KB', 'MB', 'GB', 'TB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(n < 10 ? 1 : 0) + ' ' + u[i];
  }

  function preloadAround(i) {
    preloads.length = 0;
    if (i < 0) return;
    for (const j of [i + 1, i - 1, i + 2]) {
      const it = itemAt(j);
      if (!it || it.video) continue;
      const img = new Image();
      img.decoding = 'async';
      img.src = viewURL(it);
      preloads.push(img);
    }
  }

  // The next (d = 1) or previous item; across a month not held yet, once
  // it is fetched.
  function step(d) {
    if (vIndex < 0) return;
    const j = vIndex + d;
    if (j < 0 || j >= nItems) return;
    if (itemAt(j)) { openViewer(j, 'replace'); return; }
    const from = vItem;
    fetchMonth(months[monthIndexOf(j)], true).then(() => {
      if (vItem !== from || vIndex < 0) return;
      const k = vIndex + d;
      if (itemAt(k)) openViewer(k, 'replace');
    });
  }

  function closeViewer() {
    if (el.viewer.hidden) return;
    if (vPushed) { history.back(); return; } // popstate closes it
    history.replaceState(null, '', urlWith(''));
    closeViewerUI();
  }

  function closeViewerUI() {
    if (el.viewer.hidden) return;
    stopVideo();
    el.vFull.removeAttribute('src');
    el.viewer.hidden = true;
    document.body.classList.remove('viewing');
    el.main.inert = false;
    el.scrubber.inert = false;
    const i = vIndex;
    vIndex = -1; vItem = null; vPushed = false;
    preloads.length = 0;
    if (itemAt(i)) focusItem(i, true);
  }

  el.vPrev.addEventListener('click', () => step(-1));
  el.vNext.addEventListener('click', () => step(1));
  el.vClose.addEventListener('click', closeViewer);
  el.vInfo.addEventListener('click', () => {
    const on = el.viewer.classList.toggle('no-caption');
    el.vInfo.setAttribute('aria-pressed', String(!on));
  });

  document.addEventListener('keydown', (e) => {
    if (el.viewer.hidden || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t === el.vVideo && (e.key === 'ArrowLeft' || e.key === 'ArrowRight')) return;
    if (e.key === 'ArrowLeft') { e.preventDefault(); step(-1); }
    else if (e.key === 'ArrowRight') { e.preventDefault(); step(1); }
    else if (e.key === 'Escape') { e.preventDefault(); closeViewer(); }
    else if (e.key === 'i') el.vInfo.click();
    else if (e.key === 'Delete' && !el.vDelete.hidden && t !== el.vVideo) { e.preventDefault(); el.vDelete.click(); }
    else if (e.key === 'Tab') trapFocus(e);
  });

  function trapFocus(e) {
    const f = [...el.viewer.querySelectorAll('button:not([disabled]), a[href], video:not([hidden])')]
      .filter((x) => x.offsetParent !== null);
    if (!f.length) return;
    const first = f[0], last = f[f.length - 1];
    if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
  }

  // Swipe on touch screens.
  let swipe = null;
  el.stage.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse') return;
    swipe = { x: e.clientX, y: e.clientY, id: e.pointerId, t: performance.now() };
  });
  el.stage.addEventListener('pointerup', (e) => {
    if (!swipe || swipe.id !== e.pointerId) return;
    const dx = e.clientX - swipe.x, dy = e.clientY - swipe.y;
    swipe = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > Math.abs(dy) * 1.5) step(dx < 0 ? 1 : -1);
    else if (dy > 120 && Math.abs(dy) > Math.abs(dx) * 2) closeViewer();
  });
  el.stage.addEventListener('pointercancel', () => { swipe = null; });
  // A click on the dark backdrop (not on the picture) closes, like a lightbox.
  el.stage.addEventListener('click', (e) => {
    if (e.target === el.stage) closeViewer();
  });

  // #/photo/<sha>: the viewer; #/trash: the trash; #/similar: the
  // near-duplicates; else the timeline.
  function parseHash() {
    if (/^#\/trash\/?$/.test(location.hash)) return { trash: true, photo: null };
    if (/^#\/places\/?$/.test(location.hash)) return { places: true, photo: null };
    if (/^#\/similar\/?$/.test(location.hash)) return { similar: true, photo: null };
    const m = /^#\/photo\/([0-9a-fA-F]{64})$/.exec(location.hash);
    return { trash: false, photo: m ? m[1].toLowerCase() : null };
  }

  function route() {
    const h = parseHash();
    showTrash(!!h.trash && canDelete && !SHARE);
    showPlaces(!!h.places && !SHARE);
    showSimilar(!!h.similar && !SHARE);
    const sha = h.photo;
    if (!sha) { closeViewerUI(); return; }
    if (!loaded) return;
    if (vItem && vItem.sha === sha) return;
    if (bySha.has(sha)) openHeld(bySha.get(sha));
    else if (!whole) openUnheld(sha);
    else openAlone(sha, null);
  }

  function openHeld(it) {
    const i = indexOf(it);
    scrollToItem(i, true);
    openViewer(i, 'none');
  }
  // Not in the (filtered) list: still show it, alone.
  function openAlone(sha, it) {
    openViewer(-1, 'none', it || { sha, t: 0, name: sha.slice(0, 12) + '…', path: '', video: false,
                                   thumb: false, w: 0, h: 0, a: 1, lat: null, lon: null, make: '', model: '', size: NaN });
  }
  // A link to an item whose month is not held: GET /api/items/<sha> says
  // when it is, its month is fetched, and the viewer opens on it there.
  let deepSeq = 0;
  async function openUnheld(sha) {
    const seq = ++deepSeq;
    const still = () => seq === deepSeq && parseHash().photo === sha && !(vItem && vItem.sha === sha);
    let it = null;
    try {
      const r = await fetch('/api/items/' + sha, { cache: 'no-cache' });
      if (authLost(r.status)) return;
      const e = r.ok ? await r.json() : null;
      if (e && typeof e.sha256 === 'string') it = toItem(e.sha256, e);
    } catch { /* shown alone */ }
    if (!still()) return;
    const m = it && monthByKey(monthKeyOf(it.t));
    if (m && !m.items) {
      scrollToMonth(m);
      await fetchMonth(m, true);
      if (!still()) return;
    }
    if (bySha.has(sha)) openHeld(bySha.get(sha));
    else openAlone(sha, it);
  }
  window.addEventListener('popstate', route);
  window.addEventListener('hashchange', route);

  /* -------------------------------------------------------------- filter */

  function readFilterFromURL() {
    const q = new URLSearchParams(location.search);
    const ok = (s) => (/^\d{4}-\d{2}-\d{2}$/.test(s || '') ? s : '');
    filter.from = ok(q.get('from'));
    filter.to = ok(q.get('to'));
    filter.q = (q.get('q') || '').slice(0, 1000);
    el.q.value = filter.q;
    el.from.value = filter.from;
    el.to.value = filter.to;
    showChip();
  }

  function showChip() {
    const on = !!(filter.from || filter.to);
    el.chipRow.hidden = !(on || filter.q);
    el.chipX.setAttribute('aria-label', on ? 'Clear date filter' : 'Clear the search');
    if (filter.q && !on) {
      el.filterBtn.classList.remove('on');
      $('share-dates').hidden = true;
      el.chipText.textContent = 'Search: ' + filter.q;
      return;
    }
    $('share-dates').hidden = !(on && canShare);
    el.filterBtn.classList.toggle('on', on);
    if (!on) return;
    const d = (s) => dayFmt.format(new Date(s + 'T00:00:00'));
    el.chipText.textContent = (filter.from && filter.to ? `${d(filter.from)} – ${d(filter.to)}`
      : filter.from ? `Since ${d(filter.from)}` : `Until ${d(filter.to)}`) +
      (filter.q ? ' · Search: ' + filter.q : '');
  }

  function applyFilter(from, to) {
    if (from && to && from > to) [from, to] = [to, from];
    filter.from = from; filter.to = to;
    el.from.value = from; el.to.value = to;
    const q = new URLSearchParams(location.search);
    q.delete('from'); q.delete('to');
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    const s = q.toString();
    history.replaceState(history.state, '', location.pathname + (s ? '?' + s : '') + location.hash);
    showChip();
    window.scrollTo(0, 0);
    load();
  }

  function toggleFilterPanel(show) {
    el.filterPanel.hidden = !show;
    el.filterBtn.setAttribute('aria-expanded', String(show));
    if (show) el.from.focus();
    if (loaded) { measure(); scheduleRender(); }
  }
  el.filterBtn.addEventListener('click', () => toggleFilterPanel(el.filterPanel.hidden));
  el.filterPanel.addEventListener('submit', (e) => {
    e.preventDefault();
    toggleFilterPanel(false);
    applyFilter(el.from.value, el.to.value);
  });
  el.filterPanel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { toggleFilterPanel(false); el.filterBtn.focus(); }
  });
  el.filterClear.addEventListener('click', () => { toggleFilterPanel(false); applyFilter('', ''); });
  el.chipX.addEventListener('click', () => {
    if (filter.from || filter.to) applyFilter('', '');
    else applySearch('');
  });

  /* -------------------------------------------------------------- search */

  // The search box: its words go to the server as /list?q= (words, places,
  // dates, camera:, type:), kept in the address as ?q= like the dates.
  function applySearch(text) {
    text = String(text || '').trim().slice(0, 1000);
    filter.q = text;
    el.q.value = text;
    const q = new URLSearchParams(location.search);
    q.delete('q');
    if (text) q.set('q', text);
    const s = q.toString();
    const hash = parseHash().places ? '' : location.hash;
    history.replaceState(null, '', location.pathname + (s ? '?' + s : '') + hash);
    if (parseHash().places !== true) route();
    showChip();
    window.scrollTo(0, 0);
    load();
  }
  el.searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    applySearch(el.q.value);
    el.q.blur();
  });
  el.q.addEventListener('search', () => { if (!el.q.value && filter.q) applySearch(''); });

  // A place as a search term: "place:"City, CC"" (quoted when it has spaces).
  function placeTerm(name, country) {
    const v = country ? `${name}, ${country}` : name;
    return 'place:"' + v.replace(/"/g, '') + '"';
  }

  /* -------------------------------------------------------------- places */

  // #/places: countries, most photos first, each with its towns; a town
  // or a country opens the timeline searched for it.
  let placesOn = false, placesSeq = 0;

  function showPlaces(on) {
    if (on === placesOn) return;
    placesOn = on;
    document.body.classList.toggle('places-view', on);
    el.places.hidden = !on;
    if (on) el.placesLink.setAttribute('aria-current', 'page'); else el.placesLink.removeAttribute('aria-current');
    if (on) el.photosLink.removeAttribute('aria-current');
    else if (!trashOn && !simOn) el.photosLink.setAttribute('aria-current', 'page');
    closeDrawer();
    if (on) {
      window.scrollTo(0, 0);
      loadPlaces();
    } else if (loaded && !trashOn && !simOn) {
      backToTimeline(null);
    }
  }

  function placeTile(label, sub, cover, onOpen) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'place-tile';
    const img = document.createElement('img');
    img.alt = '';
    img.loading = 'lazy';
    img.src = BASE + '/thumbnail/' + cover + '?size=512';   // not letterboxed
    const span = document.createElement('span');
    span.textContent = label;
    const small = document.createElement('small');
    small.textContent = sub;
    span.append(small);
    b.append(img, span);
    b.setAttribute('aria-label', `${label}, ${sub}`);
    b.addEventListener('click', onOpen);
    li.append(b);
    return li;
  }

  function openPlace(term) {
    history.replaceState(null, '', urlWith(''));
    showPlaces(false);
    applySearch(term);
  }

  async function loadPlaces() {
    const seq = ++placesSeq;
    let j;
    try { j = await api('GET', '/api/places'); } catch (err) {
      toast('Could not load the places: ' + err.message);
      return;
    }
    if (seq !== placesSeq || !placesOn) return;
    const countries = (j && Array.isArray(j.countries)) ? j.countries.slice() : [];
    countries.sort((a, b) => b.count - a.count || String(a.country).localeCompare(b.country));
    el.placesList.textContent = '';
    el.placesNone.hidden = countries.length > 0;
    for (const c of countries) {
      const h = document.createElement('h3');
      const hb = document.createElement('button');
      hb.type = 'button';
      hb.textContent = `${c.country} · ${plural(c.count)}`;
      hb.addEventListener('click', () => openPlace('place:' + c.country_code));
      h.append(hb);
      const ul = document.createElement('ul');
      ul.className = 'place-grid';
      const cities = Array.isArray(c.cities) ? c.cities.slice() : [];
      cities.sort((a, b) => b.count - a.count || String(a.city).localeCompare(b.city));
      for (const t of cities) {
        ul.append(placeTile(t.city, [t.region, plural(t.count)].filter(Boolean).join(' · '), t.cover,
                            () => openPlace(placeTerm(t.city, c.country_code))));
      }
      el.placesList.append(h, ul);
    }
  }

  viewLink(el.placesLink, 'places', el.placesTitle, () => placesOn);

  /* --------------------------------------------------------------- state */

  function showState(icon, title, text, action, onAction) {
    el.stateIcon.setAttribute('href', icon);
    el.stateTitle.textContent = title;
    el.stateText.textContent = text;
    el.stateAction.textContent = action;
    el.stateAction.onclick = onAction;
    el.state.hidden = false;
    el.timeline.hidden = true;
    el.scrubber.hidden = true;
  }
  function hideState() {
    el.state.hidden = true;
    el.timeline.hidden = false;
  }
  function showEmpty() {
    if (SHARE) {
      showState('#i-photos', 'Nothing to show', 'What this link shared is no longer on the server.', '', null);
      el.stateAction.hidden = true;
      el.count.textContent = '';
      return;
    }
    if (filter.q) {
      showState('#i-search', 'Nothing found', `No photos or videos match “${filter.q}”.`,
        'Clear the search', () => applySearch(''));
      el.count.textContent = 'No matches';
      return;
    }
    if (filter.from || filter.to) {
      showState('#i-filter', 'Nothing in these dates', `No photos or videos ${el.chipText.textContent.toLowerCase().startsWith('since') || el.chipText.textContent.toLowerCase().startsWith('until') ? el.chipText.textContent.toLowerCase() : 'between ' + el.chipText.textContent}.`,
        'Show everything', () => applyFilter('', ''));
    } else {
      showState('#i-photos', 'No photos yet', 'Drop photos and videos anywhere on this page, or choose them with Upload. They are stored on this server, and only here.',
        'Upload photos', () => el.fileInput.click());
    }
    el.count.textContent = filter.from || filter.to ? 'No items in these dates' : 'Empty library';
  }
  function showError(err) {
    loaded = false;
    el.count.textContent = '';
    el.months.textContent = '';
    showState('#i-offline', 'Cannot reach the server',
      `The photo server did not answer (${err && err.message ? err.message : 'network error'}). Check that media-server is running and reachable, then try again.`,
      'Try again', () => { hideState(); load(); });
  }

  // A message for a moment, with an optional action ("Undo"), also on
  // Ctrl+Z while it shows.
  let toastTimer = 0, toastAction = null;
  function toast(msg, action, onAction) {
    el.toast.textContent = msg;
    toastAction = null;
    if (action) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'toast-action';
      b.textContent = action;
      toastAction = () => { toastAction = null; el.toast.hidden = true; clearTimeout(toastTimer); onAction(); };
      b.addEventListener('click', toastAction);
      el.toast.append(b);
    }
    el.toast.classList.toggle('has-action', !!action);
    el.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.toast.hidden = true; toastAction = null; }, action ? 10000 : 5000);
  }
  document.addEventListener('keydown', (e) => {
    if (toastAction && !el.toast.hidden && (e.ctrlKey || e.metaKey) && !e.shiftKey && e.key === 'z' &&
        !/^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) {
      e.preventDefault();
      toastAction();
    }
  });

  /* ------------------------------------------------------------- uploads */

  const queue = [];
  let active = 0, upStats = { total: 0, created: 0, existed: 0, failed: 0 };
  let needRefresh = false, insertTimer = 0;
  const pendingInserts = [];

  // Exactly what the server accepts: its upload extensions.  (A browser's
  // MIME guess is not asked: it calls .svg and .ogv image/ and video/,
  // which the server refuses, and knows nothing of .hif or .mts.)
  function isMediaFile(f) {
    const dot = f.name.lastIndexOf('.');
    return dot > 0 && formats.upload.has(f.name.slice(dot + 1).toLowerCase());
  }

  async function addFiles(files) {
    if (!files.length || SHARE) return;
    await formatsReady;
    el.uploads.hidden = false;
    for (const f of files) {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.className = 'up-name';
      name.textContent = f.name;
      const bar = document.createElement('progress');
      bar.max = 100; bar.value = 0;
      bar.setAttribute('aria-label', 'Upload progress of ' + f.name);
      const st = document.createElement('span');
      st.className = 'up-state';
      li.append(name, bar, st);
      el.upList.append(li);
      upStats.total++;
      if (!isMediaFile(f)) {
        finish({ li, bar, st }, 'failed', 'Skipped: not a photo or video');
        continue;
      }
      st.textContent = 'Waiting';
      queue.push({ file: f, li, bar, st });
    }
    updateUpTitle();
    pump();
  }

  function pump() {
    while (active < UPLOAD_PARALLEL && queue.length) send(queue.shift());
    if (!active && !queue.length) uploadsDone();
  }

  function send(job) {
    active++;
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', '/image/' + encodeURIComponent(job.file.name));
    xhr.responseType = 'text';
    job.st.textContent = 'Uploading';
    job.li.className = 'busy';
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) job.bar.value = Math.round((e.loaded / e.total) * 100);
    };
    xhr.onload = () => {
      if (authLost(xhr.status)) return;
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) {
        finish(job, 'created', 'Backed up');
        upStats.created++;
        if (body && body.sha256) gotNewItem(body, job.file);
        else needRefresh = true;
      } else if (xhr.status === 200) {
        upStats.existed++;
        finish(job, 'existed', 'Already backed up', body && body.sha256);
      } else {
        upStats.failed++;
        finish(job, 'failed', 'Failed: ' + ((body && body.error) || `HTTP ${xhr.status}`));
      }
      active--; updateUpTitle(); pump();
    };
    xhr.onerror = xhr.onabort = () => {
      upStats.failed++;
      finish(job, 'failed', 'Failed: the server did not answer');
      active--; updateUpTitle(); pump();
    };
    const fd = new FormData();
    fd.append('file', job.file, job.file.name);
    xhr.send(fd);
  }

  function finish(job, kind, text, sha) {
    job.li.className = kind;
    job.bar.value = 100;
    job.st.textContent = text;
    if (kind === 'failed' && !job.file) upStats.failed++;
    if (sha && bySha.has(String(sha).toLowerCase())) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'linkish';
      b.textContent = 'Show';
      b.addEventListener('click', () => {
        const it = bySha.get(String(sha).toLowerCase());
        if (it) { scrollToItem(indexOf(it), true); openViewer(indexOf(it), 'push'); }
      });
      job.st.append(' ', b);
    }
  }

  function updateUpTitle() {
    const s = upStats, done = s.created + s.existed + s.failed;
    if (done < s.total) {
      el.upTitle.textContent = `Uploading ${numFmt.format(done + 1)} of ${numFmt.format(s.total)}…`;
      return;
    }
    const parts = [];
    if (s.created) parts.push(`${numFmt.format(s.created)} backed up`);
    if (s.existed) parts.push(`${numFmt.format(s.existed)} already backed up`);
    if (s.failed) parts.push(`${numFmt.format(s.failed)} failed`);
    el.upTitle.textContent = parts.join(' · ') || 'Uploads';
  }

  // The PUT answer carries the /list fields when the server sends them;
  // otherwise the list is fetched again once the batch is over.
  function gotNewItem(body, file) {
    if (!Number.isFinite(num(body.original_creation_date))) { needRefresh = true; return; }
    pendingInserts.push(toItem(String(body.sha256), body));
    clearTimeout(insertTimer);
    insertTimer = setTimeout(flushInserts, 300);
  }

  function inFilter(it) {
    const d = new Date(it.t * 1000);
    const s = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
    return (!filter.from || s >= filter.from) && (!filter.to || s <= filter.to);
  }

  // An upload goes into its month at once when that month is held (or is
  // new); the timeline's counts follow.
  function flushInserts() {
    const add = pendingInserts.splice(0).filter((it) => !bySha.has(it.sha) && !motionOf.has(it.sha) && inFilter(it));
    if (!add.length || !loaded) return;
    change(add, []);
    refreshSoon();
  }

  // The timeline again (its counts), quietly, a moment after a change.
  let refreshTimer = 0;
  function refreshSoon() {
    if (whole) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => load({ keepScroll: true, quiet: true }), 250);
  }

  function uploadsDone() {
    if (!upStats.total) return;
    flushInserts();
    if (needRefresh) { needRefresh = false; load({ keepScroll: true, quiet: true }); }
  }

  el.uploadBtn.addEventListener('click', () => el.fileInput.click());
  el.fileInput.addEventListener('change', () => {
    addFiles([...el.fileInput.files]);
    el.fileInput.value = '';
  });
  el.upClose.addEventListener('click', () => {
    el.uploads.hidden = true;
    if (!active && !queue.length) { el.upList.textContent = ''; upStats = { total: 0, created: 0, existed: 0, failed: 0 }; }
  });

  // Drag and drop, files and whole folders.
  let dragDepth = 0;
  const hasFiles = (e) => !SHARE && e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  window.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth++;
    el.dropzone.hidden = false;
  });
  window.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  window.addEventListener('dragleave', (e) => {
    if (!hasFiles(e)) return;
    if (--dragDepth <= 0) { dragDepth = 0; el.dropzone.hidden = true; }
  });
  window.addEventListener('drop', async (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    el.dropzone.hidden = true;
    const entries = [...e.dataTransfer.items].map((it) => it.webkitGetAsEntry && it.webkitGetAsEntry()).filter(Boolean);
    if (entries.some((x) => x.isDirectory)) addFiles(await walkEntries(entries));
    else addFiles([...e.dataTransfer.files]);
  });

  async function walkEntries(entries) {
    const out = [];
    const stack = [...entries];
    while (stack.length && out.length < 20000) {
      const en = stack.pop();
      if (en.isFile) {
        out.push(await new Promise((res, rej) => en.file(res, rej)).catch(() => null));
      } else if (en.isDirectory) {
        const reader = en.createReader();
        for (;;) {
          const batch = await new Promise((res) => reader.readEntries(res, () => res([])));
          if (!batch.length) break;
          stack.push(...batch);
        }
      }
    }
    return out.filter(Boolean);
  }

  /* ----------------------------------------------------------- live feed */

  // What changes on the server (another client's uploads, files copied
  // into or deleted from the folder) shows here as it happens: the server
  // says "change" on /api/events, and /api/changes says what changed
  // since our token, which was taken before the list was read.
  let feedToken = null, feedBusy = false, feedAgain = false;

  async function feedStart() {
    try {
      const r = await fetch('/api/changes?since=0', { cache: 'no-store' });
      if (!r.ok) return;
      const first = JSON.parse((await r.text()).split('\n')[0]);
      if (first && typeof first.token === 'string') feedToken = first.token;
    } catch { /* no feed: the status poll reloads after scans */ }
  }

  async function feedApply() {
    if (feedBusy) { feedAgain = true; return; }
    if (feedToken === null || !loaded) return;
    feedBusy = true;
    try {
      const up = new Map(), gone = new Set();
      for (let more = true; more;) {
        const r = await fetch('/api/changes?since=' + encodeURIComponent(feedToken) + '&limit=5000',
          { cache: 'no-store' });
        if (authLost(r.status) || !r.ok) return;
        let ended = false;
        more = false;
        for (const line of (await r.text()).split('\n')) {
          if (!line) continue;
          const c = JSON.parse(line);
          if (c.change === 'upsert' && c.entry && typeof c.entry.sha256 === 'string') {
            up.set(c.entry.sha256, c.entry);
            gone.delete(c.entry.sha256);
          } else if (c.change === 'delete' && typeof c.sha256 === 'string') {
            gone.add(c.sha256);
            up.delete(c.sha256);
          } else if (c.change === 'reset') {
            feedToken = c.token;        // too far behind: read it all again
            load({ keepScroll: true, quiet: true, all: true });
            return;
          } else if (c.change === 'end') {
            feedToken = c.token;
            more = !!c.more;
            ended = true;
          }
        }
        if (!ended) return;             // cut short: the next event asks again
      }
      if (!up.size && !gone.size) return;
      const adds = [];
      for (const [sha, e] of up) {
        const it = toItem(sha, e);
        if (inFilter(it)) adds.push(it); else gone.add(it.sha);
      }
      change(adds, gone);
      refreshSoon();
      // What went may be in the trash, what came may have left it.
      if (canDelete) trashSoon();
    } catch { /* the next event tries again */ } finally {
      feedBusy = false;
      if (feedAgain) { feedAgain = false; feedApply(); }
    }
  }

  function feedListen() {
    if (typeof EventSource === 'undefined' || feedToken === null) return;
    const es = new EventSource('/api/events');
    const onEvent = (ev) => {
      let t = null;
      try { t = JSON.parse(ev.data).token; } catch { return; }
      if (t !== feedToken) feedApply();
    };
    es.addEventListener('hello', onEvent);    // also after a reconnect
    es.addEventListener('change', onEvent);
  }

  /* -------------------------------------------------------- server state */

  let wasScanning = false;
  async function pollStatus() {
    let st;
    try {
      const r = await fetch('/status', { cache: 'no-store' });
      if (authLost(r.status)) return;
      if (!r.ok) return;
      st = await r.json();
    } catch { return; }
    const scanning = st && st.state === 'scanning';
    el.scan.hidden = !scanning;
    showProblemCount(st && st.problems);
    // A full disk: the library is served read-only until space returns.
    const ro = !!st && st.writable === false;
    el.readonly.hidden = !ro;
    if (ro) {
      const full = /no space left/i.test(st.read_only_reason || '');
      el.readonly.textContent = full ? 'Disk full: read-only' : 'Read-only';
      el.readonly.title = st.read_only_reason || '';
    }
    if (scanning) {
      const done = st.files_done ?? st.done ?? st.scanned;
      el.scan.textContent = Number.isFinite(done) ? `Indexing… ${numFmt.format(done)}` : 'Indexing…';
      wasScanning = true;
      setTimeout(pollStatus, 2000);
    } else if (wasScanning) {
      wasScanning = false;
      load({ keepScroll: true, quiet: true, all: true });
      setTimeout(pollStatus, ro ? 5000 : 30000);
    } else {
      // Read-only: asked again soon, so the note goes when space returns.
      setTimeout(pollStatus, ro ? 5000 : 30000);
    }
  }

  /* ------------------------------------------------------------ problems */

  // Files the server could not read, folders it could not open and images
  // it could not make a preview of: a user should be able to tell why a
  // photo is missing or grey.
  const stageText = {
    read: 'could not be read',
    folder: 'folder could not be opened',
    thumbnail: 'no preview could be made',
  };

  function showProblemCount(n) {
    el.problemsBtn.hidden = !(n > 0);
    if (n > 0) {
      el.problemsBtn.textContent = `${numFmt.format(n)} ${n === 1 ? 'file' : 'files'} could not be read`;
    } else if (!el.problems.hidden) {
      closeProblems();
    }
  }

  async function openProblems() {
    let data;
    try {
      const r = await fetch('/api/problems?limit=500', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      data = await r.json();
    } catch (err) {
      toast('Could not load the list of problems: ' + err.message);
      return;
    }
    const list = data.problems || [];
    el.prList.textContent = '';
    for (const p of list) {
      const li = document.createElement('li');
      const path = document.createElement('span');
      path.className = 'pr-path';
      path.textContent = p.path;
      const why = document.createElement('span');
      why.className = 'pr-why';
      const when = Number.isFinite(p.time) ? dayFmt.format(new Date(p.time * 1000)) : '';
      why.textContent = `${stageText[p.stage] || p.stage}: ${p.reason}${when ? ' · ' + when : ''}`;
      li.append(path, why);
      el.prList.append(li);
    }
    el.prMore.hidden = !(data.count > list.length);
    el.prMore.textContent = `and ${numFmt.format(data.count - list.length)} more`;
    document.getElementById('pr-title').textContent =
      `${numFmt.format(data.count)} ${data.count === 1 ? 'file' : 'files'} could not be read`;
    el.problems.hidden = false;
    el.problemsBtn.setAttribute('aria-expanded', 'true');
    el.prClose.focus();
  }

  function closeProblems() {
    el.problems.hidden = true;
    el.problemsBtn.setAttribute('aria-expanded', 'false');
  }

  el.problemsBtn.addEventListener('click', () => {
    if (el.problems.hidden) openProblems(); else closeProblems();
  });
  el.prClose.addEventListener('click', () => { closeProblems(); el.problemsBtn.focus(); });

  /* ------------------------------------------------- account and API keys */

  async function api(method, url, body) {
    const r = await fetch(url, {
      method, cache: 'no-store', credentials: 'same-origin',
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (authLost(r.status)) throw new Error('logged out');
    let j = null;
    try { j = await r.json(); } catch { /* no body */ }
    if (!r.ok) throw new Error((j && j.error) || 'HTTP ' + r.status);
    return j;
  }

  async function whoAmI() {
    let me;
    try { me = await api('GET', '/api/auth/me'); } catch { return; }
    if (me.mode === 'open') {
      el.setupLink.hidden = !me.can_setup;
      canDelete = true;       // open to everyone: anyone uploads, and deletes
      applyRights();
      return;
    }
    el.accountBtn.hidden = false;
    $('account-name').textContent = me.user;
    el.accountBtn.title = `${me.user} (${me.role})`;
    $('ac-who').textContent = `Logged in as ${me.user} (${me.role}).`;
    // A viewer browses: no upload button, no upload keys.
    if (me.role === 'viewer') {
      el.uploadBtn.hidden = true;
      $('key-upload').checked = false;
      $('key-upload').disabled = true;
    }
    // Members and admins share: the open item, a selection, the dates.
    canShare = me.role === 'member' || me.role === 'admin';
    // Deleting (to the trash) needs the upload right, like uploading.
    canDelete = me.role === 'member' || me.role === 'admin';
    el.vShare.hidden = !canShare;
    $('shares-h').hidden = $('share-list').hidden = !canShare;
    // An admin manages people here (as `media-server user ...` does).
    isAdmin = me.role === 'admin';
    myName = me.user;
    $('user-form').hidden = $('user-list').hidden = !isAdmin;
    showChip();
    applyRights();
  }

  // A row's button that, once confirmed, DELETEs url and takes the row away.
  function deleteButton(li, text, label, question, url) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.addEventListener('click', async () => {
      if (!confirm(question)) return;
      try { await api('DELETE', url); li.remove(); } catch (err) { toast(`Could not ${text.toLowerCase()}: ${err.message}`); }
    });
    return b;
  }

  function keyItem(k) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'up-name';
    name.textContent = k.name;
    const meta = document.createElement('span');
    meta.className = 'key-meta';
    const used = k.last_used ? 'last used ' + dayFmt.format(new Date(k.last_used * 1000)) : 'never used';
    meta.textContent = `${k.prefix}… · ${(k.scopes || []).join(', ')} · ${used}`;
    const revoke = deleteButton(li, 'Revoke', 'Revoke the key ' + k.name,
      `Revoke the key "${k.name}"? Whatever uses it stops working.`, '/api/keys/' + k.id);
    li.append(name, revoke, meta);
    return li;
  }

  // One of the account panel's lists: GET url, field's items drawn by
  // item(), `none` when there are none.
  async function loadList(id, url, field, item, none, what) {
    const list = $(id);
    try {
      const j = await api('GET', url);
      const items = j[field] || [];
      list.textContent = '';
      for (const x of items) list.append(item(x));
      if (!items.length && none) {
        const li = document.createElement('li');
        li.className = 'key-meta';
        li.textContent = none;
        list.append(li);
      }
    } catch (err) { toast(`Could not load the ${what}: ${err.message}`); }
  }
  function loadKeys() { return loadList('key-list', '/api/keys', 'keys', keyItem, 'No API keys yet.', 'API keys'); }

  let isAdmin = false, myName = '';
  function userItem(u) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'up-name';
    name.textContent = u.name + (u.name === myName ? ' (you)' : '');
    const meta = document.createElement('span');
    meta.className = 'key-meta';
    const n = (k, one) => `${k} ${one}${k === 1 ? '' : 's'}`;
    meta.textContent = `${u.role} · ${n(u.keys, 'key')} · ${n(u.sessions, 'session')}`;
    const pw = document.createElement('button');
    pw.type = 'button';
    pw.className = 'btn';
    pw.textContent = 'New password';
    pw.setAttribute('aria-label', 'Set a new password for ' + u.name);
    pw.addEventListener('click', () => {
      // An inline field, not a prompt(): a password is never shown.
      const f = document.createElement('form');
      f.className = 'user-pw';
      const input = document.createElement('input');
      input.type = 'password';
      input.minLength = 8;
      input.required = true;
      input.autocomplete = 'new-password';
      input.setAttribute('aria-label', 'New password for ' + u.name);
      const save = document.createElement('button');
      save.type = 'submit';
      save.className = 'btn primary';
      save.textContent = 'Save';
      f.append(input, save);
      f.addEventListener('submit', async (e) => {
        e.preventDefault();
        try {
          await api('PATCH', '/api/users/' + encodeURIComponent(u.name), { password: input.value });
          f.remove();
          toast(`New password set for ${u.name}.`);
        } catch (err) { toast('Could not set the password: ' + err.message); }
      });
      pw.replaceWith(f);
      input.focus();
    });
    li.append(name, pw);
    if (u.name !== myName) {
      const del = deleteButton(li, 'Delete', 'Delete the account ' + u.name,
        `Delete the account "${u.name}"? Its keys, sessions and share links go with it; photos stay.`,
        '/api/users/' + encodeURIComponent(u.name));
      del.classList.add('danger');
      li.append(del);
    }
    li.append(meta);
    return li;
  }

  function loadUsers() { return loadList('user-list', '/api/users', 'users', userItem, '', 'accounts'); }
  $('user-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const u = await api('POST', '/api/users', {
        name: $('user-name').value.trim(), role: $('user-role').value, password: $('user-pw').value,
      });
      $('user-name').value = '';
      $('user-pw').value = '';
      toast(`${u.name} may now log in (${u.role}).`);
      loadUsers();
    } catch (err) { toast('Could not add the account: ' + err.message); }
  });

  function openAccount() {
    el.account.hidden = false;
    el.accountBtn.setAttribute('aria-expanded', 'true');
    $('key-new').hidden = true;
    loadKeys();
    if (canShare) loadShares();
    if (isAdmin) loadUsers();
    $('ac-close').focus();
  }
  function closeAccount() {
    el.account.hidden = true;
    el.accountBtn.setAttribute('aria-expanded', 'false');
    $('key-new-text').textContent = '';
  }
  el.accountBtn.addEventListener('click', () => { if (el.account.hidden) openAccount(); else closeAccount(); });
  $('ac-close').addEventListener('click', () => { closeAccount(); el.accountBtn.focus(); });
  $('key-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const scopes = [];
    if ($('key-read').checked) scopes.push('read');
    if ($('key-upload').checked) scopes.push('upload');
    if (!scopes.length) { toast('Choose what the key may do.'); return; }
    try {
      const k = await api('POST', '/api/keys', { name: $('key-name').value.trim(), scopes });
      $('key-new-text').textContent = k.key;
      $('key-new').hidden = false;
      $('key-name').value = '';
      loadKeys();
    } catch (err) { toast('Could not create the key: ' + err.message); }
  });
  async function logout(all) {
    try { await api('POST', all ? '/api/auth/logout-all' : '/api/auth/logout'); } catch { /* reload anyway */ }
    location.replace('/');
  }
  $('logout-btn').addEventListener('click', () => logout(false));
  $('logout-all-btn').addEventListener('click', () => logout(true));

  /* ------------------------------------------------------------- sharing */

  // A member shares the open item, a selection or the filtered dates as a
  // read-only link (POST /api/shares); the link is shown once.
  let canShare = false;
  let canDelete = false;        // the upload right: to the trash and back
  function canSelect() { return !SHARE && (canShare || canDelete); }

  // What the user may do shows once the server has said who they are.
  function applyRights() {
    document.body.classList.toggle('can-select', canSelect());
    el.selectBtn.hidden = !canSelect();
    el.vDelete.hidden = !canDelete;
    el.sideLinks.hidden = !!SHARE;
    el.trashLink.hidden = !canDelete;
    el.similarPick.hidden = !canDelete;
    if (canDelete) loadTrash();
    updateSelBar();
    route();
  }

  /* ----------------------------------------------------------- selection */

  // Items are selected by their check circle (shown on hover and focus,
  // and on every tile once a selection exists), by Space on a focused
  // tile, by a long press on touch screens, or, after the Select button,
  // by a click anywhere on a tile.  Shift selects a range.  A selection
  // started by a check circle ends when its last item is unselected.
  let selecting = false, selAuto = false, selAnchor = -1;
  const selected = new Set();   // shas

  function setSelecting(on, auto) {
    selecting = on;
    selAuto = !!auto;
    document.body.classList.toggle('selecting', on);
    el.selectBtn.setAttribute('aria-pressed', String(on));
    if (!on) {
      selected.clear();
      selAnchor = -1;
      markCells();
    }
    updateSelBar();
  }
  function markCells() {
    for (const a of el.timeline.querySelectorAll('a.cell')) {
      const it = itemAt(Number(a.dataset.i));
      const on = !!it && selected.has(it.sha);
      a.classList.toggle('selected', on);
      if (on) a.setAttribute('aria-pressed', 'true'); else a.removeAttribute('aria-pressed');
    }
  }
  // The bar takes the top bar's place while something may be acted on:
  // the timeline's selection, or the trash's.
  function updateSelBar() {
    const n = trashOn ? trashSel.size : simOn ? simSel.size : selected.size;
    const on = trashOn || simOn ? n > 0 : selecting;
    el.selBar.hidden = !on;
    document.body.classList.toggle('sel-on', on);
    el.selCount.textContent = n === 1 ? '1 selected' : numFmt.format(n) + ' selected';
    el.selShare.hidden = trashOn || simOn || !canShare;
    el.selDelete.hidden = trashOn || !canDelete;
    el.selRestore.hidden = el.selPurge.hidden = !trashOn;
    el.selShare.disabled = el.selDelete.disabled = el.selRestore.disabled = el.selPurge.disabled = n === 0;
  }
  function toggleSelected(a) {
    const i = Number(a.dataset.i);
    const it = itemAt(i);
    if (!it) return;
    if (!selecting) setSelecting(true, true);
    if (selected.has(it.sha)) selected.delete(it.sha); else selected.add(it.sha);
    selAnchor = i;
    if (!selected.size && selAuto) { setSelecting(false); return; }
    markCells();
    updateSelBar();
  }
  function selectRange(j) {
    if (!itemAt(j)) return;
    if (!selecting) setSelecting(true, true);
    const i = selAnchor >= 0 && selAnchor < nItems ? selAnchor : j;
    // (Items of a month not held in between are not selected.)
    for (let k = Math.min(i, j); k <= Math.max(i, j); k++) {
      const it = itemAt(k);
      if (it) selected.add(it.sha);
    }
    selAnchor = j;
    markCells();
    updateSelBar();
  }
  el.selectBtn.addEventListener('click', () => setSelecting(!selecting));
  el.selCancel.addEventListener('click', () => {
    if (trashOn) { trashSel.clear(); markTrash(); updateSelBar(); }
    else if (simOn) { simSel.clear(); markSimilar(); updateSelBar(); }
    else setSelecting(false);
  });
  // Escape clears the selection (the viewer and the panels have their own).
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !el.viewer.hidden || el.selBar.hidden) return;
    const t = e.target;
    if (t !== document.body && !el.main.contains(t) && !el.selBar.contains(t)) return;
    e.preventDefault();
    el.selCancel.click();
  });

  // A change to the months (deleted, restored, uploaded, the live feed):
  // the timeline again, where the user was (the anchor is taken before).
  function change(adds, gone) {
    const anchor = topAnchor();
    applyChanges(adds, gone);
    rebuild(anchor);
  }
  function rebuild(anchor) {
    recount();
    for (const sha of selected) if (!bySha.has(sha)) selected.delete(sha);
    if (selecting) updateSelBar();
    buildNav();
    if (nItems) hideState();
    if (!otherView()) relayout(anchor, false);   // a view hides the timeline: laid out on return
    updateCount();
    if (!nItems) showEmpty();
  }

  // The selected items (those held).
  const selectedItems = () => [...selected].map((sha) => bySha.get(sha)).filter(Boolean).sort(newestFirst);

  /* --------------------------------------------------- delete and restore */

  // At most a few requests at once.
  async function eachLimit(list, fn) {
    let next = 0;
    const worker = async () => { while (next < list.length) await fn(list[next++]); };
    await Promise.all(Array.from({ length: Math.min(4, list.length) }, worker));
  }
  const plural = (n) => (n === 1 ? '1 item' : numFmt.format(n) + ' items');

  // To the trash (DELETE /image/<sha>, a Live Photo's motion too), out of
  // the timeline at once, with a toast to undo.  Returns how many went.
  async function trashItems(list, what) {
    const saved = new Map();
    for (const it of list) { saved.set(it.sha, it); if (it.motion) saved.set(it.motion.sha, it.motion); }
    const gone = [];
    let err = null;
    await eachLimit(shasOf(list), async (sha) => {
      try { await api('DELETE', '/image/' + sha); gone.push(sha); }
      catch (e) { if (!/not found|404/i.test(e.message)) err = e; }
    });
    const n = list.filter((it) => gone.includes(it.sha)).length;
    if (gone.length) { change([], gone); trashSoon(); refreshSoon(); }
    if (err && !n) { toast('Could not move to the trash: ' + err.message); return 0; }
    const msg = (what && n === 1 ? what : plural(n)) + ' moved to the trash' +
      (err ? ` (${plural(list.length - n)} could not be: ${err.message})` : '');
    toast(msg, 'Undo', () => restoreShas(gone, saved));
    return n;
  }

  // Back from the trash (POST /api/trash/<sha>/restore), into the
  // timeline at once (the live feed says so too, a moment later).
  // `entries` gives each one's item: from the timeline, or the trash.
  async function restoreShas(shas, entries) {
    let done = 0, err = null;
    const adds = [];
    await eachLimit(shas, async (sha) => {
      try {
        const j = await api('POST', '/api/trash/' + sha + '/restore');
        const it = entries.get(sha);
        if (it) {
          if (j && typeof j.file_path === 'string') it.path = j.file_path;
          if (inFilter(it)) adds.push(it);
        }
        done++;
      } catch (e) { err = e; }
    });
    if (done) { change(adds, []); refreshSoon(); }
    if (err) toast('Could not restore everything: ' + err.message);
    trashSoon(0);
    if (done && simOn) loadSimilar();
    return done;
  }

  el.selDelete.addEventListener('click', async () => {
    if (simOn) { await trashSimilar(); return; }
    const list = selectedItems();
    if (!list.length) return;
    el.selDelete.disabled = true;
    setSelecting(false);
    await trashItems(list);
  });

  // The viewer's Delete: then the next (older) item, or the timeline.
  el.vDelete.addEventListener('click', async () => {
    const it = vItem;
    if (!it || el.vDelete.disabled) return;
    el.vDelete.disabled = true;
    const i = vIndex;
    try {
      if (!await trashItems([it], '“' + it.name + '”')) return;
    } finally { el.vDelete.disabled = false; }
    if (vItem !== it) return;              // moved on meanwhile
    if (i >= 0 && i < nItems) {
      if (itemAt(i)) openViewer(i, 'replace');
      else fetchMonth(months[monthIndexOf(i)], true).then(() => { if (vItem === it && itemAt(i)) openViewer(i, 'replace'); });
    } else closeViewer();
  });

  /* --------------------------------------------------------------- trash */

  // #/trash: what was deleted, most recently first, each with when it goes
  // for good; restore or delete for good a selection, or empty it all.
  let trashOn = false, trashList = [], trashAnchor = null, trashSelAnchor = -1, trashTimer = 0;
  const trashSel = new Set();

  function showTrash(on) {
    if (on === trashOn) return;
    if (on) {
      trashAnchor = loaded ? topAnchor() : null;
      if (selecting) setSelecting(false);
    }
    trashOn = on;
    document.body.classList.toggle('trash-view', on);
    el.trash.hidden = !on;
    if (on) el.trashLink.setAttribute('aria-current', 'page'); else el.trashLink.removeAttribute('aria-current');
    if (on) el.photosLink.removeAttribute('aria-current'); else el.photosLink.setAttribute('aria-current', 'page');
    closeDrawer();
    trashSel.clear();
    trashSelAnchor = -1;
    if (on) {
      window.scrollTo(0, 0);
      renderTrash();
      loadTrash();
    } else if (loaded) {
      backToTimeline(trashAnchor);
    }
    updateSelBar();
  }

  // The views of their own reached from the sidebar (#/trash, #/similar):
  // the timeline again where it was when one is left; its link pushes its
  // address (`key`), and Back or Photos leaves it.
  function backToTimeline(anchor) {
    hideState();
    relayout(anchor);
    if (!nItems) showEmpty();
  }
  function leaveView(key) {
    if (history.state && history.state[key]) { history.back(); return; }
    history.replaceState(null, '', urlWith(''));
    route();
  }
  function viewLink(link, key, title, isOn) {
    link.addEventListener('click', (e) => {
      e.preventDefault();
      closeDrawer();
      if (isOn()) return;
      // One view over the timeline at a time: from another view, this one
      // takes its place in the history, so Back and Photos reach the timeline.
      const state = { [key]: true }, url = urlWith('#/' + key);
      if (trashOn || simOn || placesOn) history.replaceState(state, '', url);
      else history.pushState(state, '', url);
      route();
      title.focus();
    });
  }
  viewLink(el.trashLink, 'trash', el.trashTitle, () => trashOn);
  el.photosLink.addEventListener('click', (e) => {
    e.preventDefault();
    closeDrawer();
    if (trashOn) leaveView('trash');
    else if (simOn) leaveView('similar');
    else if (placesOn) leaveView('places');
    else window.scrollTo(0, 0);
  });

  // The count beside "Trash", and the view when it shows.
  let trashSeq = 0;
  async function loadTrash() {
    const seq = ++trashSeq;
    let j;
    try { j = await api('GET', '/api/trash'); } catch (err) {
      if (trashOn) toast('Could not load the trash: ' + err.message);
      return;
    }
    if (seq !== trashSeq) return;
    const list = [];
    for (const e of (j && j.items) || []) {
      if (!e || typeof e.sha256 !== 'string') continue;
      const it = toItem(e.sha256, e);
      it.trashedAt = num(e.trashed_at);
      it.purgeAt = num(e.purge_at);
      list.push(it);
    }
    trashList = pairLive(list);
    const have = new Set(trashList.map((it) => it.sha));
    for (const sha of trashSel) if (!have.has(sha)) trashSel.delete(sha);
    el.trashCount.textContent = trashList.length ? numFmt.format(trashList.length) : '';
    el.trashLink.setAttribute('aria-label', 'Trash, ' + plural(trashList.length));
    if (trashOn) { renderTrash(); updateSelBar(); }
  }
  function trashSoon(ms = 600) {
    clearTimeout(trashTimer);
    trashTimer = setTimeout(loadTrash, ms);
  }

  // One tile of the trash's or the similar view's grid: the thumbnail
  // (its check circle, a video's badge, `badge` text), the name, `lines`.
  function makeTile(it, i, pressed, lines, badge) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = it.video ? 't-tile video' : 't-tile';
    b.dataset.i = i;
    b.dataset.sha = it.sha;
    b.setAttribute('aria-pressed', String(pressed));
    const box = document.createElement('span');
    box.className = 't-thumb';
    if (it.thumb) {
      const img = document.createElement('img');
      img.alt = '';
      img.decoding = 'async';
      img.loading = 'lazy';
      img.draggable = false;
      img.onload = () => img.classList.add('loaded');
      img.onerror = () => img.remove();
      img.src = thumbURL(it);
      box.append(img);
    }
    if (it.video) {
      const v = document.createElement('span');
      v.className = 'badge';
      v.innerHTML = '<svg aria-hidden="true"><use href="#i-play"/></svg>';
      box.append(v);
    }
    if (badge) {
      const t = document.createElement('span');
      t.className = 'sim-badge';
      t.textContent = badge;
      box.append(t);
    }
    const check = document.createElement('span');
    check.className = 'check';
    box.append(check);
    const name = document.createElement('span');
    name.className = 't-name';
    name.textContent = it.name;
    b.append(box, name);
    for (const text of lines) {
      const m = document.createElement('span');
      m.className = 't-meta';
      m.textContent = text;
      b.append(m);
    }
    li.append(b);
    return li;
  }

  function renderTrash() {
    el.trashGrid.textContent = '';
    const frag = document.createDocumentFragment();
    const d = (t) => (Number.isFinite(t) ? dayFmt.format(new Date(t * 1000)) : '?');
    trashList.forEach((it, i) => {
      frag.append(makeTile(it, i, trashSel.has(it.sha),
                           [`Deleted ${d(it.trashedAt)}`, `Deleted for good on ${d(it.purgeAt)}`]));
    });
    el.trashGrid.append(frag);
    const n = trashList.length;
    el.trashGrid.hidden = !n;
    el.trashState.hidden = n > 0;
    el.trashEmpty.hidden = !n;
    el.trashTitle.textContent = 'Trash';
    if (n) {
      const c = document.createElement('span');
      c.className = 'month-count';
      c.textContent = plural(n);
      el.trashTitle.append(' ', c);
    }
  }
  function markTrash() {
    for (const b of el.trashGrid.querySelectorAll('.t-tile')) {
      b.setAttribute('aria-pressed', String(trashSel.has(b.dataset.sha)));
    }
  }
  el.trashGrid.addEventListener('click', (e) => {
    const b = e.target.closest('.t-tile');
    if (!b) return;
    const i = Number(b.dataset.i);
    if (e.shiftKey && trashSelAnchor >= 0) {
      for (let k = Math.min(i, trashSelAnchor); k <= Math.max(i, trashSelAnchor); k++) {
        if (trashList[k]) trashSel.add(trashList[k].sha);
      }
    } else if (trashSel.has(b.dataset.sha)) trashSel.delete(b.dataset.sha);
    else trashSel.add(b.dataset.sha);
    trashSelAnchor = i;
    markTrash();
    updateSelBar();
  });

  const trashPicked = () => trashList.filter((it) => trashSel.has(it.sha));
  el.selRestore.addEventListener('click', async () => {
    const list = trashPicked();
    if (!list.length) return;
    el.selRestore.disabled = true;
    const entries = new Map();
    for (const it of list) { entries.set(it.sha, it); if (it.motion) entries.set(it.motion.sha, it.motion); }
    const n = await restoreShas(shasOf(list), entries);
    trashSel.clear();
    await loadTrash();
    updateSelBar();
    if (n) toast(`${plural(list.length)} restored`);
  });
  el.selPurge.addEventListener('click', async () => {
    const list = trashPicked();
    if (!list.length) return;
    if (!confirm(`Delete ${plural(list.length)} for good? This cannot be undone.`)) return;
    el.selPurge.disabled = true;
    let err = null;
    await eachLimit(shasOf(list), async (sha) => {
      try { await api('DELETE', '/api/trash/' + sha); } catch (e) { err = e; }
    });
    trashSel.clear();
    await loadTrash();
    updateSelBar();
    toast(err ? 'Could not delete everything: ' + err.message : `${plural(list.length)} deleted for good`);
  });
  el.trashEmpty.addEventListener('click', async () => {
    const n = trashList.length;
    if (!confirm(`Empty the trash? ${plural(n)} will be deleted for good. This cannot be undone.`)) return;
    el.trashEmpty.disabled = true;
    try {
      const j = await api('DELETE', '/api/trash');
      toast('Trash emptied');
      void j;
    } catch (err) { toast('Could not empty the trash: ' + err.message); }
    el.trashEmpty.disabled = false;
    trashSel.clear();
    await loadTrash();
    updateSelBar();
  });

  /* ------------------------------------------------------------- similar */

  // #/similar: groups of near-duplicates (GET /api/similar: re-saved,
  // resized, cropped or converted copies of one photo), the largest, the
  // original, first and marked.  The others can be selected and moved to
  // the trash with the selection bar's Delete (trashItems, with its Undo).
  let simOn = false, simGroups = [], simSeq = 0, simAnchor = null;
  const simSel = new Set();

  function showSimilar(on) {
    if (on === simOn) return;
    if (on) {
      simAnchor = loaded && !trashOn ? topAnchor() : null;
      if (selecting) setSelecting(false);
    }
    simOn = on;
    document.body.classList.toggle('similar-view', on);
    el.similar.hidden = !on;
    if (on) el.similarLink.setAttribute('aria-current', 'page'); else el.similarLink.removeAttribute('aria-current');
    if (on) el.photosLink.removeAttribute('aria-current');
    else if (!trashOn) el.photosLink.setAttribute('aria-current', 'page');
    closeDrawer();
    simSel.clear();
    if (on) {
      window.scrollTo(0, 0);
      renderSimilar(true);
      loadSimilar();
    } else if (loaded && !trashOn) {
      backToTimeline(simAnchor);
    }
    updateSelBar();
  }
  viewLink(el.similarLink, 'similar', el.similarTitle, () => simOn);

  async function loadSimilar() {
    const seq = ++simSeq;
    let j;
    try { j = await api('GET', '/api/similar'); } catch (err) {
      if (simOn && seq === simSeq) {
        toast('Could not look for similar photos: ' + err.message);
        renderSimilar(false);
      }
      return;
    }
    if (seq !== simSeq) return;
    simGroups = [];
    for (const g of (j && j.groups) || []) {
      const list = [];
      for (const e of (g && g.items) || []) {
        if (!e || typeof e.sha256 !== 'string') continue;
        const it = toItem(e.sha256, e);
        it.original = e.original === true;
        list.push(it);
      }
      if (list.length > 1) simGroups.push(list);
    }
    const have = new Set(simGroups.flat().map((it) => it.sha));
    for (const sha of simSel) if (!have.has(sha)) simSel.delete(sha);
    el.similarCount.textContent = simGroups.length ? numFmt.format(simGroups.length) : '';
    if (simOn) { renderSimilar(false); updateSelBar(); }
  }

  // The groups; `loading` while the first answer is awaited.
  function renderSimilar(loading) {
    el.similarGroups.textContent = '';
    const dims = (it) => (it.w && it.h ? `${it.w} × ${it.h}` : '');
    const frag = document.createDocumentFragment();
    simGroups.forEach((group, g) => {
      const sec = document.createElement('section');
      sec.className = 'sim-group';
      const h = document.createElement('h3');
      h.textContent = `${group.length} alike`;
      const ul = document.createElement('ul');
      ul.className = 'trash-grid';
      ul.setAttribute('aria-label', `Group ${g + 1}`);
      group.forEach((it, i) => {
        const size = Number.isFinite(it.size) ? formatBytes(it.size) : '';
        const li = makeTile(it, g + ':' + i, simSel.has(it.sha),
                            [[dims(it), size].filter(Boolean).join(' · ')],
                            it.original ? 'Original' : '');
        if (it.original) li.firstChild.classList.add('original');
        ul.append(li);
      });
      sec.append(h, ul);
      frag.append(sec);
    });
    el.similarGroups.append(frag);
    const n = simGroups.length;
    el.similarGroups.hidden = !n;
    el.similarState.hidden = n > 0;
    el.similarStateTitle.textContent = loading && !n ? 'Looking for similar photos…' : 'No similar photos';
    el.similarPick.disabled = !n;
    el.similarTitle.textContent = 'Similar';
    if (n) {
      const c = document.createElement('span');
      c.className = 'month-count';
      c.textContent = n === 1 ? '1 group' : numFmt.format(n) + ' groups';
      el.similarTitle.append(' ', c);
    }
  }
  function markSimilar() {
    for (const b of el.similarGroups.querySelectorAll('.t-tile')) {
      b.setAttribute('aria-pressed', String(simSel.has(b.dataset.sha)));
    }
  }
  el.similarGroups.addEventListener('click', (e) => {
    const b = e.target.closest('.t-tile');
    if (!b || !canDelete) return;
    if (simSel.has(b.dataset.sha)) simSel.delete(b.dataset.sha); else simSel.add(b.dataset.sha);
    markSimilar();
    updateSelBar();
  });
  // Every copy but the originals.
  el.similarPick.addEventListener('click', () => {
    for (const group of simGroups) for (const it of group) if (!it.original) simSel.add(it.sha);
    markSimilar();
    updateSelBar();
  });
  async function trashSimilar() {
    const list = simGroups.flat().filter((it) => simSel.has(it.sha));
    if (!list.length) return;
    el.selDelete.disabled = true;
    simSel.clear();
    updateSelBar();
    await trashItems(list);
    await loadSimilar();
  }

  // The hashes of some items, with a Live Photo's motion beside its photo.
  function shasOf(list) {
    const out = [];
    for (const it of list) { out.push(it.sha); if (it.motion) out.push(it.motion.sha); }
    return out;
  }

  let shareWhat = null;     // the body's items or from/to
  function openSharePanel(what, text) {
    shareWhat = what;
    $('sh-what').textContent = text;
    $('share-new').hidden = true;
    $('share-form').hidden = false;
    $('sh-name').value = '';
    $('sh-password').value = '';
    $('sh-gps').checked = false;
    $('sh-originals').checked = false;
    $('share-panel').hidden = false;
    $('sh-name').focus();
  }
  function closeSharePanel() {
    $('share-panel').hidden = true;
    $('share-new-url').textContent = '';
  }
  $('sh-close').addEventListener('click', closeSharePanel);
  el.vShare.addEventListener('click', () => {
    if (vItem) openSharePanel({ items: shasOf([vItem]) }, `Share “${vItem.name}”`);
  });
  $('sel-share').addEventListener('click', () => {
    const list = selectedItems();
    if (!list.length) return;
    openSharePanel({ items: shasOf(list) }, list.length === 1 ? `Share 1 item` : `Share ${numFmt.format(list.length)} items`);
  });
  $('share-dates').addEventListener('click', () => {
    openSharePanel({ from: filter.from, to: filter.to }, `Share ${el.chipText.textContent} (what is there now and what comes later)`);
  });
  $('share-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = Object.assign({}, shareWhat, {
      name: $('sh-name').value.trim(),
      gps: $('sh-gps').checked,
      originals: $('sh-originals').checked,
    });
    const exp = $('sh-expires').value;
    if (exp) body.expires_in = Number(exp);
    const pw = $('sh-password').value;
    if (pw) body.password = pw;
    try {
      const j = await api('POST', '/api/shares', body);
      $('share-new-url').textContent = location.origin + j.url;
      $('share-new').hidden = false;
      $('share-form').hidden = true;
      if (selecting) setSelecting(false);
      if (!el.account.hidden) loadShares();
    } catch (err) { toast('Could not make the link: ' + err.message); }
  });
  $('share-copy').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText($('share-new-url').textContent); toast('Link copied.'); }
    catch { toast('Select the link and copy it.'); }
  });

  function shareItem(sh) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'up-name';
    const d = (s) => dayFmt.format(new Date(s + 'T00:00:00'));
    const what = sh.kind === 'items' ? (sh.count === 1 ? '1 item' : `${numFmt.format(sh.count)} items`)
      : sh.from && sh.to ? `${d(sh.from)} – ${d(sh.to)}` : sh.from ? `since ${d(sh.from)}` : `until ${d(sh.to)}`;
    name.textContent = sh.name || what;
    const meta = document.createElement('span');
    meta.className = 'key-meta';
    const bits = [];
    if (sh.name) bits.push(what);
    bits.push(sh.expired ? 'expired' : sh.expires ? 'ends ' + dayFmt.format(new Date(sh.expires * 1000)) : 'no end');
    if (sh.password) bits.push('password');
    if (sh.gps) bits.push('GPS');
    if (sh.originals) bits.push('originals');
    bits.push('made ' + dayFmt.format(new Date(sh.created * 1000)));
    meta.textContent = bits.join(' · ');
    const revoke = deleteButton(li, 'Revoke', 'Revoke the link ' + name.textContent,
      `Revoke the link "${name.textContent}"? It stops working at once.`, '/api/shares/' + sh.id);
    li.append(name, revoke, meta);
    return li;
  }

  function loadShares() { return loadList('share-list', '/api/shares', 'shares', shareItem, 'No share links yet.', 'share links'); }

  /* ------------------------------------------------- a share link's page */

  function showGone() {
    el.count.textContent = '';
    showState('#i-offline', 'This link does not work any more',
      'It has expired, or whoever shared it has revoked it.', '', null);
    el.stateAction.hidden = true;
  }
  function showUnlock() {
    el.count.textContent = '';
    showState('#i-lock', 'This link needs a password', 'Ask whoever shared it with you.', '', null);
    el.stateAction.hidden = true;
    $('unlock-form').hidden = false;
    $('unlock-pw').focus();
  }
  $('unlock-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    let r, j = null;
    try {
      r = await fetch(BASE + '/unlock', {
        method: 'POST', cache: 'no-store', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ password: $('unlock-pw').value }),
      });
      try { j = await r.json(); } catch { /* no body */ }
    } catch (err) { toast('The server did not answer: ' + err.message); return; }
    if (r.ok) { $('unlock-pw').value = ''; openShare(); return; }
    if (r.status === 404) { showGone(); return; }
    toast(r.status === 401 ? 'Wrong password.' : (j && j.error) || 'HTTP ' + r.status);
  });

  async function openShare() {
    let r, info;
    try {
      r = await fetch(BASE + '/info', { cache: 'no-store' });
      if (r.ok) info = await r.json();
    } catch (err) { showError(err); return; }
    if (r.status === 404) { showGone(); return; }
    if (!r.ok || !info) { showError(new Error('HTTP ' + r.status)); return; }
    if (info.locked) { showUnlock(); return; }
    shareInfo = info;
    $('unlock-form').hidden = true;
    el.stateAction.hidden = false;
    if (info.name) {
      document.title = info.name + ' — shared photos';
      document.querySelector('.brand span').textContent = info.name;
    }
    formatsReady = loadFormats(BASE + '/formats');
    hideState();
    load();
  }

  function bootShare() {
    document.body.classList.add('shared');
    document.querySelector('.brand span').textContent = 'Shared photos';
    el.uploadBtn.hidden = true;
    el.filterBtn.hidden = true;
    openShare();
  }

  /* ---------------------------------------------------------------- boot */

  if (SHARE) {
    bootShare();
  } else {
    readFilterFromURL();
    feedStart().then(() => { load(); feedListen(); });
    pollStatus();
    whoAmI();
  }
})();
