#!/usr/bin/env python3
"""HTTP tests of media-server's resumable uploads (tus 1.0 at /api/uploads/)
and POST /api/check, with raw HTTP (http.client and sockets), and with a
real tus client, Debian's python3-tuspy (run by /usr/bin/python3 when this
interpreter cannot import it; missing: skipped, or failed under CI=true).

    test_tus.py MEDIA_SERVER [FIXTURE_TOOL]

Prints TAP.
"""
import base64
import calendar
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish  # noqa: E402

servers = []
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def start(root, *extra):
    s = Server(root, *extra)
    servers.append(s)
    return s


def b64(v):
    return base64.b64encode(v.encode() if isinstance(v, str) else v).decode()


def create(s, length=None, name="a.jpg", defer=False, meta=None,
           body=None, headers=None):
    h = dict(TUS)
    if defer:
        h["Upload-Defer-Length"] = "1"
    elif length is not None:
        h["Upload-Length"] = str(length)
    m = [] if name is None else [f"filename {b64(name)}"]
    m += meta or []
    h["Upload-Metadata"] = ",".join(m)
    if body is not None:
        h["Content-Type"] = OCTETS
    h.update(headers or {})
    return s.request("POST", "/api/uploads/", body, h)


def new_upload(s, length, name="a.jpg", **kw):
    st, h, data = create(s, length, name, **kw)
    check(st == 201, (st, data))
    check(h["location"].startswith("/api/uploads/"), h)
    return h["location"]


def patch(s, loc, offset, data, headers=None):
    h = dict(TUS, **{"Upload-Offset": str(offset), "Content-Type": OCTETS})
    h.update(headers or {})
    return s.request("PATCH", loc, data, h)


def head(s, loc, headers=None):
    return s.request("HEAD", loc, None, dict(TUS, **(headers or {})))


def offset_of(s, loc):
    st, h, _ = head(s, loc)
    check(st == 200, (st, h))
    return int(h["upload-offset"])


def media(seed, extra=0):
    """A real JPEG followed by `extra` random bytes (decoders stop at EOI)."""
    return jpeg_bytes(seed) + os.urandom(extra)


def part_path(root, loc):
    return os.path.join(root, ".mediaindex", "uploads",
                        loc.rsplit("/", 1)[1] + ".part")


def parts(root):
    d = os.path.join(root, ".mediaindex", "uploads")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def raw_patch_start(s, loc, offset, total, first, extra=""):
    """A PATCH on a socket of its own: headers and the first bytes of a
    body of `total` bytes; the caller sends the rest (or not)."""
    c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    c.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
               f"Upload-Offset: {offset}\r\nContent-Type: {OCTETS}\r\n"
               f"{extra}Content-Length: {total}\r\n\r\n").encode() + first)
    return c


