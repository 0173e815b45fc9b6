#!/usr/bin/env python3
"""HTTP tests of media-server: a real server process on 127.0.0.1.

    test_server.py MEDIA_SERVER [FIXTURE_TOOL]

Prints TAP.  Python 3 standard library only.  Each group of tests starts
its own server on a fresh storage folder and an ephemeral port (--port 0;
the server prints the port it got).
"""
import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish  # noqa: E402

# ---------------------------------------------------------------------------
# Tests

@test("--help and --version exit 0")
def _():
    rc, out, _ = run_cli("--help")
    check(rc == 0 and "--storage_dir" in out, out)
    rc, out, _ = run_cli("--version")
    check(rc == 0 and "media-server" in out, out)


@test("missing storage folder: one line, exit 2, nothing listening")
def _():
    rc, _, err = run_cli("--storage_dir", os.path.join(work, "nope"),
                         "--port", "0")
    check(rc == 2, f"rc {rc}")
    check(len(err.strip().splitlines()) == 1, err)
    f = os.path.join(work, "afile")
    open(f, "w").close()
    rc, _, err = run_cli("--storage_dir=" + f, "--port=0")
    check(rc == 2 and len(err.strip().splitlines()) == 1, err)


@test("bad flags: exit 2")
def _():
    for args in (["--storage_dir"], ["--bogus", "1"], [],
                 ["--storage_dir", work, "--port", "99999"],
                 ["--storage_dir", work, "--port", "x"]):
        rc, _, err = run_cli(*args)
        check(rc == 2, f"{args}: rc {rc} {err}")


# A storage folder with images in subfolders, a video, a duplicate, things
# that are not media, and a non-UTF-8 file name.
root = new_root("main")
files = {
    "a/one.jpg": jpeg_bytes(1),
    "a/b/two.png": png_bytes(16, 12, 2),
    "three.PNG": png_bytes(8, 8, 3),
    "clip.mp4": mp4_bytes(4),
    "dup/one-again.jpg": jpeg_bytes(1),
    "notes.txt": b"not media",
}
for rel, data in files.items():
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
bad_name = os.path.join(root.encode(), b"caf\xe9.png")
with open(bad_name, "wb") as f:
    f.write(png_bytes(8, 8, 5))
os.makedirs(os.path.join(root, ".thumbnails"), exist_ok=True)
with open(os.path.join(root, ".thumbnails", "junk.png"), "wb") as f:
    f.write(png_bytes(8, 8, 6))

srv = Server(root)
status0 = None


@test("GET /status: shape, reaches idle after the first scan")
def _():
    global status0
    st, h, j = srv.json("GET", "/status")
    check(st == 200 and h["content-type"] == "application/json")
    for k in ("state", "files_seen", "media", "last_scan_started",
              "last_scan_finished", "last_scan_stats"):
        check(k in j, f"missing {k}: {j}")
    check(j["state"] in ("scanning", "idle"))
    status0 = srv.wait_idle()
    check(status0["media"] == 5, status0)
    check(status0["files_seen"] == 6, status0)
    check(isinstance(status0["last_scan_stats"], dict))


@test("GET /list: one entry per content, the DESIGN.md shape")
def _():
    lst = srv.listing()
    want = {sha(files["a/one.jpg"]), sha(files["a/b/two.png"]),
            sha(files["three.PNG"]), sha(files["clip.mp4"]),
            sha(png_bytes(8, 8, 5))}
    check(set(lst) == want, f"{sorted(lst)} != {sorted(want)}")
    for k, e in lst.items():
        check(HEX64.match(k))
        for f in ("filename", "last_modified", "file_path",
                  "original_creation_date", "size", "mime_type"):
            check(f in e, f"{k} lacks {f}: {e}")
        check(isinstance(e["last_modified"], (int, float)))
        check(isinstance(e["original_creation_date"], (int, float)))
        check(not e["file_path"].startswith("/"), e["file_path"])
        check(not e["file_path"].startswith(".thumbnails"))
        check(os.path.basename(e["file_path"]) == e["filename"])
    two = lst[sha(files["a/b/two.png"])]
    check(two["file_path"] == "a/b/two.png", two)
    check(two["size"] == len(files["a/b/two.png"]))
    check(two["mime_type"] == "image/png", two)
    check(two.get("width") == 16 and two.get("height") == 12, two)
    check(abs(two["last_modified"] -
              os.stat(os.path.join(root, "a/b/two.png")).st_mtime) < 1e-3)
    check(lst[sha(files["clip.mp4"])]["mime_type"] == "video/mp4")
    check(lst[sha(files["a/one.jpg"])]["file_path"] in
          ("a/one.jpg", "dup/one-again.jpg"))


@test("GET /list: non-UTF-8 names become U+FFFD, the body stays UTF-8")
def _():
    st, _, data = srv.request("GET", "/list")
    data.decode("utf-8")  # raises on invalid UTF-8
    e = json.loads(data)[sha(png_bytes(8, 8, 5))]
    check(e["filename"] == "caf\ufffd.png", e)


@test("GET /list: ETag, If-None-Match -> 304, HEAD")
def _():
    st, h, _ = srv.request("GET", "/list")
    tag = h.get("etag")
    check(st == 200 and tag, h)
    st, h2, body = srv.request("GET", "/list", headers={"If-None-Match": tag})
    check(st == 304 and body == b"" and h2.get("etag") == tag, (st, h2))
    st, _, _ = srv.request("GET", "/list",
                           headers={"If-None-Match": '"other"'})
    check(st == 200)
    st, h3, body = srv.request("HEAD", "/list")
    check(st == 200 and body == b"" and h3.get("etag") == tag)


@test("GET /image/<sha>: byte-identical, Content-Type, ETag, caching")
def _():
    for rel in ("a/one.jpg", "a/b/two.png", "clip.mp4"):
        data = files[rel]
        st, h, body = srv.request("GET", "/image/" + sha(data))
        check(st == 200 and body == data, f"{rel}: {st}")
        check(h["etag"] == '"%s"' % sha(data), h)
        check(h["cache-control"] == "public, max-age=31536000, immutable")
    _, h, _ = srv.request("GET", "/image/" + sha(files["a/one.jpg"]))
    check(h["content-type"] == "image/jpeg", h)
    _, h, _ = srv.request("GET", "/image/" + sha(files["clip.mp4"]))
    check(h["content-type"] == "video/mp4", h)


@test("GET /image: upper-case hash, /image/sha256/<sha> alias")
def _():
    data = files["a/b/two.png"]
    st, _, body = srv.request("GET", "/image/" + sha(data).upper())
    check(st == 200 and body == data)
    st, _, body = srv.request("GET", "/image/sha256/" + sha(data))
    check(st == 200 and body == data)


@test("HEAD /image: headers, no body")
def _():
    data = files["clip.mp4"]
    st, h, body = srv.request("HEAD", "/image/" + sha(data))
    check(st == 200 and body == b"" and int(h["content-length"]) == len(data))
    check(h.get("accept-ranges") == "bytes")


@test("Range on /image: 206 slices, suffix, open end, 416")
def _():
    data = files["clip.mp4"]
    path = "/image/" + sha(data)
    for rng, lo, hi in (("bytes=10-19", 10, 19), ("bytes=-5", len(data) - 5,
                        len(data) - 1), ("bytes=100-", 100, len(data) - 1),
                        ("bytes=0-999999", 0, len(data) - 1)):
        st, h, body = srv.request("GET", path, headers={"Range": rng})
        check(st == 206, f"{rng}: {st}")
        check(body == data[lo:hi + 1], rng)
        check(h["content-range"] == f"bytes {lo}-{hi}/{len(data)}", h)
    st, h, body = srv.request("GET", path,
                              headers={"Range": f"bytes={len(data)}-"})
    check(st == 416 and h["content-range"] == f"bytes */{len(data)}", st)
    check("error" in json.loads(body))
    st, _, body = srv.request("GET", path, headers={"Range": "bytes=5-1"})
    check(st == 200 and body == data)
    st, _, body = srv.request("HEAD", path, headers={"Range": "bytes=0-9"})
    check(st == 206 and body == b"")


@test("If-None-Match on /image -> 304")
def _():
    data = files["a/one.jpg"]
    st, h, body = srv.request("GET", "/image/" + sha(data),
                              headers={"If-None-Match": '"%s"' % sha(data)})
    check(st == 304 and body == b"", st)


