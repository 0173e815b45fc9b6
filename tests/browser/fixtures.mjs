// Test photos for the browser tests: small baseline colour JPEGs (every 8x8
// block flat, DC coefficients only, like tests/fixtures.c but in colour)
// with an EXIF APP1 carrying DateTimeOriginal and optionally GPS and camera.
// No dependencies; any decoder (libjpeg-turbo, the browser) reads them.

// ITU T.81 K.3 DC luminance table: code lengths per category 0..11.
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];

function dcCodes() {
  const code = [], len = [];
  let c = 0;
  for (let l = 1; l <= 16; l++) {
    for (let i = 0; i < DC_BITS[l - 1]; i++) { code.push(c++); len.push(l); }
    c <<= 1;
  }
  return { code, len };
}
const DC = dcCodes();

class BitWriter {
  constructor() { this.out = []; this.acc = 0; this.n = 0; }
  put(code, len) {
    for (let i = len - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((code >> i) & 1);
      if (++this.n === 8) {
        this.out.push(this.acc);
        if (this.acc === 0xff) this.out.push(0);
        this.acc = 0; this.n = 0;
      }
    }
  }
  flush() { while (this.n) this.put(1, 1); return Buffer.from(this.out); }
}

function hsl(h, s, l) {
  const a = s * Math.min(l, 1 - l);
  const f = (n) => { const k = (n + h / 30) % 12; return l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1)); };
  return [f(0) * 255, f(8) * 255, f(4) * 255];
}

// A little landscape: sky, a sun, hills; colours and layout depend on seed.
function blockColour(bx, by, bw, bh, seed) {
  const x = (bx + 0.5) / bw, y = (by + 0.5) / bh;
  const hue = (seed * 47) % 360;
  const horizon = 0.55 + 0.12 * Math.sin(x * 6.3 + seed) ;
  const sx = 0.2 + ((seed * 0.37) % 0.6), sy = 0.25;
  const dx = (x - sx) * (bw / bh), dy = y - sy;
  if (dx * dx + dy * dy < 0.012) return hsl((hue + 40) % 360, 0.9, 0.7);
  if (y < horizon) return hsl(hue, 0.55, 0.78 - 0.3 * y);
  return hsl((hue + 120) % 360, 0.45, 0.42 - 0.2 * (y - horizon));
}

function encode(w, h, seed) {
  const bw = Math.ceil(w / 8), bh = Math.ceil(h / 8);
  const hdr = [];
  const push = (...b) => hdr.push(...b);
  // DQT: table 0, all ones
  push(0xff, 0xdb, 0, 67, 0); for (let i = 0; i < 64; i++) push(1);
  // SOF0: 3 components, 1x1 sampling, quant table 0
  push(0xff, 0xc0, 0, 17, 8, h >> 8, h & 255, w >> 8, w & 255, 3,
       1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0);
  // DHT: DC table 0 (standard), AC table 0 with EOB alone
  push(0xff, 0xc4, 0, 2 + 17 + 12 + 17 + 1, 0x00, ...DC_BITS);
  for (let i = 0; i < 12; i++) push(i);
  push(0x10, 1); for (let i = 1; i < 16; i++) push(0); push(0x00);
  // SOS: 3 components, tables 0/0
  push(0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0);
  const bits = new BitWriter();
  const prev = [0, 0, 0];
  for (let by = 0; by < bh; by++) {
    for (let bx = 0; bx < bw; bx++) {
      const [r, g, b] = blockColour(bx, by, bw, bh, seed);
      const ycc = [
        0.299 * r + 0.587 * g + 0.114 * b,
        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
      ];
      for (let c = 0; c < 3; c++) {
        const level = Math.max(0, Math.min(255, Math.round(ycc[c])));
        const dc = (level - 128) * 8, diff = dc - prev[c];
        prev[c] = dc;
        let mag = Math.abs(diff), cat = 0;
        while (mag >> cat) cat++;
        bits.put(DC.code[cat], DC.len[cat]);
        if (cat) bits.put(diff < 0 ? diff + (1 << cat) - 1 : diff, cat);
        bits.put(0, 1); // EOB
      }
    }
  }
  return Buffer.concat([Buffer.from(hdr), bits.flush(), Buffer.from([0xff, 0xd9])]);
}

// ---- EXIF (little-endian TIFF) ----
const ASCII = 2, SHORT = 3, LONG = 4, RATIONAL = 5;

function ascii(s) { return Buffer.from(s + '\0', 'latin1'); }
function rationals(vals) {
  const b = Buffer.alloc(8 * vals.length);
  vals.forEach(([n, d], i) => { b.writeUInt32LE(n, 8 * i); b.writeUInt32LE(d, 8 * i + 4); });
  return b;
}
function dms(deg) {
  const a = Math.abs(deg), d = Math.floor(a), mf = (a - d) * 60, m = Math.floor(mf);
  return rationals([[d, 1], [m, 1], [Math.round((mf - m) * 60 * 1000), 1000]]);
}