def user_xattrs(root):
    """Whether files under root take user extended attributes."""
    p = os.path.join(root, ".xattr-probe")
    try:
        with open(p, "wb"):
            pass
        os.setxattr(p, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        try:
            os.unlink(p)
        except OSError:
            pass


def read_status(c):
    data = b""
    while b"\r\n\r\n" not in data:
        more = c.recv(65536)
        if not more:
            break
        data += more
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def stored_ok(s, root, h, body, data):
    """A finishing answer names a file of exactly these bytes."""
    j = json.loads(body)
    check(h["mi-sha256"] == sha(data) == j["sha256"], (h, j))
    check(h["mi-file-path"] == j["file_path"], (h, j))
    check(open(os.path.join(root, j["file_path"]), "rb").read() == data,
          "stored bytes differ")
    check(sha(data) in s.listing(), "not indexed")
    return j


# ---------------------------------------------------------------------------

root = new_root("tus")
MAX = 64 << 20
srv = start(root, "--max-upload-bytes", str(MAX))
srv.wait_idle()


@test("OPTIONS: version, extensions, max size, checksum algorithms")
def _():
    for path in ("/api/uploads/", "/api/uploads", "/api/uploads/abc"):
        st, h, _ = srv.request("OPTIONS", path)
        check(st == 204, (path, st))
        check(h["tus-version"] == "1.0.0" and h["tus-resumable"] == "1.0.0", h)
        check(set(h["tus-extension"].split(",")) ==
              {"creation", "creation-with-upload", "creation-defer-length",
               "termination", "expiration", "checksum"}, h)
        check(h["tus-max-size"] == str(MAX), h)
        check(set(h["tus-checksum-algorithm"].split(",")) ==
              {"sha1", "sha256"}, h)
        check("content-length" not in h, "a 204 with a Content-Length")


@test("Tus-Resumable missing or another version: 412 with Tus-Version")
def _():
    for hv in ({}, {"Tus-Resumable": "0.2.2"}):
        st, h, data = srv.request("POST", "/api/uploads/", None,
                                  dict(hv, **{"Upload-Length": "10",
                                              "Upload-Metadata":
                                              "filename " + b64("a.jpg")}))
        check(st == 412 and h["tus-version"] == "1.0.0", (st, h))
        check("error" in json.loads(data), data)
    loc = new_upload(srv, 100)
    st, h, _ = srv.request("HEAD", loc)
    check(st == 412, st)
    st, _, _ = srv.request("PATCH", loc, b"x", {"Upload-Offset": "0",
                                                "Content-Type": OCTETS})
    check(st == 412, st)
    check(offset_of(srv, loc) == 0, "a refused PATCH wrote")


@test("creation refused: 400 (lengths, metadata), 413, 415")
def _():
    cases = [
        (400, dict(length=None)),                               # no length
        (400, dict(length=10, headers={"Upload-Defer-Length": "1"})),
        (400, dict(length=None, headers={"Upload-Defer-Length": "2"})),
        (400, dict(length="x")),
        (400, dict(length=-1)),
        (400, dict(length=10, name=None)),                      # no filename
        (400, dict(length=10, name=None, meta=["filename !!!"])),
        (400, dict(length=10, meta=["sha256 " + b64("zz")])),
        (413, dict(length=MAX + 1)),
        (415, dict(length=10, name="notes.txt")),
        (415, dict(length=0)),                                  # empty file
        (415, dict(length=10, body=b"x" * 10,
                   headers={"Content-Type": "text/plain"})),
    ]
    for want, kw in cases:
        st, h, data = create(srv, **kw)
        check(st == want, (want, st, kw, data))
        check(h.get("tus-resumable") == "1.0.0", h)
        check(isinstance(json.loads(data)["error"], str), data)


@test("chunked PATCHes from 1 byte to 1 MiB, HEAD between: byte-identical, "
      "indexed, 201 with Mi-Sha256/Mi-File-Path/Mi-Created")
def _():
    data = media(100, 3 << 20)
    loc = new_upload(srv, len(data), "chunks.jpg")
    sizes = [1, 2, 3, 1000, 65536, 1 << 20, 7, 300000]
    off, i = 0, 0
    c = srv.conn()      # one keep-alive connection for all of them
    while off < len(data):
        n = min(sizes[i % len(sizes)], len(data) - off)
        i += 1
        c.request("PATCH", loc, data[off:off + n],
                  dict(TUS, **{"Upload-Offset": str(off),
                               "Content-Type": OCTETS}))
        r = c.getresponse()
        body = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        off += n
        if off < len(data):
            check(r.status == 204, (r.status, body))
            check(int(h["upload-offset"]) == off, h)
            check("upload-expires" in h, h)
            if i % 3 == 0:
                check(offset_of(srv, loc) == off, "HEAD offset")
    c.close()
    check(r.status == 201, (r.status, body))
    check(h["mi-created"] == "true" and int(h["upload-offset"]) == len(data), h)
    j = stored_ok(srv, root, h, body, data)
    check(j["created"] is True and j["filename"] == "chunks.jpg", j)
    check(j["file_path"].startswith("uploads/"), j)
    st, _, _ = head(srv, loc)
    check(st == 404, f"a finished upload answers HEAD {st}")
    check(parts(root) == [] or all(not p.startswith(loc[-32:])
                                   for p in parts(root)), parts(root))
    # The same bytes again: 200, already there, nothing new on disk.
    before = tree(root)
    loc = new_upload(srv, len(data), "again.jpg")
    st, h, body = patch(srv, loc, 0, data)
    check(st == 200 and h["mi-created"] == "false", (st, h))
    check(json.loads(body)["created"] is False, body)
    check(tree(root) == before, tree(root) - before)


@test("creation-with-upload: the whole file in the POST, or its start")
def _():
    data = media(101, 5000)
    st, h, body = create(srv, len(data), "whole.jpg", body=data)
    check(st == 201 and h["location"].startswith("/api/uploads/"), (st, body))
    check(h["mi-created"] == "true" and h["upload-offset"] == str(len(data)), h)
    stored_ok(srv, root, h, body, data)

    data = media(102, 5000)
    st, h, _ = create(srv, len(data), "start.jpg", body=data[:1234])
    check(st == 201 and h["upload-offset"] == "1234", h)
    loc = h["location"]
    check(offset_of(srv, loc) == 1234, "HEAD")
    st, h, body = patch(srv, loc, 1234, data[1234:])
    check(st == 201, (st, body))
    stored_ok(srv, root, h, body, data)

    # A checksum that does not match the first bytes: created, nothing kept.
    data = media(103, 100)
    bad = "sha256 " + b64(hashlib.sha256(b"other").digest())
    st, h, _ = create(srv, len(data), "ck.jpg", body=data[:50],
                      headers={"Upload-Checksum": bad})
    check(st == 201 and h["upload-offset"] == "0", (st, h))
    srv.request("DELETE", h["location"], None, TUS)
    # A body longer than Upload-Length: 413, nothing created.
    before = parts(root)
    st, _, _ = create(srv, 10, "long.jpg", body=b"\xff" * 11)
    check(st == 413 and parts(root) == before, st)


@test("creation-defer-length: length given by a later PATCH")
def _():
    data = media(104, 200000)
    st, h, _ = create(srv, defer=True, name="deferred.jpg")
    check(st == 201, st)
    loc = h["location"]
    st, h, _ = head(srv, loc)
    check(h.get("upload-defer-length") == "1" and "upload-length" not in h, h)
    st, h, _ = patch(srv, loc, 0, data[:100000])
    check(st == 204 and h["upload-defer-length"] == "1", (st, h))
    # A length below what arrived: 400, and nothing changes.
    st, _, _ = patch(srv, loc, 100000, b"", {"Upload-Length": "99"})
    check(st == 400, st)
    st, _, _ = patch(srv, loc, 100000, b"", {"Upload-Length": str(MAX + 1)})
    check(st == 413, st)
    st, h, _ = patch(srv, loc, 100000, data[100000:150000],
                     {"Upload-Length": str(len(data))})
    check(st == 204 and h["upload-length"] == str(len(data)), (st, h))
    # Past the length now known: 413 before the body.
    st, _, _ = patch(srv, loc, 150000, data[150000:] + b"x")
    check(st == 413 and offset_of(srv, loc) == 150000, st)
    st, h, body = patch(srv, loc, 150000, data[150000:])
    check(st == 201, (st, body))
    stored_ok(srv, root, h, body, data)


@test("a wrong offset: 409 with the right one, nothing written")
def _():
    data = media(105, 1000)
    loc = new_upload(srv, len(data))
    check(patch(srv, loc, 0, data[:500])[0] == 204, "first")
    size = os.path.getsize(part_path(root, loc))
    for off in (0, 499, 501, 10 ** 12):
        st, h, body = patch(srv, loc, off, data[off:off + 10] or b"zz")
        check(st == 409 and h["upload-offset"] == "500", (off, st, h, body))
    for bad in ("", "-1", "x", "1e3", "99999999999999999999999"):
        st, _, _ = patch(srv, loc, bad, b"z")
        check(st == 400, (bad, st))
    st, _, _ = srv.request("PATCH", loc, b"z", dict(TUS, **{
        "Upload-Offset": "500", "Content-Type": "application/octet-stream"}))
    check(st == 415, st)
    check(os.path.getsize(part_path(root, loc)) == size == 500, "changed")
    check(offset_of(srv, loc) == 500, "offset moved")
    srv.request("DELETE", loc, None, TUS)


@test("Upload-Checksum sha1 and sha256: a match is kept, a mismatch is 460 "
      "and discarded, an unknown algorithm 400")
def _():
    data = media(106, 300000)
    loc = new_upload(srv, len(data))
    c1 = "sha1 " + b64(hashlib.sha1(data[:100000]).digest())
    st, h, _ = patch(srv, loc, 0, data[:100000], {"Upload-Checksum": c1})
    check(st == 204 and h["upload-offset"] == "100000", (st, h))
    wrong = "sha256 " + b64(hashlib.sha256(data[:1]).digest())
    st, h, body = patch(srv, loc, 100000, data[100000:200000],
                        {"Upload-Checksum": wrong})
    check(st == 460, (st, body))
    check(offset_of(srv, loc) == 100000, "the chunk was kept")
    check(os.path.getsize(part_path(root, loc)) == 100000, "bytes on disk")
    for bad in ("md5 " + b64(hashlib.md5(b"").digest()), "sha1", "sha1 !!",
                "sha256 " + b64(b"short")):
        st, _, _ = patch(srv, loc, 100000, data[100000:100010],
                         {"Upload-Checksum": bad})
        check(st == 400, (bad, st))
    c2 = "sha256 " + b64(hashlib.sha256(data[100000:]).digest())
    st, h, body = patch(srv, loc, 100000, data[100000:],
                        {"Upload-Checksum": c2})
    check(st == 201, (st, body))
    stored_ok(srv, root, h, body, data)


@test("two PATCHes at once on one upload: 423 for the second, then 409 "
      "for a stale one; the file is never corrupted")
def _():
    data = media(107, 400000)
    loc = new_upload(srv, len(data))
    a = raw_patch_start(srv, loc, 0, 200000, data[:1000])
    time.sleep(0.3)
    st, _, body = patch(srv, loc, 0, data[:200000])
    check(st == 423, (st, body))
    st, _, _ = srv.request("DELETE", loc, None, TUS)
    check(st == 423, f"DELETE while busy: {st}")
    st, h, _ = head(srv, loc)        # HEAD does not wait for the lock
    check(st == 200, st)
    a.sendall(data[1000:200000])
    check(read_status(a) == 204, "the first PATCH")
    a.close()
    st, h, _ = patch(srv, loc, 0, data[:200000])
    check(st == 409 and h["upload-offset"] == "200000", (st, h))

    # Many clients racing for the same offsets: each chunk lands once.
    results = []

    def racer(k):
        for _ in range(40):
            st, h, _ = head(srv, loc)
            if st != 200:
                return          # finished
            off = int(h["upload-offset"])
            if off >= len(data):
                continue        # finishing
            n = min(17000 + k, len(data) - off)
            st, _, _ = patch(srv, loc, off, data[off:off + n])
            results.append(st)
    ts = [threading.Thread(target=racer, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(set(results) <= {204, 201, 409, 423, 404}, results)
    check(results.count(201) == 1, results)
    check(sha(data) in srv.listing(), "not indexed")
    j = srv.listing()[sha(data)]
    check(open(os.path.join(root, j["file_path"]), "rb").read() == data,
          "corrupted")


@test("termination: DELETE 204, then 404 for HEAD, PATCH and DELETE")
def _():
    loc = new_upload(srv, 5000)
    check(patch(srv, loc, 0, b"\xff\xd8\xff" + b"x" * 100)[0] == 204, "patch")
    check(os.path.exists(part_path(root, loc)), "no .part")
    st, h, _ = srv.request("DELETE", loc, None, TUS)
    check(st == 204 and h["tus-resumable"] == "1.0.0", st)
    check(not os.path.exists(part_path(root, loc)), ".part left")
    check(head(srv, loc)[0] == 404, "HEAD")
    check(patch(srv, loc, 103, b"x")[0] == 404, "PATCH")
    check(srv.request("DELETE", loc, None, TUS)[0] == 404, "DELETE")
    for bad in ("/api/uploads/nothex", "/api/uploads/" + "0" * 32,
                "/api/uploads/%00" + "0" * 31, "/api/uploads/..%2F..%2Fx"):
        check(head(srv, bad)[0] == 404, bad)
        check(patch(srv, bad, 0, b"x")[0] == 404, bad)
    st, _, _ = srv.request("GET", loc)
    check(st == 405, st)


@test("an upload whose bytes are not an accepted type is refused at the "
      "end (415) and nothing is kept; a 1-byte file too")
def _():
    before = tree(root)
    for data in (b"this is not a JPEG at all" * 100, b"\xff"):
        loc = new_upload(srv, len(data), "fake.jpg")
        st, h, body = patch(srv, loc, 0, data)
        check(st == 415, (st, body))
        check(head(srv, loc)[0] == 404, "kept")
        check(not os.path.exists(part_path(root, loc)), ".part kept")
    check(tree(root) == before, tree(root) - before)
    check(tmp_files(root) == [], tmp_files(root))


@test("zero-byte files: refused at creation, or when a deferred length "
      "turns out 0; nothing kept")
def _():
    st, _, _ = create(srv, 0)
    check(st == 415, st)
    st, h, _ = create(srv, defer=True)
    loc = h["location"]
    st, _, body = patch(srv, loc, 0, b"", {"Upload-Length": "0"})
    check(400 <= st < 500, (st, body))
    check(not os.path.exists(part_path(root, loc)) or
          head(srv, loc)[0] == 200, "inconsistent")
    srv.request("DELETE", loc, None, TUS)


@test("sha256 in Upload-Metadata: 'already have it' at creation (hex and "
      "base64), 460 at the end when the bytes differ")
def _():
    data = media(108, 1000)
    st, h, body = srv.upload("known.jpg", data)
    check(st == 201, (st, body))
    for v in (sha(data), sha(data).upper(),
              b64(hashlib.sha256(data).digest())):
        st, h, body = create(srv, len(data), "k.jpg",
                             meta=["sha256 " + b64(v)])
        check(st == 200 and "location" not in h, (st, h))
        check(h["mi-created"] == "false" and h["mi-sha256"] == sha(data), h)
        check(json.loads(body)["file_path"] == h["mi-file-path"], body)
    other = media(109, 1000)
    loc = new_upload(srv, len(other), "o.jpg",
                     meta=["sha256 " + b64(sha(data[:10]))])
    st, _, body = patch(srv, loc, 0, other)
    check(st == 460, (st, body))
    check(sha(other) not in srv.listing(), "kept")
    check(head(srv, loc)[0] == 404, "upload left")
    # The right hash: stored.
    loc = new_upload(srv, len(other), "o.jpg",
                     meta=["sha256 " + b64(sha(other))])
    st, h, body = patch(srv, loc, 0, other)
    check(st == 201, (st, body))


@test("POST /api/check: hashes and {id, sha256}, in order, with file_path")
def _():
    data = media(110, 10)
    st, _, j0 = srv.upload("check.jpg", data)
    check(st == 201, (st, j0))
    unknown = "ab" * 32
    body = [sha(data), {"id": "phone-1", "sha256": sha(data).upper()},
            {"id": 7, "sha256": unknown}, unknown]
    st, h, j = srv.json("POST", "/api/check", json.dumps(body).encode(),
                        {"Content-Type": "application/json"})
    check(st == 200, (st, j))
    check(j["count"] == 4 and j["present"] == 2, j)
    r = j["results"]
    check(r[0]["present"] and r[0]["file_path"].startswith("uploads/"), r)
    check(r[1]["id"] == "phone-1" and r[1]["sha256"] == sha(data), r)
    check(r[2] == {"sha256": unknown, "id": 7, "present": False}, r)
    check(r[3]["present"] is False and "id" not in r[3], r)
    st, _, j = srv.json("POST", "/api/check", b"[]",
                        {"Content-Type": "application/json"})
    check(st == 200 and j["count"] == 0, j)
    # The pre-check by size and name or capture date: "probably present".
    when = srv.listing()[sha(data)]["original_creation_date"]
    body = [{"id": "p1", "name": "CHECK.JPG", "size": len(data)},
            {"id": "p2", "name": "check.jpg", "size": len(data) + 1},
            {"id": "p3", "size": len(data), "date": when},
            {"id": "p4", "size": len(data), "date": when + 3600},
            sha(data)]
    st, _, j = srv.json("POST", "/api/check", json.dumps(body).encode(),
                        {"Content-Type": "application/json"})
    check(st == 200, (st, j))
    r = j["results"]
    check([x.get("probably_present") for x in r] ==
          [True, False, True, False, None], r)
    check(all(x["present"] is False for x in r[:4]) and r[4]["present"], r)
    check(r[0]["file_path"] == r[4]["file_path"] and "sha256" not in r[0], r)
    check(j["probably_present"] == 2 and j["present"] == 1, j)
    # 50,000 at once.
    many = [sha(data)] + ["%064x" % i for i in range(49999)]
    t0 = time.time()
    st, _, j = srv.json("POST", "/api/check", json.dumps(many).encode(),
                        {"Content-Type": "application/json"})
    check(st == 200 and j["count"] == 50000 and j["present"] == 1,
          (st, j and j.get("count")))
    print(f"# 50,000 hashes checked in {time.time() - t0:.2f}s", flush=True)


@test("POST /api/check refused: 400 not a list or a bad item, 413 too "
      "many or too large (before the body), 415 not JSON")
def _():
    cj = {"Content-Type": "application/json"}
    for body in (b"{}", b"[", b'["xyz"]', b'[{"id": 1}]', b"[1]",
                 b'[{"name": "a.jpg"}]', b'[{"size": 1}]',
                 b'[{"size": -1, "name": "a.jpg"}]',
                 b'[{"size": 1, "date": "yesterday"}]',
                 b'[{"id": [], "sha256": "' + b"a" * 64 + b'"}]',
                 b'["' + b"g" * 64 + b'"]'):
        st, _, j = srv.json("POST", "/api/check", body, cj)
        check(st == 400 and "error" in j, (body, st, j))
    many = json.dumps(["%064x" % i for i in range(50001)]).encode()
    st, _, _ = srv.json("POST", "/api/check", many, cj)
    check(st == 413, st)
    st, _, _ = srv.json("POST", "/api/check", b"[]",
                        {"Content-Type": "text/plain"})
    check(st == 415, st)
    # A huge Content-Length is refused from the headers alone.
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    c.sendall(b"POST /api/check HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nContent-Length: 100000000000\r\n\r\n")
    check(read_status(c) == 413, "huge body")
    c.close()


@test("hostile headers: long metadata, many keys, bad base64, NULs")
def _():
    st, _, _ = create(srv, 10, meta=["x " + b64("y" * 9000)])
    check(st in (400, 413, 431), st)
    st, _, _ = create(srv, 10, meta=[f"k{i} {b64('v')}" for i in range(600)])
    check(st in (201, 400, 413, 431), st)
    st, _, _ = create(srv, 10, name="a\x00b.jpg")
    check(st == 400, st)
    st, _, _ = create(srv, 10, meta=["filetype " + b64("image/jpeg")],
                      name="noext")
    check(st == 201, st)
    st, _, _ = create(srv, 10, name="../../etc/passwd.jpg")
    check(st == 201, st)
    check(srv.proc.poll() is None, "the server died")


@test("the server holds up: no sanitizer report so far")
def _():
    check(not sanitizer_reports(srv), sanitizer_reports(srv))


# ---------------------------------------------------------------------------
# Expiry and the partial-bytes cap

@test("expiry (--upload-expiry 2): Upload-Expires, then 404 and swept")
def _():
    r = new_root("expiry")
    s = start(r, "--upload-expiry", "2")
    loc = new_upload(s, 1000)
    st, h, _ = patch(s, loc, 0, b"\xff\xd8\xff" + b"x" * 97)
    check(st == 204, st)
    exp = calendar.timegm(time.strptime(h["upload-expires"],
                                        "%a, %d %b %Y %H:%M:%S GMT"))
    check(0 <= exp - time.time() <= 3, (h["upload-expires"], time.time()))
    time.sleep(3.2)
    check(head(s, loc)[0] == 404, "HEAD after expiry")
    check(patch(s, loc, 100, b"x")[0] == 404, "PATCH after expiry")
    end = time.time() + 5
    while time.time() < end and parts(r):
        time.sleep(0.2)
    check(parts(r) == [], parts(r))
    stopped_cleanly(s)


@test("the partial-bytes cap (--upload-partial-max 1M): 507 while full, "
      "413 for one larger than the cap, room again after a DELETE")
def _():
    r = new_root("cap")
    s = start(r, "--upload-partial-max", "1M")
    a = new_upload(s, 600000)
    st, _, body = create(s, 600000)
    check(st == 507, (st, body))
    st, _, _ = create(s, 2 << 20)
    check(st == 413, st)
    d = new_upload(s, 1, defer=True)
    st, _, _ = patch(s, d, 0, b"\xff" * 300000)
    check(st == 204, st)
    st, _, _ = patch(s, d, 300000, b"\xff" * 300000)
    check(st == 507, st)
    check(offset_of(s, d) == 300000, "kept part of a refused chunk")
    check(s.request("DELETE", a, None, TUS)[0] == 204, "delete")
    new_upload(s, 600000)
    stopped_cleanly(s)


# ---------------------------------------------------------------------------
# kill -9 mid-upload

@test("kill -9 mid-PATCH, restart, HEAD, resume: byte-identical and indexed")
def _():
    r = new_root("kill")
    port = str(free_port())
    s = start(r, "--port", port)
    data = media(111, 6 << 20)
    loc = new_upload(s, len(data), "killed.jpg")
    check(patch(s, loc, 0, data[:2 << 20])[0] == 204, "first chunk")
    # 1.5 MiB of 3: the server has written (not synced) its first 1 MiB
    # piece (TUS_READ_BUF) when it dies.
    c = raw_patch_start(s, loc, 2 << 20, 3 << 20,
                        data[2 << 20:(2 << 20) + (3 << 19)])
    time.sleep(0.5)
    check(offset_of(s, loc) == 2 << 20,
          "HEAD during a PATCH says what is synced")
    s.proc.kill()
    s.proc.wait()
    c.close()
    s = start(r, "--port", port)
    off = offset_of(s, loc)
    # The offset is what was synced: the cut chunk's bytes that reached
    # the file, never synced, are not kept (where the file system has
    # user extended attributes, to mark them; else they are).
    check(off == 2 << 20 or (not user_xattrs(r) and
                             off <= (2 << 20) + (3 << 19)), off)
    # The same with a checksummed chunk, whose checksum was never checked.
    ck = base64.b64encode(hashlib.sha256(
        data[off:off + (2 << 20)]).digest()).decode()
    c = raw_patch_start(s, loc, off, 2 << 20, data[off:off + (3 << 19)],
                        f"Upload-Checksum: sha256 {ck}\r\n")
    time.sleep(0.5)
    s.proc.kill()
    s.proc.wait()
    c.close()
    s = start(r, "--port", port)
    check(offset_of(s, loc) == off or not user_xattrs(r), offset_of(s, loc))
    off = offset_of(s, loc)
    st, h, body = patch(s, loc, off, data[off:])
    check(st == 201, (st, body))
    stored_ok(s, r, h, body, data)
    # Killed between the last byte and the finish: HEAD finishes it.
    data2 = media(112, 1000)
    loc = new_upload(s, len(data2), "late.jpg")
    s.proc.kill()
    s.proc.wait()
    with open(part_path(r, loc), "ab") as f:
        f.write(data2)
    s = start(r, "--port", port)
    end = time.time() + 10
    while time.time() < end and sha(data2) not in s.listing():
        time.sleep(0.1)      # the sweeper, or the HEAD below
        st, h, _ = head(s, loc)
        if st == 200 and "mi-sha256" in h:
            break
    check(sha(data2) in s.listing(), "a complete upload was not finished")
    stopped_cleanly(s)


# ---------------------------------------------------------------------------
# Accounts: the upload scope, and uploads belong to their maker

def cli(r, *args, password=None):
    p = subprocess.run([SERVER, "--storage_dir", r, *args],
                       input=(password + "\n").encode() if password else b"",
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def offset_of_auth(s, loc, a):
    st, h, _ = head(s, loc, a)
    check(st == 200, st)
    return int(h["upload-offset"])


@test("accounts: upload scope needed, another user's upload is a 404, "
      "OPTIONS open, /api/check needs read")
def _():
    r = new_root("owners")
    keys = {}
    for name, role in (("ann", "member"), ("bob", "member"),
                       ("vic", "viewer")):
        rc, _, err = cli(r, "user", "add", name, "--role", role,
                         password=name + "-password")
        check(rc == 0, err)
    for name, scope in (("ann", "read,upload"), ("bob", "read,upload"),
                        ("vic", "read"), ("ann-read", "read")):
        rc, out, err = cli(r, "key", "create", "--user", name.split("-")[0],
                           "--name", "k", "--scope", scope)
        check(rc == 0, err)
        keys[name] = out.strip().splitlines()[-1]
    s = start(r)

    def auth(k):
        return {"Authorization": "Bearer " + keys[k]}
    st, _, _ = create(s, 100)
    check(st == 401, st)
    for k in ("vic", "ann-read"):
        st, _, _ = create(s, 100, headers=auth(k))
        check(st == 403, (k, st))
    st, _, _ = s.request("OPTIONS", "/api/uploads/")
    check(st == 204, st)
    data = media(113, 1000)
    st, h, _ = create(s, len(data), headers=auth("ann"))
    check(st == 201, st)
    loc = h["location"]
    check(patch(s, loc, 0, data[:10], auth("ann"))[0] == 204, "ann")
    check(patch(s, loc, 10, data[10:20], auth("bob"))[0] == 404, "bob PATCH")
    check(head(s, loc, auth("bob"))[0] == 404, "bob HEAD")
    check(s.request("DELETE", loc, None, dict(TUS, **auth("bob")))[0] == 404,
          "bob DELETE")
    check(head(s, loc)[0] == 401, "no credentials")
    check(offset_of_auth(s, loc, auth("ann")) == 10, "ann's offset")
    st, h, body = patch(s, loc, 10, data[10:], auth("ann"))
    check(st == 201, (st, body))
    cj = {"Content-Type": "application/json"}
    st, _, _ = s.request("POST", "/api/check", json.dumps([sha(data)]).encode(),
                         cj)
    check(st == 401, st)
    st, _, j = s.json("POST", "/api/check", json.dumps([sha(data)]).encode(),
                      dict(cj, **auth("vic")))
    check(st == 200 and j["present"] == 1, (st, j))
    stopped_cleanly(s)


# ---------------------------------------------------------------------------
# A real client: python3-tuspy

TUSPY_SCRIPT = r"""
import sys
from tusclient import client
from tusclient.storage import filestorage
url, path, store, stop = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = client.TusClient(url)
u = c.uploader(path, chunk_size=65536, metadata={"filename": "tuspy.jpg"},
               store_url=True, url_storage=filestorage.FileStorage(store),
               upload_checksum=True)
u.upload(stop_at=stop or None)
print(u.url, u.offset)
"""


def tuspy_python():
    for py in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(py) and subprocess.run(
                [py, "-c", "import tusclient.client, "
                 "tusclient.storage.filestorage"],
                capture_output=True).returncode == 0:
            return py
    return None


@test("python3-tuspy: upload, interrupted (server killed), resumed: "
      "byte-identical and indexed")
def _():
    py = tuspy_python()
    if not py:
        if os.environ.get("CI") == "true":
            raise AssertionError("python3-tuspy is not installed "
                                 "(scripts/install-deps.sh --tests)")
        raise Skip("python3-tuspy is not installed")
    r = new_root("tuspy")
    port = str(free_port())
    s = start(r, "--port", port)
    data = media(114, 1 << 20)
    path = os.path.join(work, "tuspy.jpg")
    with open(path, "wb") as f:
        f.write(data)
    store = os.path.join(work, "tuspy-urls.json")
    script = os.path.join(work, "tuspy-client.py")
    with open(script, "w") as f:
        f.write(TUSPY_SCRIPT)
    url = f"http://127.0.0.1:{port}/api/uploads/"
    p = subprocess.run([py, script, url, path, store, str(400000)],
                       capture_output=True, timeout=120)
    check(p.returncode == 0, p.stderr.decode()[-2000:])
    first, off = p.stdout.decode().split()
    check(int(off) >= 400000, off)
    s.proc.kill()
    s.proc.wait()
    s = start(r, "--port", port)
    p = subprocess.run([py, script, url, path, store, "0"],
                       capture_output=True, timeout=120)
    check(p.returncode == 0, p.stderr.decode()[-2000:])
    again, off = p.stdout.decode().split()
    check(again == first and int(off) == len(data), (first, again, off))
    j = s.listing().get(sha(data))
    check(j, "not indexed")
    check(open(os.path.join(r, j["file_path"]), "rb").read() == data,
          "bytes differ")
    stopped_cleanly(s)


@test("the server stops cleanly, no sanitizer report")
def _():
    stopped_cleanly(srv)


sys.exit(finish(*servers))