@test("GET /image and /thumbnail: malformed hash 400, unknown 404, JSON")
def _():
    for bad in ("abc", "z" * 64, "a" * 63, "a" * 65, "%00" + "a" * 63):
        for route in ("/image/", "/thumbnail/", "/image/sha256/"):
            st, h, j = srv.json("GET", route + bad)
            check(st == 400 and "error" in j, f"{route}{bad}: {st}")
            check(h["content-type"] == "application/json")
    for route in ("/image/", "/thumbnail/"):
        st, _, j = srv.json("GET", route + "0" * 64)
        check(st == 404 and "error" in j, f"{route}: {st}")


thumbs_work = None


@test("GET /thumbnail: 256x256 PNG for an image, 404 for a video")
def _():
    global thumbs_work
    st, _, _ = srv.json("GET", "/thumbnail/" + sha(files["clip.mp4"]))
    check(st == 404)
    st, h, body = srv.request("GET", "/thumbnail/" + sha(files["a/b/two.png"]))
    if st == 404 and srv.listing()[sha(files["a/b/two.png"])].get(
            "thumbnail_file") is None:
        thumbs_work = False
        raise Skip("the library makes no thumbnails yet (lib/thumb.c)")
    thumbs_work = True
    check(st == 200 and h["content-type"] == "image/png", st)
    check(body[:8] == b"\x89PNG\r\n\x1a\n")
    check(struct.unpack(">II", body[16:24]) == (256, 256))
    st, _, body2 = srv.request("HEAD", "/thumbnail/" +
                               sha(files["a/b/two.png"]))
    check(st == 200 and body2 == b"")


def thumb_file(name, suffix=".png"):
    """The hash of files[name] and its thumbnail's path; Skip without
    thumbnails."""
    if not thumbs_work:
        raise Skip("the library makes no thumbnails yet (lib/thumb.c)")
    h = sha(files[name])
    return h, os.path.join(root, ".thumbnails", h + suffix)


@test("GET /thumbnail: made on demand when missing on disk")
def _():
    h, p = thumb_file("three.PNG")
    if os.path.exists(p):
        os.unlink(p)
    st, _, body = srv.request("GET", "/thumbnail/" + h)
    check(st == 200 and body[:4] == b"\x89PNG", st)
    check(os.path.exists(p))


@test("GET /thumbnail: served from memory, but always what the file on disk holds (rewritten in place, replaced, removed)")
def _():
    h, p = thumb_file("three.PNG")
    first = [srv.request("GET", "/thumbnail/" + h)[2] for _ in range(3)]
    check(first[0][:4] == b"\x89PNG" and first[0] == first[1] == first[2])
    # The head kept beside the bytes is for one kind of request only.
    for conn_hdr in ("close", "keep-alive", "close"):
        st, hd, body = srv.request("GET", "/thumbnail/" + h, headers={"Connection": conn_hdr})
        check(st == 200 and body == first[0] and hd.get("connection", "").lower() == conn_hdr,
              (conn_hdr, st, hd.get("connection")))
    with open(p, "r+b") as f:           # the same size, the same inode
        f.seek(len(first[0]) - 4)
        f.write(b"XXXX")
    st, _, body = srv.request("GET", "/thumbnail/" + h)
    check(st == 200 and body == first[0][:-4] + b"XXXX", "rewritten in place: old bytes served")
    with open(p + ".new", "wb") as f:
        f.write(b"\x89PNG replaced")
    os.rename(p + ".new", p)
    st, _, body = srv.request("GET", "/thumbnail/" + h)
    check(st == 200 and body == b"\x89PNG replaced", "replaced: old bytes served")
    os.unlink(p)
    st, _, body = srv.request("GET", "/thumbnail/" + h)
    check(st == 200 and body == first[0], "removed: not made again")
    st, hd, body = srv.request("HEAD", "/thumbnail/" + h)
    check(st == 200 and body == b"" and int(hd["content-length"]) == len(first[0]))
    st, _, _ = srv.request("GET", "/thumbnail/" + h,
                           headers={"If-None-Match": f'"{h}.png"'})
    check(st == 304, st)


@test("GET /thumbnail?size=512: a JPEG as displayed, made by the scan and again on demand, cached by its own ETag; other sizes 400")
def _():
    h, p = thumb_file("a/one.jpg", "-512.jpg")
    check(os.path.exists(p), "the scan made no 512 px thumbnail")
    st, hd, body = srv.request("GET", f"/thumbnail/{h}?size=512")
    check(st == 200 and hd["content-type"] == "image/jpeg", (st, hd))
    check(jpeg_size(body) == (64, 48), jpeg_size(body))   # never enlarged
    etag = hd.get("etag")
    st, hd2, _ = srv.request("GET", f"/thumbnail/{h}")
    check(st == 200 and hd2["content-type"] == "image/png" and
          hd2.get("etag") != etag, (st, hd2, etag))
    st, _, _ = srv.request("GET", f"/thumbnail/{h}?size=512",
                           headers={"If-None-Match": etag})
    check(st == 304, f"revalidation: {st}")
    os.unlink(p)
    st, hd, body2 = srv.request("GET", f"/thumbnail/{h}?size=512")
    check(st == 200 and body2 == body, st)
    check(os.path.exists(p), "not kept on disk")
    st, _, body = srv.request("GET", f"/thumbnail/{sha(files['a/b/two.png'])}?size=512")
    check(st == 200 and jpeg_size(body) == (16, 12), st)
    st, _, body = srv.request("HEAD", f"/thumbnail/{h}?size=512")
    check(st == 200 and body == b"", st)
    st, _, body = srv.request("GET", f"/thumbnail/{h}?size=256")
    check(st == 200 and body[:4] == b"\x89PNG", st)
    st, _, body = srv.request("GET", f"/thumbnail/{h}?size=")
    check(st == 200 and body[:4] == b"\x89PNG", f"size=: {st}")
    for q in ("100", "1024", "abc", "512x", "-1"):
        st, _, body = srv.json("GET", f"/thumbnail/{h}?size={q}")
        check(st == 400 and "512" in body.get("error", ""), (q, st, body))
    st, _, _ = srv.json("GET", f"/thumbnail/{'0' * 64}?size=512")
    check(st == 404, st)
    st, _, _ = srv.json("GET", f"/thumbnail/{sha(files['clip.mp4'])}?size=512")
    check(st == 404, st)


@test("unknown routes 404, wrong methods 405 with Allow, all JSON")
def _():
    for path in ("/lists", "/list/", "/image", "/thumbnail",
                 "/thumbnail/a/b", "/image/a/b/c", "/static/x"):
        st, h, j = srv.json("GET", path)
        check(st == 404 and "error" in j, f"{path}: {st}")
    for method, path, allow in (("POST", "/list", "GET, HEAD"),
                                ("DELETE", "/status", "GET, HEAD"),
                                ("PUT", "/thumbnail/" + "0" * 64, "GET, HEAD"),
                                ("POST", "/image/x.jpg", "GET, HEAD, PUT, DELETE"),
                                ("PUT", "/image/sha256/" + "0" * 64,
                                 "GET, HEAD")):
        st, h, j = srv.json(method, path, b"")
        check(st == 405 and h.get("allow") == allow and "error" in j,
              f"{method} {path}: {st} {h}")


@test("keep-alive: several requests on one connection")
def _():
    c = srv.conn()
    for _ in range(5):
        st, _, _ = srv.request("GET", "/status", conn=c)
        check(st == 200)
        st, _, _ = srv.request("GET", "/image/" + sha(files["three.PNG"]),
                               conn=c)
        check(st == 200)
    c.close()


@test("a malformed request gets a 4xx and the server lives on")
def _():
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GARBAGE\r\n\r\n")
    data = s.recv(4096)
    s.close()
    check(data == b"" or re.match(rb"HTTP/1\.[01] 4\d\d", data), data)
    st, _, _ = srv.request("GET", "/status")
    check(st == 200)


@test("a file gone from disk: GET /image 404")
def _():
    p = os.path.join(root, "three.PNG")
    h = sha(files["three.PNG"])
    os.unlink(p)
    st, _, j = srv.json("GET", "/image/" + h)
    check(st == 404 and "error" in j, st)


# ---- uploads --------------------------------------------------------------

today = time.strftime("%Y%m%d")
new_jpeg = jpeg_bytes(100)