// entries: [tag, type, count, Buffer]; returns {size, write(buf, off) -> patches}
function ifdSize(entries) {
  let extra = 0;
  for (const [, , , data] of entries) if (data.length > 4) extra += data.length + (data.length & 1);
  return 2 + entries.length * 12 + 4 + extra;
}
function writeIfd(buf, off, entries) {
  entries.sort((a, b) => a[0] - b[0]);
  buf.writeUInt16LE(entries.length, off);
  let data = off + 2 + entries.length * 12 + 4;
  entries.forEach(([tag, type, count, val], i) => {
    const e = off + 2 + 12 * i;
    buf.writeUInt16LE(tag, e); buf.writeUInt16LE(type, e + 2); buf.writeUInt32LE(count, e + 4);
    if (val.length <= 4) val.copy(buf, e + 8);
    else { buf.writeUInt32LE(data, e + 8); val.copy(buf, data); data += val.length + (val.length & 1); }
  });
  buf.writeUInt32LE(0, off + 2 + entries.length * 12);
}
function u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; }
function u16(v) { const b = Buffer.alloc(4); b.writeUInt16LE(v); return b.subarray(0, 2); }

// Apple's maker note holding a Live Photo id (its tag 0x0011, ASCII).
function appleNote(id) {
  const v = ascii(id);
  const head = Buffer.alloc(32);
  head.write('Apple iOS\0', 0, 'latin1');
  head.writeUInt16BE(1, 10);
  head.write('MM', 12, 'latin1');
  head.writeUInt16BE(1, 14);                  // one entry
  head.writeUInt16BE(0x0011, 16); head.writeUInt16BE(2, 18);
  head.writeUInt32BE(v.length, 20); head.writeUInt32BE(32, 24);
  return Buffer.concat([head, v]);
}

export function exifBlock({ date, make, model, lat, lon, orientation, liveId }) {
  const ifd0 = [], exif = [], gps = [];
  if (make) ifd0.push([0x010f, ASCII, make.length + 1, ascii(make)]);
  if (model) ifd0.push([0x0110, ASCII, model.length + 1, ascii(model)]);
  if (orientation) ifd0.push([0x0112, SHORT, 1, u16(orientation)]);
  if (date) {
    exif.push([0x9003, ASCII, 20, ascii(date)]);
    exif.push([0x9004, ASCII, 20, ascii(date)]);
  }
  if (liveId) {
    const note = appleNote(liveId);
    exif.push([0x927c, 7, note.length, note]);
  }
  if (lat !== undefined && lon !== undefined) {
    gps.push([0x0000, 1, 4, Buffer.from([2, 3, 0, 0])]);
    gps.push([0x0001, ASCII, 2, ascii(lat >= 0 ? 'N' : 'S')]);
    gps.push([0x0002, RATIONAL, 3, dms(lat)]);
    gps.push([0x0003, ASCII, 2, ascii(lon >= 0 ? 'E' : 'W')]);
    gps.push([0x0004, RATIONAL, 3, dms(lon)]);
  }
  // pointers, patched once offsets are known
  if (exif.length) ifd0.push([0x8769, LONG, 1, u32(0)]);
  if (gps.length) ifd0.push([0x8825, LONG, 1, u32(0)]);
  const o0 = 8, oe = o0 + ifdSize(ifd0), og = oe + (exif.length ? ifdSize(exif) : 0);
  for (const e of ifd0) {
    if (e[0] === 0x8769) e[3] = u32(oe);
    if (e[0] === 0x8825) e[3] = u32(og);
  }
  const tiff = Buffer.alloc(og + (gps.length ? ifdSize(gps) : 0));
  tiff.write('II', 0, 'latin1'); tiff.writeUInt16LE(42, 2); tiff.writeUInt32LE(o0, 4);
  writeIfd(tiff, o0, ifd0);
  if (exif.length) writeIfd(tiff, oe, exif);
  if (gps.length) writeIfd(tiff, og, gps);
  return Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
}

// A JPEG w x h (multiples of 8 look best) whose pixels depend on seed, with
// EXIF from opts ({date: "YYYY:MM:DD HH:MM:SS", make, model, lat, lon}).
export function makeJpeg(w, h, seed, opts = {}) {
  const body = encode(w, h, seed);
  const parts = [Buffer.from([0xff, 0xd8])];
  if (opts.date || opts.make || opts.lat !== undefined) {
    const app1 = exifBlock(opts);
    const len = Buffer.alloc(4);
    len.writeUInt8(0xff, 0); len.writeUInt8(0xe1, 1); len.writeUInt16BE(app1.length + 2, 2);
    parts.push(len, app1);
  }
  if (opts.comment) {
    const c = Buffer.from(opts.comment, 'latin1');
    const hd = Buffer.from([0xff, 0xfe, (c.length + 2) >> 8, (c.length + 2) & 255]);
    parts.push(hd, c);
  }
  parts.push(body);
  return Buffer.concat(parts);
}

// "2021:07:04 12:00:00" for a Date read in local time.
export function exifDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}:${p(d.getMonth() + 1)}:${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
