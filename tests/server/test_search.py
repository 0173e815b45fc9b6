"""Places and search over HTTP: the place fields of /list, the origin's
/list/location/ routes, /list?q= and ?place=, and /api/places, against a
real media-server on 127.0.0.1 with JPEGs whose EXIF holds positions.

    python3 test_search.py MEDIA_SERVER FIXTURE_TOOL
"""
import calendar
import json
import os
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish, FIXTURE_TOOL, Skip  # noqa: E402

if not FIXTURE_TOOL:
    give_up("needs the fixture tool")

FILES = {
    # path: (seed, date, make, model, lat, lon)
    "trips/IMG_20210603.jpg": (1, "2021:06:03 12:00:00", "HMD Global",
                               "Nokia 8.3 5G", 60.147, 24.907),
    "old/DSCN0010.jpg": (2, "2008:10:22 16:29:49", "NIKON", "COOLPIX P6000",
                         43.467448, 11.885127),
    "beach.jpg": (3, "2019:01:05 10:00:00", "Apple", "iPhone 12",
                  -33.8688, 151.2093),
    "malmo/harbour.jpg": (4, "2021:08:01 10:00:00", "Apple", "iPhone 12",
                          55.6050, 13.0038),
    "de/rhine.jpg": (8, "2018:03:03 10:00:00", "Apple", "iPhone 12",
                     51.2217, 6.7762),
    "Zürich notes.jpg": (5, "2021:07:01 09:00:00", "Canon", "EOS 5D"),
    "sea/atlantic.jpg": (6, "2020:02:02 10:00:00", "Canon", "EOS 5D",
                         0.0, -30.0),
}

root = new_root("search")
SHA = {}
for rel, ex in FILES.items():
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    data = jpeg_bytes(ex[0], 32, 24, ex[1:])
    open(p, "wb").write(data)
    SHA[rel] = sha(data)

s = Server(root, "--watch", "off")
s.wait_idle()


def names(path):
    """The file_path of each entry a /list-like route answers, sorted."""
    st, h, data = s.request("GET", path)
    check(st == 200, (path, st, data[:300]))
    if "ndjson" in h.get("content-type", ""):
        rows = [json.loads(x) for x in data.decode().splitlines() if x]
    else:
        rows = list(json.loads(data).values())
    return sorted(e["file_path"] for e in rows)


def q(text, **extra):
    args = {"q": text, **extra}
    return names("/list?" + urllib.parse.urlencode(args))


@test("/list entries carry the nearest place; none without GPS or at sea")
def _():
    rows = s.listing()
    a = rows[SHA["old/DSCN0010.jpg"]]
    check((a["city"], a["region"], a["country"], a["country_code"]) ==
          ("Arezzo", "Tuscany", "Italy", "IT"), a)
    h = rows[SHA["trips/IMG_20210603.jpg"]]
    check((h["city"], h["country_code"]) == ("Helsinki", "FI"), h)
    m = rows[SHA["malmo/harbour.jpg"]]
    check((m["city"], m["region"]) == ("Malmo", "Skåne County"), m)
    check(rows[SHA["de/rhine.jpg"]]["city"] == "Düsseldorf",
          rows[SHA["de/rhine.jpg"]])
    for rel in ("Zürich notes.jpg", "sea/atlantic.jpg"):
        e = rows[SHA[rel]]
        check(not {"city", "region", "country", "country_code"} & set(e), e)
    check("latitude" in rows[SHA["sea/atlantic.jpg"]])


@test("/list/location/<city>[/<country>]: case and accents ignored")
def _():
    check(names("/list/location/Helsinki") == ["trips/IMG_20210603.jpg"])
    check(names("/list/location/HELSINKI/finland") ==
          ["trips/IMG_20210603.jpg"])
    check(names("/list/location/helsinki/FI") == ["trips/IMG_20210603.jpg"])
    check(names("/list/location/Malmo") == ["malmo/harbour.jpg"])
    check(names("/list/location/Dusseldorf") == ["de/rhine.jpg"])
    check(names("/list/location/D%C3%9CSSELDORF/germany") == ["de/rhine.jpg"])
    check(names("/list/location/Arezzo/France") == [])
    check(names("/list/location/Tuscany") == [])      # a region, not a city
    check(names("/list/location/Nowhere%20Town") == [])
    check(names("/list/location/Arezzo?format=ndjson") == ["old/DSCN0010.jpg"])
    st, _, _ = s.request("GET", "/list/location/a%00b")
    check(st == 400, st)


