// Folders of generated photos with known EXIF dates, for the browser tests
// (gallery.test.mjs) and the by-hand 50,000-item perf check (perf.mjs).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { makeJpeg, exifDate } from './fixtures.mjs';

export const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// A minimal ISO-BMFF file (ftyp + empty mdat): indexed as a video; no
// browser can play it, so the tests only look at its tile.
export function fakeMp4(seed) {
  const ftyp = Buffer.alloc(24);
  ftyp.writeUInt32BE(24, 0); ftyp.write('ftypisom', 4, 'latin1');
  ftyp.writeUInt32BE(0x200, 12); ftyp.write('isommp41', 16, 'latin1');
  const mdat = Buffer.alloc(16);
  mdat.writeUInt32BE(16, 0); mdat.write('mdat', 4, 'latin1'); mdat.writeUInt32BE(seed, 8);
  return Buffer.concat([ftyp, mdat]);
}

// The gallery fixture: about 60 photos over 7 years, in subfolders, some
// portrait, one with GPS and a camera, and one video.  Returns the list of
// {file, sha, date (Date, local), w, h, video} it wrote.
export function buildGalleryCorpus(dir) {
  const out = [];
  const add = (rel, buf, date, w, h, extra = {}) => {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, buf);
    out.push({ file, rel, sha: sha256(buf), date, w, h, video: false, ...extra });
  };
  // year, month (1-12), count: some months full, some with one photo
  const plan = [
    [2024, 11, 9], [2024, 6, 4], [2023, 12, 3], [2023, 8, 14], [2022, 3, 1],
    [2021, 2, 6], [2019, 9, 12], [2017, 5, 2], [2015, 7, 5],
  ];
  let seed = 1;
  for (const [y, m, n] of plan) {
    for (let i = 0; i < n; i++) {
      // distinct times: day 1 + i, hours from the seed; newest last
      const date = new Date(y, m - 1, 1 + i * 2, 8 + (seed % 10), seed % 60, 0);
      const portrait = seed % 4 === 0;
      const w = portrait ? 480 : 640, h = portrait ? 640 : 480;
      const folder = `${y}/${String(m).padStart(2, '0')}`;
      add(`${folder}/IMG_${String(seed).padStart(4, '0')}.jpg`,
          makeJpeg(w, h, seed, { date: exifDate(date) }), date, w, h);
      seed++;
    }
  }
  // New Year's Eve late at night (local time): still December 2023.
  const nye = new Date(2023, 11, 31, 23, 30, 0);
  add('2023/12/nye.jpg', makeJpeg(640, 480, 97, { date: exifDate(nye) }), nye, 640, 480);
  // GPS and camera.
  const paris = new Date(2024, 5, 20, 18, 45, 0);
  add('trips/paris/DSC_0042.jpg', makeJpeg(640, 480, 123, {
    date: exifDate(paris), make: 'NIKON CORPORATION', model: 'NIKON D750', lat: 48.8583, lon: 2.2945,
  }), paris, 640, 480, { gps: true });
  // A video: no EXIF, so its date is the file's ctime (now).
  const vid = fakeMp4(7);
  const vfile = path.join(dir, 'videos/clip.mp4');
  fs.mkdirSync(path.dirname(vfile), { recursive: true });
  fs.writeFileSync(vfile, vid);
  out.push({ file: vfile, rel: 'videos/clip.mp4', sha: sha256(vid), date: new Date(), w: 0, h: 0, video: true });
  return out;
}

// n tiny photos (16x16, about 1 KB each) with dates spread over ten years,
// 1,000 per folder.  Each file is unique (its pixels depend on the index).
export function buildBigCorpus(dir, n) {
  const end = new Date(2025, 0, 1).getTime();
  const span = 10 * 365.25 * 86400e3;
  for (let i = 0; i < n; i++) {
    const folder = path.join(dir, `batch${String(Math.floor(i / 1000)).padStart(3, '0')}`);
    if (i % 1000 === 0) fs.mkdirSync(folder, { recursive: true });
    // Uneven: more photos in recent years, bursts on some days.
    const f = Math.pow((i * 0.6180339887) % 1, 1.6);
    const date = new Date(end - f * span);
    const w = i % 5 === 0 ? 16 : 24, h = i % 5 === 0 ? 24 : 16;
    fs.writeFileSync(path.join(folder, `P${String(i).padStart(6, '0')}.jpg`),
                     makeJpeg(w, h, i, { date: exifDate(date), comment: `mi-perf ${i}` }));
  }
}
