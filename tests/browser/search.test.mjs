#!/usr/bin/env node
// Places and search in a real browser: the search box narrows the grid
// (words, a year, a place) and says why a query cannot be read; the
// Places view lists countries and towns and opens one; the viewer's
// caption names the town.  Prints TAP.
//
//   MI_SERVER=build/server/media-server node tests/browser/search.test.mjs
//
// Environment: as gallery.test.mjs (MI_SERVER, CHROMIUM, MI_TEST_BUILD_DIR,
// MI_TEST_KEEP).
import fs from 'node:fs';
import path from 'node:path';
import { makeJpeg } from './fixtures.mjs';
import { harness } from './harness.mjs';

const t = await harness('search');
const { ok, step } = t;
const lib = path.join(t.tmp, 'library');
fs.mkdirSync(lib);
const photos = [
  // name, seed, date, lat, lon
  ['helsinki-harbour.jpg', 21, '2021:06:03 12:00:00', 60.147, 24.907],
  ['arezzo-1.jpg', 22, '2008:10:22 16:29:49', 43.4674, 11.8851],
  ['arezzo-2.jpg', 23, '2008:10:23 10:00:00', 43.4640, 11.8810],
  ['madrid.jpg', 24, '2019:04:01 10:00:00', 40.4470, -3.7250],
  ['no-gps-2021.jpg', 25, '2021:09:09 09:00:00', undefined, undefined],
];
for (const [name, seed, date, lat, lon] of photos)
  fs.writeFileSync(path.join(lib, name), makeJpeg(64, 48, seed, { date, lat, lon, make: 'Acme', model: 'Cam ' + seed }));

const cells = (page, n) => page.waitForFunction((k) => document.querySelectorAll('#timeline a.cell').length === k, n, { timeout: 15000 });

let srv;
try {
  srv = await t.startServer(lib);
  await t.launch();
} catch (e) {
  await t.bail(e);
}

// The 400 of the query made bad on purpose is logged by Chromium.
const { page } = await t.newPage('search', /400/);


async function search(text) {
  await page.fill('#q', text);
  await page.press('#q', 'Enter');
}

await step('the search box: "helsinki 2021" leaves one photo, kept in the address', async () => {
  await page.goto(srv.url + '/');
  await cells(page, photos.length);
  await search('helsinki 2021');
  await cells(page, 1);
  const url = new URL(page.url());
  ok(url.searchParams.get('q') === 'helsinki 2021', 'the search box: "helsinki 2021" leaves one photo, kept in the address', page.url());
  ok(/Search: helsinki 2021/.test(await page.textContent('#chip-row')), 'a chip says what is searched');
  await t.shot(page, 'search-helsinki');
});

await step('a year alone, and a reload keeps the search', async () => {
  await search('2021');
  await cells(page, 2);
  await page.reload();
  await cells(page, 2);
  ok((await page.inputValue('#q')) === '2021', 'a year alone, and a reload keeps the search');
});

await step('a query the server cannot read: its reason, and a way out', async () => {
  await search('date:2021-13');
  await page.waitForSelector('#state:not([hidden])');
  const text = await page.textContent('#state');
  ok(/cannot be read/.test(text) && /date:2021-13/.test(text), 'a query the server cannot read: its reason, and a way out', text);
  await page.click('#state-action');
  await cells(page, photos.length);
  ok(new URL(page.url()).searchParams.get('q') === null, 'clearing it shows everything again', page.url());
});

await step('nothing found says so', async () => {
  await search('xanadu');
  await page.waitForSelector('#state:not([hidden])');
  ok(/Nothing found/.test(await page.textContent('#state')), 'nothing found says so');
  await page.click('#chip-x');
  await cells(page, photos.length);
});

await step('Places: countries by photos, their towns; a town opens its photos', async () => {
  await page.click('#places-link');
  await page.waitForSelector('.place-tile');
  const heads = await page.$$eval('.places h3', (a) => a.map((h) => h.textContent));
  ok(JSON.stringify(heads) === JSON.stringify(['Italy · 2 items', 'Finland · 1 item', 'Spain · 1 item']),
     'Places: countries by photos, their towns', heads);
  const tiles = await page.$$eval('.place-tile', (a) => a.map((b) => b.getAttribute('aria-label')));
  ok(tiles.includes('Arezzo, Tuscany · 2 items') && tiles.includes('Madrid, Madrid · 1 item'), 'each town with its region and count', tiles);
  ok(/GeoNames/.test(await page.textContent('#places')), 'the GeoNames credit is shown');
  await t.shot(page, 'places');
  await page.click('.place-tile[aria-label^="Arezzo"]');
  await cells(page, 2);
  ok(/place:"Arezzo, IT"/.test(await page.inputValue('#q')), 'a town opens its photos', await page.inputValue('#q'));
});

await step('the viewer names the town', async () => {
  await page.click('#timeline a.cell');
  await page.waitForSelector('#viewer:not([hidden])');
  const cap = await page.textContent('#cap-place');
  ok(/Arezzo, Tuscany, Italy/.test(cap), 'the viewer names the town', cap);
  await t.shot(page, 'viewer-town');
});

await step('from Places to Similar, Photos comes back to the timeline', async () => {
  await page.keyboard.press('Escape');
  await page.click('#chip-x');
  await cells(page, photos.length);
  await page.click('#places-link');
  await page.waitForSelector('.place-tile');
  await page.click('#similar-link');
  await page.waitForSelector('#similar:not([hidden])');
  await page.click('#photos-link');
  await cells(page, photos.length);
  ok(await page.isVisible('#timeline') && await page.isHidden('#places') && await page.isHidden('#similar') &&
     new URL(page.url()).hash === '', 'from Places to Similar, Photos comes back to the timeline', page.url());
});

await t.finish();