@test("/list?q=: words, places, dates, cameras, types combined")
def _():
    check(q("helsinki 2021") == ["trips/IMG_20210603.jpg"])
    check(q("Helsinki 2020") == [])
    check(q("place:finland") == ["trips/IMG_20210603.jpg"])
    check(q("location:IT") == ["old/DSCN0010.jpg"])
    check(q('place:"new south wales"') == ["beach.jpg"])
    check(q("zurich") == ["Zürich notes.jpg"])
    check(q("skane") == ["malmo/harbour.jpg"])
    check(q("place:skåne") == [])                  # place: names a whole name
    check(q('place:"skane county"') == ["malmo/harbour.jpg"])
    check(q("düsseldorf") == ["de/rhine.jpg"])
    check(q("camera:iphone") == ["beach.jpg", "de/rhine.jpg",
                                 "malmo/harbour.jpg"])
    check(q("camera:iphone 2021") == ["malmo/harbour.jpg"])
    check(q("type:photo between:2021-06..2021-07") ==
          ["Zürich notes.jpg", "trips/IMG_20210603.jpg"])
    check(q("type:video") == [])
    check(q("date:2008-10-22") == ["old/DSCN0010.jpg"])
    check(q("", place="Sweden") == ["malmo/harbour.jpg"])
    check(q("2021", place="uusimaa") == ["trips/IMG_20210603.jpg"])
    check(q("beach", format="ndjson") == ["beach.jpg"])
    check(len(q("")) == len(FILES))


@test("/list?q=: bad input is a 400 with the reason")
def _():
    for text, reason in [("date:2021-13", "date:2021-13"),
                         ("foo:bar", "unknown filter foo:"),
                         ("between:2022..2021", "empty"),
                         ("type:audio", "photo or video"),
                         ('"open', "not closed"),
                         ("x" * 2000, "longer than")]:
        st, _, data = s.request(
            "GET", "/list?" + urllib.parse.urlencode({"q": text}))
        check(st == 400, (text, st))
        err = json.loads(data).get("error", "")
        check(reason in err, (text, err))
        st, _, _ = s.request(
            "HEAD", "/list?" + urllib.parse.urlencode({"q": text}))
        check(st == 400, ("HEAD", text, st))
    st, _, _ = s.request("HEAD", "/list?q=helsinki")
    check(st == 200, st)


@test("ETags: one per query, 304 for the same")
def _():
    st1, h1, _ = s.request("GET", "/list?q=helsinki")
    st2, h2, _ = s.request("GET", "/list?q=arezzo")
    st3, h3, _ = s.request("GET", "/list")
    check(st1 == st2 == st3 == 200)
    check(len({h1["etag"], h2["etag"], h3["etag"]}) == 3, (h1, h2, h3))
    st, _, _ = s.request("GET", "/list?q=helsinki", None,
                         {"If-None-Match": h1["etag"]})
    check(st == 304, st)


