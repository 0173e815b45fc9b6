"""Near-duplicates over HTTP: GET /api/similar (every group) and
GET /api/similar/<sha> (the copies of one content), against a real
media-server on 127.0.0.1.  The photos and their copies (smaller, lower
quality, cropped) are made with ffmpeg; the precision and recall of the
hash itself are measured by tests/test-similar.c.

    python3 test_similar.py MEDIA_SERVER FIXTURE_TOOL
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish, give_up  # noqa: E402

if not shutil.which("ffmpeg"):
    give_up("ffmpeg is needed to make the photos")

servers = []


def ffmpeg(src, out, *filters_and_args):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", src, "-frames:v", "1", *filters_and_args, out],
                   check=True)


root = new_root("similar")
os.makedirs(os.path.join(root, "a"))
os.makedirs(os.path.join(root, "b"))
# Two photos and their copies; a third photo alone.
A = "mandelbrot=s=1200x900:start_scale=2.5"
B = "testsrc2=s=1200x900"
C = "gradients=s=1200x900:seed=7:nb_colors=4"
ffmpeg(A, os.path.join(root, "a", "original.jpg"), "-q:v", "2")
ffmpeg(A, os.path.join(root, "a", "small.jpg"), "-vf", "scale=600:450",
       "-q:v", "6")
ffmpeg(A, os.path.join(root, "a", "low.jpg"), "-q:v", "20")
ffmpeg(A, os.path.join(root, "a", "crop.jpg"), "-vf",
       "crop=1164:873:18:13", "-q:v", "4")
ffmpeg(B, os.path.join(root, "b", "original.png"))
ffmpeg(B, os.path.join(root, "b", "copy.jpg"), "-vf", "scale=800:600",
       "-q:v", "5")
ffmpeg(C, os.path.join(root, "alone.jpg"), "-q:v", "3")

s = Server(root)
servers.append(s)
s.wait_idle()
listing = s.listing()
by_path = {v["file_path"]: k for k, v in listing.items()}


@test("every group: the copies of each photo, the largest first and marked")
def _():
    st, h, j = s.json("GET", "/api/similar")
    check(st == 200, (st, j))
    check(h.get("content-type", "").startswith("application/json"), h)
    check(j["count"] == 2 and len(j["groups"]) == 2, j)
    check(j["max_distance"] >= 1, j)
    groups = {frozenset(it["file_path"] for it in g["items"]): g
              for g in j["groups"]}
    ga = groups.get(frozenset({"a/original.jpg", "a/small.jpg",
                               "a/low.jpg", "a/crop.jpg"}))
    gb = groups.get(frozenset({"b/original.png", "b/copy.jpg"}))
    check(ga and gb, sorted(groups))
    for g, orig in ((ga, "a/original.jpg"), (gb, "b/original.png")):
        first = g["items"][0]
        check(first["file_path"] == orig, g)
        check(first["original"] is True and first["distance"] == 0, first)
        check(g["original"] == by_path[orig], g)
        check(all(not it["original"] for it in g["items"][1:]), g)
        for it in g["items"]:
            # The /list entry, plus sha256 and distance.
            want = dict(listing[it["sha256"]])
            for k, v in want.items():
                check(it.get(k) == v, (k, it.get(k), v))
            check(0 <= it["distance"] <= j["max_distance"] or
                  it is not first, it)
    # Among pixels alike, more bytes wins: the PNG over its copy.
    check(gb["items"][0]["size"] > gb["items"][1]["size"], gb)


@test("one content: its copies, the nearest first, with distance; the original named")
def _():
    sha = by_path["a/small.jpg"]
    st, _, j = s.json("GET", "/api/similar/" + sha.upper())
    check(st == 200, (st, j))
    check(j["sha256"] == sha, j)
    paths = [it["file_path"] for it in j["items"]]
    check(sorted(paths) == ["a/crop.jpg", "a/low.jpg", "a/original.jpg"], j)
    ds = [it["distance"] for it in j["items"]]
    check(ds == sorted(ds) and all(0 <= d <= j["max_distance"] for d in ds), j)
    check(j["original"] == by_path["a/original.jpg"], j)
    check([it["original"] for it in j["items"]] ==
          [p == "a/original.jpg" for p in paths], j)
    # A photo with no copy: none, and it is its own original.
    alone = by_path["alone.jpg"]
    st, _, j = s.json("GET", "/api/similar/" + alone)
    check(st == 200 and j["items"] == [] and j["original"] == alone, j)


@test("?distance=: 1..16; a narrower one finds fewer")
def _():
    sha = by_path["a/original.jpg"]
    st, _, wide = s.json("GET", "/api/similar/" + sha + "?distance=16")
    check(st == 200 and wide["max_distance"] == 16, wide)
    st, _, narrow = s.json("GET", "/api/similar/" + sha + "?distance=1")
    check(st == 200 and narrow["max_distance"] == 1, narrow)
    check(len(narrow["items"]) <= len(wide["items"]), (narrow, wide))
    for bad in ("0", "17", "abc", "-1", "1.5", "999"):
        st, _, j = s.json("GET", "/api/similar?distance=" + bad)
        check(st == 400 and "distance" in j["error"], (bad, st, j))


@test("bad and unknown hashes; a trashed photo leaves its group")
def _():
    st, _, j = s.json("GET", "/api/similar/xyz")
    check(st == 400 and "hash" in j["error"], (st, j))
    st, _, j = s.json("GET", "/api/similar/" + "0" * 64)
    check(st == 404, (st, j))
    st, _, _ = s.json("POST", "/api/similar")
    check(st == 405, st)
    copy = by_path["b/copy.jpg"]
    st, _, _ = s.json("DELETE", "/image/" + copy)
    check(st == 200, st)
    st, _, j = s.json("GET", "/api/similar")
    check(st == 200 and j["count"] == 1, j)
    check(all(it["sha256"] != copy for g in j["groups"] for it in g["items"]),
          j)
    st, _, j = s.json("GET", "/api/similar/" + copy)
    check(st == 404, (st, j))


@test("the server stops cleanly")
def _():
    stopped_cleanly(s)


sys.exit(finish(*servers))