@test("PUT /image/<name>: 201, the JSON shape, stored under uploads/DATE/")
def _():
    st, h, j = srv.upload("holiday.jpg", new_jpeg, "IMG_1.jpg")
    check(st == 201, (st, j))
    check(j["message"] == "Image uploaded successfully.")
    check(j["sha256"] == sha(new_jpeg))
    check(j["filename"] == "holiday.jpg", j)
    check(j["file_path"] == f"uploads/{today}/holiday.jpg", j)
    # The origin's README: the bare file name, not a path.
    check(j.get("thumbnail_file") in (sha(new_jpeg) + ".png", None), j)
    if thumbs_work:
        check(j["thumbnail_file"] == sha(new_jpeg) + ".png", j)
        check(srv.listing()[sha(new_jpeg)]["thumbnail_file"] ==
              sha(new_jpeg) + ".png")
    with open(os.path.join(root, j["file_path"]), "rb") as f:
        check(f.read() == new_jpeg)
    st, _, body = srv.request("GET", "/image/" + sha(new_jpeg))
    check(st == 200 and body == new_jpeg)
    check(sha(new_jpeg) in srv.listing())


@test("PUT of known bytes: 200, nothing written")
def _():
    before = tree(root)
    st, _, j = srv.upload("other-name.jpg", new_jpeg)
    check(st == 200, (st, j))
    check(j["message"] == "Image content already exists.")
    check(j["sha256"] == sha(new_jpeg))
    check(j["file_path"] == f"uploads/{today}/holiday.jpg", j)
    check("filename" in j)
    check(tree(root) == before)


@test("PUT of new bytes under a taken name: _1, _2 before the extension")
def _():
    names = []
    for seed in (101, 102):
        st, _, j = srv.upload("holiday.jpg", jpeg_bytes(seed))
        check(st == 201, (st, j))
        names.append(j["file_path"])
    check(names == [f"uploads/{today}/holiday_1.jpg",
                    f"uploads/{today}/holiday_2.jpg"], names)


@test("PUT: a name without extension takes the part's")
def _():
    data = png_bytes(9, 9, 103)
    st, _, j = srv.upload("noext", data, "phone.PNG")
    check(st == 201, (st, j))
    check(j["filename"].lower().endswith(".png"), j)


@test("PUT: 20 concurrent uploads of the same bytes store one file")
def _():
    data = jpeg_bytes(200)
    before = uploads(root)
    results = []

    def one(i):
        try:
            results.append(srv.upload(f"same{i}.jpg", data)[:3:2])
        except Exception as e:
            results.append((0, str(e)))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    [t.start() for t in ts]
    [t.join(60) for t in ts]
    codes = sorted(r[0] for r in results)
    check(codes == [200] * 19 + [201], codes)
    added = uploads(root) - before
    check(len(added) == 1, added)
    with open(os.path.join(root, added.pop()), "rb") as f:
        check(f.read() == data)


@test("PUT: 20 concurrent uploads of different bytes under one name")
def _():
    datas = [jpeg_bytes(300 + i) for i in range(20)]
    before = uploads(root)
    results = []

    def one(i):
        try:
            results.append(srv.upload("burst.jpg", datas[i]))
        except Exception as e:
            results.append((0, {}, str(e)))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    [t.start() for t in ts]
    [t.join(60) for t in ts]
    check(sorted(r[0] for r in results) == [201] * 20,
          [r[0] for r in results])
    added = uploads(root) - before
    check(len(added) == 20, added)
    stored = set()
    for p in added:
        with open(os.path.join(root, p), "rb") as f:
            stored.add(sha(f.read()))
    check(stored == {sha(d) for d in datas})


@test("PUT: type not allowed -> 400 with a reason, nothing kept")
def _():
    before = tree(root)
    for name, fname, data in (("notes.txt", "notes.txt", b"hello"),
                              ("fake.jpg", "fake.jpg", b"just text" * 20),
                              ("fake.png", "x.png", b"MZ" + b"\0" * 200),
                              ("real.txt", "real.txt", jpeg_bytes(400)),
                              ("noext", "noext", jpeg_bytes(401))):
        st, h, j = srv.upload(name, data, fname)
        check(st == 400 and j.get("error"), f"{name}: {st} {j}")
    check(tree(root) == before)
    check(tmp_files(root) == [])


@test("PUT: no file part, empty name, empty body -> 400")
def _():
    st, _, j = srv.upload("x.jpg", jpeg_bytes(402), field="other")
    check(st == 400 and "error" in j, (st, j))
    st, _, j = srv.upload("", jpeg_bytes(402))
    check(st == 400 and "error" in j, (st, j))
    body, ctype = multipart([])
    st, _, j = srv.json("PUT", "/image/x.jpg", body, {"Content-Type": ctype})
    check(st == 400 and "error" in j, (st, j))
    # A form sent with no file chosen: the part is there, its filename is
    # empty (browsers send filename=""), or it has none at all.
    before = uploads(root)
    for fname in ("", None):
        body, ctype = multipart([("file", fname, jpeg_bytes(403))])
        st, _, j = srv.json("PUT", "/image/x.jpg", body,
                            {"Content-Type": ctype})
        check(st == 400 and "no selected file" in j.get("error", ""),
              (fname, st, j))
    check(uploads(root) == before, uploads(root) - before)
    check(sha(jpeg_bytes(403)) not in srv.listing())
    check(tmp_files(root) == [], tmp_files(root))
    st, _, j = srv.json("PUT", "/image/x.jpg", b"",
                        {"Content-Type": "multipart/form-data; boundary=x"})
    check(st == 400 and "error" in j, (st, j))


@test("PUT with a wrong Content-Type -> 4xx quickly (url-encoded 'a=%')")
def _():
    for ctype, body in (("application/x-www-form-urlencoded", b"a=%"),
                        ("application/x-www-form-urlencoded",
                         b"a=b\0c&d=%"),
                        ("application/json", b'{"file": 1}'),
                        ("text/plain", b"x"),
                        ("multipart/form-data", b"--x--\r\n"),
                        (None, new_jpeg)):
        t0 = time.time()
        hdrs = {"Content-Type": ctype} if ctype else {}
        st, _, j = srv.json("PUT", "/image/x.jpg", body, hdrs)
        check(400 <= st < 500 and "error" in j, f"{ctype}: {st}")
        check(time.time() - t0 < 2, f"{ctype}: slow")
    st, _, _ = srv.request("GET", "/status")
    check(st == 200)


@test("PUT: malformed multipart bodies -> 400, nothing kept")
def _():
    before = tree(root)
    good, ctype = multipart([("file", "a.jpg", jpeg_bytes(403))])
    for body in (good[:-10], good.replace(b"--\r\n", b"\r\n"),
                 b"garbage" * 100, good.replace(b"Content-Disposition",
                                                b"Content-Dispo"),
                 good[:60] + b"\0" * 50 + good[60:]):
        st, _, j = srv.json("PUT", "/image/m.jpg", body,
                            {"Content-Type": ctype})
        check(400 <= st < 500 and "error" in j, f"{st} {j}")
    check(tree(root) == before)