@test("/api/timeline: the months, newest first, each with what /list gives for it; filters; 304; 400")
def _():
    st, h, j = s.json("GET", "/api/timeline")
    check(st == 200, (st, j))
    want = ["2021-08", "2021-07", "2021-06", "2020-02", "2019-01", "2018-03",
            "2008-10"]
    check([m["month"] for m in j["months"]] == want, j)
    check(all(m["count"] == 1 for m in j["months"]) and j["total"] == 7, j)
    # Each month is what /list gives from its first to its last day.
    for m in j["months"]:
        y, mo = map(int, m["month"].split("-"))
        last = calendar.monthrange(y, mo)[1]
        got = names("/list?format=ndjson&from=%s-01&to=%s-%02d" %
                    (m["month"], m["month"], last))
        check(len(got) == m["count"], (m, got))
    st, _, j = s.json("GET", "/api/timeline?q=" + urllib.parse.quote("camera:canon"))
    check(st == 200 and [m["month"] for m in j["months"]] == ["2021-07", "2020-02"]
          and j["total"] == 2, j)
    st, _, j = s.json("GET", "/api/timeline?from=2019-01-01&to=2021-06-30")
    check([m["month"] for m in j["months"]] == ["2021-06", "2020-02", "2019-01"], j)
    st, _, _ = s.request("GET", "/api/timeline", None, {"If-None-Match": h["etag"]})
    check(st == 304, st)
    for bad in ("?q=date%3Axx", "?from=2021-13-01"):
        st, _, j = s.json("GET", "/api/timeline" + bad)
        check(st == 400 and j["error"], (bad, st, j))


@test("/api/timeline of the whole library, counted by the /list cache's render, is what the walk counts")
def _():
    # A date range takes the walk through the catalog, the whole library
    # the counts the list cache made as it rendered /list.
    st, _, walked = s.json("GET", "/api/timeline?from=1900-01-01&to=9999-12-31")
    check(st == 200 and walked["total"] == 7, (st, walked))
    check(s.wait_list_cache(), "the /list cache was never made")
    st, _, cached = s.json("GET", "/api/timeline")
    check(st == 200 and cached == walked, (cached, walked))


@test("/api/timeline at local month edges (Europe/Berlin: one UTC day holds two local months), DST included, before and after the /list cache")
def _():
    edges = ["2019:12:31 23:30:00", "2020:01:01 00:30:00", "2020:01:31 23:59:59",
             "2020:02:01 00:00:00", "2020:03:29 02:30:00", "2020:03:31 23:00:00",
             "2020:10:25 02:30:00", "2020:10:31 23:30:00", "2020:11:01 00:15:00",
             "1969:12:31 23:59:59", "1970:01:01 00:30:00"]
    r = new_root("timeline-edges")
    for i, d in enumerate(edges):
        open(os.path.join(r, "e%02d.jpg" % i), "wb").write(jpeg_bytes(7000 + i, 16, 12, (d,)))
    # A second path of the first: counted once, by its primary path.
    shutil.copy(os.path.join(r, "e00.jpg"), os.path.join(r, "z-copy.jpg"))
    t = Server(r, "--watch", "off", tz="Europe/Berlin")
    try:
        t.wait_idle()
        want = {"2019-12": 1, "2020-01": 2, "2020-02": 1, "2020-03": 2,
                "2020-10": 2, "2020-11": 1, "1969-12": 1, "1970-01": 1}
        st, _, whole = t.json("GET", "/api/timeline")
        check(st == 200 and {m["month"]: m["count"] for m in whole["months"]} == want
              and whole["total"] == 11, (st, whole))
        st, _, walked = t.json("GET", "/api/timeline?from=1900-01-01&to=9999-12-31")
        check(st == 200 and walked == whole, (walked, whole))
        check(t.wait_list_cache(), "the /list cache was never made")
        st, _, cached = t.json("GET", "/api/timeline")
        check(st == 200 and cached == whole, (cached, whole))
    finally:
        check(t.stop() == 0)