@test("PUT: preamble, quoted boundary, other fields, Expect: 100-continue")
def _():
    data = jpeg_bytes(450)
    body, _ = multipart([("note", None, b"hello"), ("file", "p.jpg", data),
                         ("file", "second.jpg", jpeg_bytes(451))],
                        boundary="qq b")
    body = b"preamble text\r\n" + body
    st, _, j = srv.json("PUT", "/image/pre.jpg", body,
                        {"Content-Type": 'multipart/form-data; boundary="qq b"'})
    check(st == 201 and j["sha256"] == sha(data), (st, j))
    data = jpeg_bytes(452)
    body, ctype = multipart([("file", "e.jpg", data)])
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall((f"PUT /image/expect.jpg HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
               f"Expect: 100-continue\r\n\r\n").encode())
    interim = s.recv(4096)
    check(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
    s.sendall(body)
    resp = b""
    while b"}" not in resp:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    s.close()
    check(resp.startswith(b"HTTP/1.1 201"), resp[:100])


@test("PUT: 300 mutated multipart bodies: never 5xx, never slow")
def _():
    rnd = random.Random(7)
    good, ctype = multipart([("x", None, b"1"), ("file", "f.jpg",
                                                  b"\xff\xd8\xff" + b"z" * 300)])
    seen = set()
    for i in range(300):
        b = bytearray(good)
        for _ in range(rnd.randrange(1, 4)):
            op = rnd.randrange(4)
            at = rnd.randrange(len(b))
            if op == 0:
                del b[at:at + rnd.randrange(1, 40)]
            elif op == 1:
                b[at:at] = rnd.choice([b"\r\n", b"--", b"\0", b'"', b";",
                                       ctype.split("=")[1].encode()])
            elif op == 2:
                b[at] = rnd.randrange(256)
            else:
                b = b[:at]
        t0 = time.time()
        st, _, data = srv.request("PUT", "/image/mut%d.jpg" % i, bytes(b),
                                  {"Content-Type": ctype})
        check(st < 500 and time.time() - t0 < 2, f"{i}: {st}")
        seen.add(st)
    check(srv.request("GET", "/status")[0] == 200)
    check(tmp_files(root) == [])


@test("PUT cut off mid-body: 4xx JSON, nothing left behind")
def _():
    before = tree(root)
    data = jpeg_bytes(500) + os.urandom(200000)
    body, ctype = multipart([("file", "cut.jpg", data)])
    # A body shorter than its Content-Length, then a half-close.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall((f"PUT /image/cut.jpg HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
               f"\r\n").encode() + body[:len(body) // 2])
    s.shutdown(socket.SHUT_WR)
    resp = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    s.close()
    check(re.match(rb"HTTP/1\.1 4\d\d", resp), resp[:200])
    check(b'"error"' in resp)
    # A client that vanishes (RST) mid-body.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall((f"PUT /image/cut2.jpg HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
               f"\r\n").encode() + body[:len(body) // 3])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    time.sleep(0.3)
    check(srv.request("GET", "/status")[0] == 200)
    check(tree(root) == before, tree(root) - before)
    check(sha(data) not in srv.listing())
    check(tmp_files(root) == [], tmp_files(root))


@test("PUT: path traversal names never escape uploads/")
def _():
    outside_before = set(os.listdir(work))
    parent = os.path.dirname(root)
    tag = "mi-trav-%d" % os.getpid()
    names = [f"../{tag}.jpg", f"..%2F..%2F{tag}.jpg", f"%2Ftmp%2F{tag}.jpg",
             f"..%5C..%5C{tag}.jpg", f"%2E%2E%2F{tag}.jpg",
             f"{tag}%00.jpg", "a" * 1000 + ".jpg", "%C0%AE%C0%AE%2F" + tag +
             ".jpg", ".hidden.jpg", "..jpg", "%2E%2E", "x%0D%0AEvil:%201.jpg"]
    seed = 600
    for name in names:
        seed += 1
        st, _, j = srv.upload(name, jpeg_bytes(seed), "../../" + tag + ".jpg")
        check(st in (200, 201, 400, 404), f"{name}: {st}")
        if st in (200, 201):
            p = j["file_path"]
            check(p.startswith(f"uploads/{today}/"), p)
            check("/" not in p[len(f"uploads/{today}/"):], p)
            check(len(os.path.basename(p).encode()) <= 255, p)
            check(os.path.isfile(os.path.join(root, p)), p)
    # Raw paths http.client would not normalise.
    for raw in (f"/image//tmp/{tag}.jpg", f"/image/../{tag}.jpg",
                f"/image/./../../{tag}.jpg"):
        body, ctype = multipart([("file", "x.jpg", jpeg_bytes(seed + 1))])
        st, _, j = srv.json("PUT", raw, body, {"Content-Type": ctype})
        check(st in (201, 400, 404, 405), f"{raw}: {st}")
    check(not os.path.exists(f"/tmp/{tag}.jpg"))
    check(set(os.listdir(work)) == outside_before)
    check(not any(tag in f for f in os.listdir(parent)))
    for p in tree(root):
        check(p in files or p.startswith("uploads/") or
              p.startswith(".thumbnails/") or p.startswith("caf"), p)


@test("PUT: part file name traversal with a URL name lacking extension")
def _():
    st, _, j = srv.upload("plain", jpeg_bytes(700), "../../../etc/x.jpg")
    check(st == 201, (st, j))
    check(j["file_path"].startswith(f"uploads/{today}/plain"), j)


def raw_exchange(port, data, timeout=5):
    """Send raw bytes, read until the server closes or goes quiet."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)      # all the client will ever send
    except OSError:
        pass
    out = b""
    t0 = time.time()
    try:
        while time.time() - t0 < timeout:
            chunk = c.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and len(out) > 4096:
                break
    except socket.timeout:
        pass
    except OSError:
        pass
    c.close()
    return out, time.time() - t0


@test("hostile requests: no 5xx, no hang, nothing written outside uploads/")
def _():
    before = tree(root)
    big_header = b"X-Big: " + b"a" * 20000 + b"\r\n"
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(300))
    one = sha(files["a/one.jpg"])
    ranges = ",".join(f"{i}-{i}" for i in range(2000)).encode()
    corpus = [
        b"GET / HTTP/1.1\r\n" + big_header + b"\r\n",
        b"GET /status HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n",
        b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"GET /status HTTP/1.1 trailing junk\r\n\r\n",
        b"PUT /image/x.jpg HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked"
        b"\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"PUT /image/x.jpg HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked"
        b"\r\n\r\nffffffffffffffffff\r\nhello\r\n",
        b"PUT /image/x.jpg HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n"
        b"\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; "
        b"filename=\"x.jpg\"\r\n\r\n\xff\xd8\xff",          # a lie: closes early
        b"PUT /image/x.jpg HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"multipart/form-data; boundary=B\r\nContent-Length: 5\r\n\r\n"
        b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n",
        b"PUT /image/x.jpg HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"multipart/form-data; boundary=B\r\nContent-Length: -5\r\n\r\n",
        b"PUT /image/x.jpg HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"multipart/form-data; boundary=B\r\nContent-Length: 99999999999999"
        b"999999\r\n\r\n",
        b"GET /image/" + one.encode() + b" HTTP/1.1\r\nHost: x\r\nRange: "
        b"bytes=" + ranges + b"\r\n\r\n",
        b"GET /image/" + one.encode() + b" HTTP/1.1\r\nHost: x\r\nRange: "
        b"bytes=-0\r\n\r\n",
        b"GET /image/" + one.encode() + b" HTTP/1.1\r\nHost: x\r\nRange: "
        b"bytes=99999999999999999999-\r\n\r\n",
        b"GET /image/" + one.encode() + b" HTTP/1.1\r\nHost: x\r\nRange: "
        b"bytes=5-1\r\n\r\n",
        b"GET /static/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /thumbnail/..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x"
        b"\r\n\r\n",
        b"PUT /image/..%2f..%2fescape.jpg HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=B\r\n"
        b"Content-Length: 10\r\n\r\n0123456789",
    ]
    for i, req in enumerate(corpus):
        out, took = raw_exchange(srv.port, req)
        status = re.match(rb"HTTP/1\.[01] (\d\d\d)", out)
        code = int(status.group(1)) if status else None
        check(took < 5.0, f"request {i} took {took:.1f} s")
        check(code is None or code < 500, f"request {i}: {out[:200]!r}")
        check(b"root:" not in out, f"request {i} leaked /etc/passwd")
    st, _, _ = srv.request("GET", "/status")
    check(st == 200)
    new = tree(root) - before
    check(all(p.startswith("uploads" + os.sep) for p in new), new)
    check(tmp_files(root) == [], tmp_files(root))


@test("the server never answered 500 to the above")
def _():
    bad = [l for l in srv.log if re.search(r" 5\d\d \d+ [\d.]+ms$", l)]
    check(not bad, "\n".join(bad[:10]))


@test("access log: one line per request (method, path, status, bytes, time)")
def _():
    lines = [l for l in srv.log if re.match(
        r"^127\.0\.0\.1 (GET|PUT|HEAD|POST|DELETE) \S+ \d{3} \d+ [\d.]+ms$", l)]
    check(len(lines) > 50, len(lines))
    check(any(l.startswith("127.0.0.1 GET /list 200 ") for l in lines))


@test("SIGTERM: clean exit 0 (no leaks under ASan)")
def _():
    rc = srv.stop()
    check(rc == 0, f"rc {rc}\n" + "\n".join(srv.log[-30:]))
    check(any("shutting down" in l for l in srv.log))
    check(not sanitizer_reports(srv), sanitizer_reports(srv))


# ---- the cap on uploads -----------------------------------------------------

root2 = new_root("capped")
srv2 = Server(root2, "--max-upload-bytes", "100000")


@test("413: Content-Length over the cap, answered before the body")
def _():
    srv2.wait_idle()
    s = socket.create_connection(("127.0.0.1", srv2.port), timeout=10)
    s.sendall(b"PUT /image/big.jpg HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 10000000000\r\n\r\n")
    resp = s.recv(65536)
    s.close()
    check(resp.startswith(b"HTTP/1.1 413"), resp[:100])
    check(b'"error"' in resp)


@test("413: a file over the cap (Content-Length and chunked), nothing kept")
def _():
    data = jpeg_bytes(800) + os.urandom(300000)
    st, _, j = srv2.upload("big.jpg", data)
    check(st == 413 and "error" in j, (st, j))
    body, ctype = multipart([("file", "big.jpg", data)])
    st, j = put_chunked(srv2, "big2.jpg", body, ctype, piece=16384)
    check(st == 413 and "error" in j, (st, j))
    check(uploads(root2) == set(), uploads(root2))
    check(tmp_files(root2) == [])
    small = jpeg_bytes(801)
    st, _, j = srv2.upload("small.jpg", small)
    check(st == 201, (st, j))


@test("SIGINT: clean exit 0")
def _():
    srv2.proc.send_signal(signal.SIGINT)
    check(srv2.stop() == 0, "\n".join(srv2.log[-20:]))
    check(not sanitizer_reports(srv2), sanitizer_reports(srv2))


# ---- rescans ------------------------------------------------------------------

root3 = new_root("rescan")
with open(os.path.join(root3, "keep.png"), "wb") as f:
    f.write(png_bytes(8, 8, 900))
with open(os.path.join(root3, "change.png"), "wb") as f:
    f.write(png_bytes(8, 8, 901))
with open(os.path.join(root3, "gone.png"), "wb") as f:
    f.write(png_bytes(8, 8, 902))
# The watch off: these tests are of rescans alone.
srv3 = Server(root3, "--rescan_interval", "1", "--watch", "off")


@test("--rescan_interval: new, changed and deleted files follow")
def _():
    srv3.wait_idle()
    check(len(srv3.listing()) == 3)
    t0 = time.time()
    with open(os.path.join(root3, "new.png"), "wb") as f:
        f.write(png_bytes(8, 8, 903))
    with open(os.path.join(root3, "change.png"), "wb") as f:
        f.write(png_bytes(9, 9, 904))
    os.unlink(os.path.join(root3, "gone.png"))
    end = time.time() + 10
    want = {sha(png_bytes(8, 8, 900)), sha(png_bytes(8, 8, 903)),
            sha(png_bytes(9, 9, 904))}
    while time.time() < end:
        srv3.wait_idle(after=t0)
        if set(srv3.listing()) == want:
            break
        time.sleep(0.2)
    check(set(srv3.listing()) == want, srv3.listing().keys())
    st, _, _ = srv3.request("GET", "/image/" + sha(png_bytes(8, 8, 902)))
    check(st == 404)
    st, _, body = srv3.request("GET", "/image/" + sha(png_bytes(9, 9, 904)))
    check(st == 200 and body == png_bytes(9, 9, 904))


@test("rescan: the /list ETag changes with the content")
def _():
    _, h1, _ = srv3.request("GET", "/list")
    t0 = time.time()
    with open(os.path.join(root3, "later.png"), "wb") as f:
        f.write(png_bytes(8, 8, 905))
    srv3.wait_idle(after=t0 + 0.01)
    srv3.wait_idle(after=time.time())
    st, h2, _ = srv3.request("GET", "/list",
                             headers={"If-None-Match": h1["etag"]})
    check(st == 200 and h2["etag"] != h1["etag"], (st, h1, h2))


def cache_files(root):
    d = os.path.join(root, ".mediaindex", "cache")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def wait_list_cache(server, timeout=15):
    """Until /list is sent from the cache: a Content-Length, not chunks."""
    end = time.time() + timeout
    while time.time() < end:
        st, h, _ = server.request("HEAD", "/list")
        if st == 200 and "content-length" in h:
            return h
        time.sleep(0.1)
    return None


@test("GET /list from its cache: the generation's body as a file, byte-identical to the streamed one; gzip when taken; never an old body for a new generation")
def _():
    h = wait_list_cache(srv3)
    check(h is not None, "no cached /list within 15 s: %s" % cache_files(root3))
    gen = h["etag"].strip('"')
    check(cache_files(root3) == ["list-%s.json" % gen[1:],
                                 "list-%s.json.gz" % gen[1:],
                                 "list-%s.meta" % gen[1:]],
          cache_files(root3))
    st, h, cached = srv3.request("GET", "/list")
    check(st == 200 and int(h["content-length"]) == len(cached) and
          "transfer-encoding" not in h and h.get("vary") == "Accept-Encoding", h)
    # The same entries streamed from the catalog (a date filter open at
    # both ends lists everything), in the same order.
    st, _, streamed = srv3.request("GET", "/list?from=1000-01-01")
    check(st == 200 and json.loads(streamed) == json.loads(cached) and
          list(json.loads(streamed)) == list(json.loads(cached)))
    st, hz, body = srv3.request("GET", "/list",
                                headers={"Accept-Encoding": "br, gzip"})
    check(st == 200 and hz.get("content-encoding") == "gzip" and
          hz["etag"] == '"%s-z"' % gen and hz.get("vary") == "Accept-Encoding", hz)
    check(zlib.decompress(body, 16 + 15) == cached, "the gzip body is the list")
    for refuse in ("gzip;q=0", "identity", "gzip; q=0.000, deflate"):
        st, h0, body = srv3.request("GET", "/list",
                                    headers={"Accept-Encoding": refuse})
        check(st == 200 and "content-encoding" not in h0 and body == cached,
              (refuse, h0))
    # Either tag of the generation is the same list: 304.
    for tag, enc in (('"%s-z"' % gen, ""), ('"%s"' % gen, "gzip")):
        st, h304, body = srv3.request("GET", "/list", headers={
            "If-None-Match": tag, "Accept-Encoding": enc})
        check(st == 304 and body == b"", (tag, enc, st, h304))
    # A change: the next answer has it at once (streamed while the cache
    # is remade), then comes from the new cache; the old files go.
    t0 = time.time()
    with open(os.path.join(root3, "cache-new.png"), "wb") as f:
        f.write(png_bytes(8, 8, 906))
    new = sha(png_bytes(8, 8, 906))
    end = time.time() + 10
    while time.time() < end:
        st, h1, body = srv3.request("GET", "/list", headers={"Accept-Encoding": "gzip"})
        if h1["etag"].strip('"').split("-")[0] != gen:
            break
        time.sleep(0.05)
    if h1.get("content-encoding") == "gzip":
        body = zlib.decompress(body, 16 + 15)
    check(st == 200 and new in json.loads(body), (h1, "a new generation without its file"))
    srv3.wait_idle(after=t0)
    h2 = None
    end = time.time() + 15
    while time.time() < end:
        st, h2, body = srv3.request("GET", "/list")
        if "content-length" in h2 and h2["etag"] != '"%s"' % gen:
            break
        time.sleep(0.1)
    check("content-length" in h2 and new in json.loads(body) and
          gen[1:] not in " ".join(cache_files(root3)), (h2, cache_files(root3)))


@test("rescan server: clean exit")
def _():
    check(srv3.stop() == 0, "\n".join(srv3.log[-20:]))
    check(not sanitizer_reports(srv3), sanitizer_reports(srv3))


@test("a restart on an unchanged library takes the cached /list and timeline at once; in another time zone, or with a file of the cache damaged, it renders them again")
def _():
    before = cache_files(root3)
    gen = [f for f in before if f.endswith(".meta")]
    check(len(gen) == 1, before)
    gen = gen[0][len("list-"):-len(".meta")]
    with open(os.path.join(root3, ".mediaindex", "cache", "list-%s.json" % gen), "rb") as f:
        body = f.read()
    s = Server(root3, "--watch", "off")
    try:
        st, h, first = s.request("GET", "/list")
        check(st == 200 and "content-length" in h and h["etag"] == '"g%s"' % gen and
              first == body, ("not from the cache at once", h))
        st, ht, tl = s.json("GET", "/api/timeline")
        check(st == 200 and tl.get("total") == len(json.loads(body)), (st, tl))
        s.wait_idle()
        check(cache_files(root3) == before, (cache_files(root3), before))
    finally:
        check(s.stop() == 0)
    # A meta file cut short: not taken.
    meta = os.path.join(root3, ".mediaindex", "cache", "list-%s.meta" % gen)
    with open(meta, "r+b") as f:
        f.truncate(10)
    s = Server(root3, "--watch", "off")
    try:
        st, h, _ = s.request("GET", "/list")
        check(st == 200 and "content-length" not in h, ("a damaged cache taken", h))
        check(wait_list_cache(s) is not None, "no cache rendered again")
    finally:
        check(s.stop() == 0)
    # Another time zone: the months may fall elsewhere; rendered again.
    s = Server(root3, "--watch", "off", tz="Pacific/Kiritimati")
    try:
        st, h, _ = s.request("GET", "/list")
        check(st == 200 and "content-length" not in h, ("an old zone's cache taken", h))
        check(wait_list_cache(s) is not None, "no cache rendered in the new zone")
    finally:
        check(s.stop() == 0)


# ---- the watch -----------------------------------------------------------------

@test("the watch (on by default, no rescans): a file written, a folder made, a change and a deletion show in /list within seconds; /status says inotify; --watch off sees none of it")
def _():
    rootw = new_root("watch")
    with open(os.path.join(rootw, "old.png"), "wb") as f:
        f.write(png_bytes(8, 8, 950))
    roff = new_root("watch-off")
    sw, soff = Server(rootw), Server(roff, "--watch", "off")
    try:
        sw.wait_idle()
        soff.wait_idle()
        st, _, j = sw.json("GET", "/status")
        check(j["watch"]["mode"] == "inotify" and j["watch"]["folders"] >= 1, j.get("watch"))
        st, _, j = soff.json("GET", "/status")
        check(j["watch"]["mode"] == "off", j.get("watch"))
        for d in (rootw, roff):
            os.makedirs(os.path.join(d, "new", "deeper"))
            with open(os.path.join(d, "new", "deeper", "a.png"), "wb") as f:
                f.write(png_bytes(8, 8, 951))
            with open(os.path.join(d, "b.png"), "wb") as f:
                f.write(png_bytes(8, 8, 952))
        os.unlink(os.path.join(rootw, "old.png"))
        want = {sha(png_bytes(8, 8, 951)), sha(png_bytes(8, 8, 952))}
        end = time.time() + 10
        while time.time() < end and set(sw.listing()) != want:
            time.sleep(0.2)
        check(set(sw.listing()) == want, sorted(e["file_path"] for e in sw.listing().values()))
        e = sw.listing()[sha(png_bytes(8, 8, 951))]
        check(e["file_path"] == "new/deeper/a.png" and e["thumbnail_file"], e)
        check(len(soff.listing()) == 0, "--watch off saw a change")
        stopped_cleanly(sw)
        stopped_cleanly(soff)
    finally:
        for s in (sw, soff):
            if s.proc.poll() is None:
                s.proc.kill()


# ---------------------------------------------------------------------------
# The gallery's needs: the page itself, date filters, camera fields.

root4 = new_root("dated")
dated = {
    "2015.jpg": jpeg_bytes(41, exif=("2015:07:04 12:00:00", "Canon",
                                     "Canon EOS 40D")),
    "late2019.jpg": jpeg_bytes(42, exif=("2019:12:31 23:30:00",)),
    "early2020.jpg": jpeg_bytes(43, exif=("2020:01:01 00:30:00",)),
}
for rel, data in dated.items():
    with open(os.path.join(root4, rel), "wb") as f:
        f.write(data)
srv4 = Server(root4)


def names(listing):
    return sorted(e["filename"] for e in listing.values())


@test("GET /: the gallery page, its assets, CSP, ETag")
def _():
    st, h, body = srv4.request("GET", "/")
    check(st == 200 and h["content-type"].startswith("text/html"), (st, h))
    check(b"<html" in body.lower() and b"/static/app.js" in body)
    csp = h.get("content-security-policy", "")
    check("default-src 'self'" in csp and "script-src 'self'" in csp, csp)
    check(h.get("x-content-type-options") == "nosniff")
    st, h2, _ = srv4.request("GET", "/", headers={"If-None-Match": h["etag"]})
    check(st == 304, st)
    for asset, ctype in (("/static/app.js", "javascript"),
                         ("/static/style.css", "text/css")):
        st, h, body = srv4.request("GET", asset)
        check(st == 200 and ctype in h["content-type"] and body, (asset, st, h))
    st, h, body = srv4.request("HEAD", "/static/app.js")
    check(st == 200 and body == b"")
    st, _, j = srv4.json("GET", "/static/nothing.js")
    check(st == 404 and "error" in j)
    st, h, j = srv4.json("POST", "/", b"")
    check(st == 405 and h.get("allow") == "GET, HEAD", (st, h))


@test("GET /list?from=&to=, /list/date, /list/daterange: local days")
def _():
    srv4.wait_idle()
    if not FIXTURE_TOOL:
        raise Skip("no fixture tool to write EXIF dates")
    all3 = names(srv4.listing())
    check(all3 == ["2015.jpg", "early2020.jpg", "late2019.jpg"], all3)
    cases = {
        "/list?from=2019-12-31&to=2019-12-31": ["late2019.jpg"],
        "/list?from=2020-01-01": ["early2020.jpg"],
        "/list?to=2019-12-31": ["2015.jpg", "late2019.jpg"],
        "/list?from=2016-01-01&to=2019-12-30": [],
        "/list?from=&to=": all3,
        "/list/date/2015-07-04": ["2015.jpg"],
        "/list/daterange/2015-01-01/2019-12-31": ["2015.jpg", "late2019.jpg"],
    }
    for path, want in cases.items():
        st, h, data = srv4.request("GET", path)
        check(st == 200, (path, st))
        got = names(json.loads(data)) if st == 200 else None
        check(got == want, f"{path}: {got} != {want}")
    st, h1, _ = srv4.request("GET", "/list?from=2020-01-01")
    st, h2, _ = srv4.request("GET", "/list")
    check(h1["etag"] != h2["etag"], "a filtered list has its own ETag")
    for bad in ("/list?from=2020-13-01", "/list?to=yesterday",
                "/list/date/2020-1-1", "/list/daterange/2020-01-01/x",
                "/list?from=2020-01-01%00"):
        st, _, j = srv4.json("GET", bad)
        check(st == 400 and "error" in j, (bad, st, j))


@test("GET /list?format=ndjson: newest first, one object per line")
def _():
    if not FIXTURE_TOOL:
        raise Skip("no fixture tool to write EXIF dates")
    st, h, data = srv4.request("GET", "/list?format=ndjson")
    check(st == 200 and h["content-type"] == "application/x-ndjson", (st, h))
    lines = data.decode("utf-8").splitlines()
    objs = [json.loads(l) for l in lines]
    full = srv4.listing()
    check(len(objs) == len(full), (len(objs), len(full)))
    for o in objs:
        e = dict(full[o["sha256"]])
        e["sha256"] = o["sha256"]
        check(o == e, (o, e))
    dates = [o["original_creation_date"] for o in objs]
    check(dates == sorted(dates, reverse=True), dates)
    st, _, data = srv4.request("GET", "/list?format=ndjson&to=2019-12-31")
    got = [json.loads(l)["filename"] for l in data.decode().splitlines()]
    check(got == ["late2019.jpg", "2015.jpg"], got)
    st, _, j = srv4.json("GET", "/list?format=xml")
    check(st == 400 and "error" in j, (st, j))


@test("GET /list: camera make and model when known")
def _():
    if not FIXTURE_TOOL:
        raise Skip("no fixture tool to write EXIF")
    e = srv4.listing()[sha(dated["2015.jpg"])]
    check(e.get("make") == "Canon" and e.get("model") == "Canon EOS 40D", e)
    e = srv4.listing()[sha(dated["late2019.jpg"])]
    check("make" not in e and "model" not in e, e)


@test("PUT answers carry the entry's /list fields")
def _():
    data = jpeg_bytes(44, exif=("2018:05:06 07:08:09",)) if FIXTURE_TOOL \
        else jpeg_bytes(44)
    st, _, j = srv4.upload("new.jpg", data)
    check(st == 201, (st, j))
    e = srv4.listing()[sha(data)]
    for k in ("original_creation_date", "last_modified", "size", "mime_type",
              "kind"):
        check(j.get(k) == e.get(k), f"{k}: {j.get(k)} != {e.get(k)}")
    check(j["file_path"] == e["file_path"] and j["filename"] == "new.jpg", j)
    st, _, j2 = srv4.upload("again.jpg", data)
    check(st == 200 and j2["file_path"] == j["file_path"], j2)
    check(j2["original_creation_date"] == e["original_creation_date"], j2)
    check("thumbnail_file" not in j2, j2)


@test("gallery server: clean exit")
def _():
    check(srv4.stop() == 0, "\n".join(srv4.log[-20:]))
    check(not sanitizer_reports(srv4), sanitizer_reports(srv4))


@test("GET /api/formats: the library's table; what it says PUT takes, PUT takes")
def _():
    rootp = new_root("formats-api")
    s = Server(rootp)
    try:
        s.wait_idle()
        st, h, j = s.json("GET", "/api/formats")
        check(st == 200 and h["content-type"] == "application/json", st)
        t = {e["ext"]: e for e in j["types"]}
        check(len(t) == len(j["types"]), "an extension listed twice")
        check(t["jpg"] == {"ext": "jpg", "mime": "image/jpeg", "video": False,
                           "upload": True, "preview": False}, t["jpg"])
        check(t["heic"]["preview"] and t["dng"]["preview"] and t["tif"]["preview"],
              (t["heic"], t["dng"], t["tif"]))
        check(t["hif"]["mime"] == "image/heif", t["hif"])   # HEVC, not AVIF
        check(not t["avif"]["preview"] and not t["webp"]["preview"], t["avif"])
        check(t["mov"]["video"] and t["mov"]["upload"] and not t["mov"]["preview"], t["mov"])
        check(not t["svg"]["upload"] and not t["jxl"]["upload"], (t["svg"], t["jxl"]))
        # An extension it calls refused is refused; one it takes is taken.
        st, _, j = s.upload("drawing.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>", filename="drawing.svg")
        check(st == 400, (st, j))
        st, _, j = s.upload("photo.jfif", jpeg_bytes(701), filename="photo.jfif")
        check(st == 201, (st, j))
        st, _, _ = s.json("POST", "/api/formats")
        check(st == 405)
        stopped_cleanly(s)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


# ---- what could not be read ---------------------------------------------------

@test("GET /api/problems: an undecodable image is listed with why; /status counts it")
def _():
    rootp = new_root("problems")
    with open(os.path.join(rootp, "fine.jpg"), "wb") as f:
        f.write(jpeg_bytes(700))
    with open(os.path.join(rootp, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is no JPEG at all")
    s = Server(rootp)
    try:
        st = s.wait_idle()
        check(st["problems"] == 1, st)
        t0 = time.time()
        st, h, j = s.json("GET", "/api/problems")
        check(st == 200 and h["content-type"] == "application/json", st)
        check(j["count"] == 1 and len(j["problems"]) == 1, j)
        p = j["problems"][0]
        check(p["path"] == "broken.jpg" and p["stage"] == "thumbnail", p)
        check("decoded" in p["reason"] and p["error"], p)
        check(abs(p["time"] - t0) < 120 and p["first_seen"] <= p["time"], p)
        st, _, j = s.json("GET", "/api/problems?limit=0")
        check(st == 200 and j["count"] == 1 and j["problems"] == [], j)
        for bad in ("x", "-1", "100001", "1e3"):
            st, _, j = s.json("GET", "/api/problems?limit=" + bad)
            check(st == 400 and "error" in j, (bad, st, j))
        st, _, _ = s.json("POST", "/api/problems")
        check(st == 405)
        # The image is still indexed and served; only its preview is missing.
        data = open(os.path.join(rootp, "broken.jpg"), "rb").read()
        check(sha(data) in s.listing())
        # Its thumbnail and large thumbnail say why, as recorded.
        for q in ("", "?size=512"):
            st, _, j = s.json("GET", "/thumbnail/" + sha(data) + q)
            check(st == 404 and p["reason"] in j.get("error", ""), (q, st, j, p))
        stopped_cleanly(s)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


# ---- a full disk ------------------------------------------------------------

@contextlib.contextmanager
def small_disk(name, mib):
    """A tmpfs of `mib` MiB at a new folder, unmounted afterwards; the test
    is skipped where mounting is not allowed (not root, no mount
    namespace).  Servers the test leaves running are its own to stop."""
    d = new_root(name)
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", d],
            capture_output=True).returncode != 0:
        raise Skip("cannot mount a small tmpfs here")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], capture_output=True)


def wait_writable(s, timeout=15):
    """/status once it says writable again (or the last one, after timeout)."""
    end = time.time() + timeout
    while True:
        st = s.json("GET", "/status")[2]
        if st["writable"] or time.time() >= end:
            return st
        time.sleep(0.5)


@test("full disk: uploads get 507 'no space left on device', nothing kept, then work again")
def _():
    s = None
    with small_disk("full", 24) as d:
        try:
            with open(os.path.join(d, "a.jpg"), "wb") as f:
                f.write(jpeg_bytes(900))
            s = Server(d)
            s.wait_idle()
            # Known length over what the disk can take: refused before the
            # body (curl asks with Expect: 100-continue, as here).
            data = jpeg_bytes(901) + os.urandom(30 << 20)
            body, ctype = multipart([("file", "big.jpg", data)])
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall((f"PUT /image/big.jpg HTTP/1.1\r\nHost: x\r\n"
                       f"Content-Type: {ctype}\r\nExpect: 100-continue\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode())
            reply = c.recv(65536)
            c.close()
            check(reply.startswith(b"HTTP/1.1 507") and
                  b"no space left on device" in reply, reply[:300])
            # Unknown length (chunked): the disk fills while it is written.
            body, ctype = multipart([("file", "big2.jpg", data)])
            st, j = put_chunked(s, "big2.jpg", body, ctype)
            check(st == 507 and "no space left on device" in j["error"], (st, j))
            check(uploads(d) == set(), uploads(d))
            check(tmp_files(d) == [], tmp_files(d))
            # Still serving, and a small upload fits.
            check(len(s.listing()) == 1)
            small = jpeg_bytes(902)
            st, _, j = s.upload("small.jpg", small)
            check(st == 201, (st, j))
            stopped_cleanly(s)
        finally:
            if s and s.proc.poll() is None:
                s.proc.kill()


def fill_disk(d):
    """Fill the file system of d to the last block (unbuffered writes: a
    buffered close would raise ENOSPC itself)."""
    p = os.path.join(d, "filler.bin")
    with open(p, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 512):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return p


@test("full disk at start: serves read-only, says so, 507 for uploads, recovers by itself")
def _():
    s = None
    with small_disk("fullstart", 24) as d:
        try:
            for i in range(3):
                with open(os.path.join(d, f"p{i}.jpg"), "wb") as f:
                    f.write(jpeg_bytes(910 + i))
            s = Server(d)
            s.wait_idle()
            check(s.stop() == 0)
            with open(os.path.join(d, "new.jpg"), "wb") as f:
                f.write(jpeg_bytes(920))
            filler = fill_disk(d)
            s = Server(d)
            st = s.wait_idle()
            check(st["writable"] is False, st)
            check("no space left on device" in st.get("read_only_reason", ""), st)
            # The scan saw a new file but could commit nothing: it says so.
            check(st["last_scan_stats"]["added"] == 0 and
                  st["last_scan_stats"]["result"] != "success", st)
            lst = s.listing()
            check(len(lst) == 3, sorted(e["filename"] for e in lst.values()))
            one = sha(jpeg_bytes(910))
            stc, _, body = s.request("GET", "/thumbnail/" + one)
            check(stc == 200 and body[:4] == b"\x89PNG", stc)
            stc, _, body = s.request("GET", "/image/" + one)
            check(stc == 200 and body == jpeg_bytes(910))
            stc, h, j = s.upload("more.jpg", jpeg_bytes(921))
            check(stc == 507 and "no space left on device" in j["error"], (stc, j))
            check(any("read-only" in l for l in s.log), s.log[-5:])
            # Space comes back: writable again within seconds, uploads work.
            os.unlink(filler)
            st = wait_writable(s)
            check(st["writable"] is True, st)
            stc, _, j = s.upload("more.jpg", jpeg_bytes(921))
            check(stc == 201, (stc, j))
            check(sha(jpeg_bytes(921)) in s.listing())
            stopped_cleanly(s)
        finally:
            if s and s.proc.poll() is None:
                s.proc.kill()


@test("full disk during a rescan: its statistics count only what it committed; all of it is indexed once there is room")
def _():
    s = None
    with small_disk("fullscan", 24) as d:
        try:
            for i in range(3):
                with open(os.path.join(d, f"p{i}.jpg"), "wb") as f:
                    f.write(jpeg_bytes(940 + i))
            s = Server(d, "--rescan_interval", "1")
            s.wait_idle()
            check(len(s.listing()) == 3)
            # Fill the disk, then give back just the blocks 40 new photos
            # take: the next rescan finds them, and has no room for their
            # thumbnails or (once the WAL must grow) its commit.
            filler = fill_disk(d)
            new = [jpeg_bytes(950 + i) for i in range(40)]
            need = sum((len(b) + 4095) // 4096 * 4096 for b in new) + 40 * 4096
            os.truncate(filler, max(0, os.path.getsize(filler) - need))
            for i, b in enumerate(new):
                with open(os.path.join(d, f"new{i}.jpg"), "wb") as f:
                    f.write(b)
            t0 = time.time()
            st = s.wait_idle(after=t0 + 0.1, timeout=30)
            stats = st["last_scan_stats"]
            listed = len(s.listing()) - 3
            print(f"# the rescan on a full disk: {listed} of 40 listed, {stats}")
            # Whatever got in, the statistics say exactly that much.
            check(stats["added"] == listed, (stats, listed, st))
            if listed < 40:
                check(stats["result"] != "success", stats)
            # Room again: everything is indexed, the catalog intact.
            os.unlink(filler)
            wait_writable(s)
            end = time.time() + 30
            while len(s.listing()) < 43 and time.time() < end:
                time.sleep(0.5)
            lst = s.listing()
            check(len(lst) == 43, len(lst))
            check(all(sha(b) in lst for b in new), "a new photo is missing")
            stopped_cleanly(s)
        finally:
            if s and s.proc.poll() is None:
                s.proc.kill()


@test("a brand-new folder on a full disk: starts, serves an empty library read-only, takes uploads once there is room")
def _():
    s = None
    with small_disk("fullnew", 24) as d:
        try:
            with open(os.path.join(d, "p.jpg"), "wb") as f:
                f.write(jpeg_bytes(930))
            filler = fill_disk(d)
            s = Server(d)
            st = s.wait_idle()
            check(st["writable"] is False, st)
            check(s.listing() == {}, "the library is not empty")
            stc, _, j = s.upload("more.jpg", jpeg_bytes(931))
            check(stc == 507, (stc, j))
            os.unlink(filler)
            st = wait_writable(s)
            check(st["writable"] is True, st)
            check(os.path.exists(os.path.join(d, ".mediaindex", "index.sqlite3")),
                  "no catalog made once there was room")
            stc, _, j = s.upload("more.jpg", jpeg_bytes(931))
            check(stc == 201, (stc, j))
            stopped_cleanly(s)
        finally:
            if s and s.proc.poll() is None:
                s.proc.kill()


def held_server(name):
    root6 = new_root(name)
    with open(os.path.join(root6, "a.jpg"), "wb") as f:
        f.write(jpeg_bytes(600))
    s = Server(root6)
    s.wait_idle()
    return s



# ---- hostile connections -------------------------------------------------------

def status_latency(s):
    t = time.time()
    st, _, _ = s.json("GET", "/status")
    return st, time.time() - t


@test("500 connections trickling their headers: others are answered within 1 s")
def _():
    s = held_server("slowloris")
    socks = []
    try:
        for _ in range(500):
            try:
                c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                c.sendall(b"GET /sta")
                socks.append(c)
            except OSError:
                break
        check(len(socks) >= 300, len(socks))
        time.sleep(1.5)     # in place, as an attacker's would be
        worst = 0.0
        for _ in range(6):
            for c in socks:
                try:
                    c.send(b"t")
                except OSError:
                    pass
            st, t = status_latency(s)
            check(st == 200, st)
            worst = max(worst, t)
            time.sleep(0.5)
        print(f"# /status worst {worst:.3f} s with {len(socks)} slow connections")
        check(worst < 1.0, worst)
    finally:
        for c in socks:
            c.close()
    stopped_cleanly(s)


@test("64 uploads trickled a byte every 2 s: 503 beyond 32, 408 after 15 s, nothing kept")
def _():
    s = held_server("trickle")
    socks = []
    try:
        for _ in range(64):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            c.sendall(b"PUT /image/a.jpg HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: multipart/form-data; boundary=B\r\n"
                       b"Content-Length: 100000\r\n\r\n--B\r\n")
            socks.append(c)
        answers = {}
        worst = 0.0
        end = time.time() + 25
        pending = list(socks)
        while pending and time.time() < end:
            for c in list(pending):
                try:
                    c.send(b"a")
                except OSError:
                    pass
                c.setblocking(False)
                try:
                    head = c.recv(64)
                    answers[head[:12]] = answers.get(head[:12], 0) + 1
                    pending.remove(c)
                except BlockingIOError:
                    pass
                except OSError:
                    answers["reset"] = answers.get("reset", 0) + 1
                    pending.remove(c)
                c.setblocking(True)
            st, t = status_latency(s)
            check(st == 200, st)
            worst = max(worst, t)
            time.sleep(1)
        print(f"# answers {answers}; /status worst {worst:.3f} s")
        check(answers.get(b"HTTP/1.1 503") == 32, answers)
        check(answers.get(b"HTTP/1.1 408") == 32, answers)
        check(worst < 1.0, worst)
        check(uploads(s.root) == set() and tmp_files(s.root) == [],
              (uploads(s.root), tmp_files(s.root)))
    finally:
        for c in socks:
            c.close()
    stopped_cleanly(s)


@test("64 keep-alive pollers from one address: others are answered within 1 s")
def _():
    s = held_server("pollers")
    stop = threading.Event()
    errors = []

    def poll():
        c = s.conn()
        while not stop.is_set():
            try:
                s.request("GET", "/status", conn=c)
            except Exception as e:  # a closed keep-alive connection: again
                errors.append(repr(e))
                c = s.conn()
            time.sleep(0.2)
    ts = [threading.Thread(target=poll) for _ in range(64)]
    for t in ts:
        t.start()
    try:
        time.sleep(1)
        worst = max(status_latency(s)[1] for _ in range(5))
        print(f"# /status worst {worst:.3f} s with 64 pollers; "
              f"{len(errors)} poller reconnects")
        check(worst < 1.0, worst)
    finally:
        stop.set()
        for t in ts:
            t.join()
    stopped_cleanly(s)


# ---- start and stop ---------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@test("start: no request is answered 404 while the server starts")
def _():
    root5 = new_root("start")
    with open(os.path.join(root5, "a.jpg"), "wb") as f:
        f.write(jpeg_bytes(500))
    statuses = {}
    for _round in range(8):
        port = free_port()
        proc = subprocess.Popen(
            [SERVER, "--storage_dir", root5, "--listen", "127.0.0.1",
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop = time.time() + 10
        answered = 0

        def hammer():
            nonlocal answered
            while time.time() < stop and answered < 300:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port,
                                                   timeout=5)
                    c.request("GET", "/status")
                    st = c.getresponse().status
                    c.close()
                except OSError:
                    continue            # not listening yet
                statuses[st] = statuses.get(st, 0) + 1
                answered += 1
        ts = [threading.Thread(target=hammer) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(20) == 0)
    check(set(statuses) == {200}, statuses)


@test("SIGTERM with idle keep-alive connections: stopped within 1 s")
def _():
    s = held_server("stop-idle")
    held = []
    for _ in range(3):
        c = s.conn()
        st, _, _ = s.request("GET", "/status", conn=c)
        check(st == 200)
        held.append(c)
    idle = socket.create_connection(("127.0.0.1", s.port))  # says nothing
    time.sleep(0.2)
    t0 = time.time()
    rc = s.stop()
    took = time.time() - t0
    check(rc == 0, "\n".join(s.log[-10:]))
    check(took < 1.0, f"stopping took {took:.2f} s")
    check(not sanitizer_reports(s), sanitizer_reports(s))
    for c in held:
        c.close()
    idle.close()


@test("SIGTERM during an upload: it completes (201, Connection: close), then exit")
def _():
    s = held_server("stop-busy")
    data = jpeg_bytes(601)
    body, ctype = multipart([("file", "late.jpg", data)])
    c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    c.sendall((f"PUT /image/late.jpg HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: {ctype}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode()
              + body[:len(body) // 2])
    time.sleep(0.3)                      # the request is in its handler
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    check(s.proc.poll() is None, "exited with a request in flight")
    c.sendall(body[len(body) // 2:])
    reply = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        reply += chunk
    c.close()
    check(reply.startswith(b"HTTP/1.1 201"), reply[:200])
    check(b"Connection: close" in reply, reply[:400])
    check(s.stop() == 0, "\n".join(s.log[-10:]))
    check(os.path.exists(os.path.join(s.root, "uploads", today, "late.jpg")))
    check(not sanitizer_reports(s), sanitizer_reports(s))


sys.exit(finish(srv, srv2, srv3, srv4))