@test("/api/items/<sha>: the item's /list NDJSON object; HEAD; 404 unknown or trashed; 400 malformed")
def _():
    st, h, data = s.request("GET", "/list?format=ndjson")
    rows = {e["sha256"]: e for e in
            (json.loads(x) for x in data.decode().splitlines() if x)}
    sha_ = SHA["trips/IMG_20210603.jpg"]
    st, h, j = s.json("GET", "/api/items/" + sha_)
    check(st == 200 and "application/json" in h["content-type"], (st, h))
    check(j == rows[sha_], (j, rows[sha_]))
    check(j["city"] == "Helsinki" and j["sha256"] == sha_, j)
    st, h, data = s.request("HEAD", "/api/items/" + sha_)
    check(st == 200 and not data and int(h["content-length"]) > 100, (st, h))
    st, _, j = s.json("GET", "/api/items/" + sha_.upper())
    check(st == 200 and j["sha256"] == sha_, (st, j))
    st, _, j = s.json("GET", "/api/items/" + "0" * 64)
    check(st == 404 and j["error"], (st, j))
    st, _, _ = s.request("HEAD", "/api/items/" + "0" * 64)
    check(st == 404, st)
    for bad in ("nothex", "0" * 63, "g" * 64):
        st, _, j = s.json("GET", "/api/items/" + bad)
        check(st == 400 and "malformed" in j["error"], (bad, st, j))
    st, _, _ = s.request("POST", "/api/items/" + sha_)
    check(st == 405, st)
    # In the trash it is not an item; back from it, it is again.
    sha_ = SHA["beach.jpg"]
    st, _, _ = s.request("DELETE", "/image/" + sha_)
    check(st == 200, st)
    try:
        st, _, j = s.json("GET", "/api/items/" + sha_)
        check(st == 404, (st, j))
    finally:
        st, _, _ = s.request("POST", "/api/trash/" + sha_ + "/restore")
        check(st == 200, st)
    st, _, j = s.json("GET", "/api/items/" + sha_)
    check(st == 200 and j["file_path"] == "beach.jpg", (st, j))


@test("/api/places: countries, cities, counts, covers and the credit")
def _():
    st, h, j = s.json("GET", "/api/places")
    check(st == 200, st)
    check("GeoNames" in j["credit"] and "CC BY 4.0" in j["credit"], j)
    got = {c["country_code"]: c for c in j["countries"]}
    check(set(got) == {"AU", "DE", "FI", "IT", "SE"}, got.keys())
    fi = got["FI"]
    check(fi["country"] == "Finland" and fi["count"] == 1, fi)
    check(fi["cities"][0]["city"] == "Helsinki" and
          fi["cities"][0]["cover"] == SHA["trips/IMG_20210603.jpg"], fi)
    check(abs(fi["cities"][0]["latitude"] - 60.17) < 0.05, fi)
    st, _, _ = s.request("GET", "/api/places", None,
                         {"If-None-Match": h["etag"]})
    check(st == 304, st)


@test("a new photo in a new place shows in /api/places and the search")
def _():
    data = jpeg_bytes(7, 32, 24, ("2022:05:05 10:00:00", "Google", "Pixel 7",
                                  35.6762, 139.6503))
    st, _, _ = s.upload("tokyo.jpg", data, "tokyo.jpg")
    check(st == 201, st)
    got = q("tokyo 2022")
    check([p.rsplit("/", 1)[-1] for p in got] == ["tokyo.jpg"], got)
    st, _, j = s.json("GET", "/api/places")
    check("JP" in {c["country_code"] for c in j["countries"]}, j)


@test("corpus: DSCN0010 is in Arezzo, the Nokia 8.3's photo in Helsinki")
def _():
    corpus = os.environ.get("MI_TEST_CORPUS")
    if not corpus:
        raise Skip("MI_TEST_CORPUS not set")
    want = {"DSCN0010.jpg": ("Arezzo", "IT"),
            "HMD_Nokia_8.3_5G.jpg": ("Helsinki", "FI")}
    root = new_root("corpus-places")
    found = 0
    for d, _, files in os.walk(os.path.join(corpus, "jpg")):
        for n in files:
            if n in want:
                shutil.copy(os.path.join(d, n), os.path.join(root, n))
                found += 1
    if not found:
        raise Skip("the corpus has neither DSCN0010.jpg nor HMD_Nokia_8.3_5G.jpg")
    c = Server(root, "--watch", "off")
    try:
        c.wait_idle()
        for e in c.listing().values():
            check((e.get("city"), e.get("country_code")) == want[e["filename"]], e)
        st, _, j = c.json("GET", "/api/places")
        check(st == 200 and len(j["countries"]) == found, j)
    finally:
        stopped_cleanly(c)


@test("the server stops cleanly")
def _():
    stopped_cleanly(s)


sys.exit(finish(s))
