"""The live library over HTTP: GET /api/changes (the change feed),
GET /api/events (Server-Sent Events) and POST /api/rescan, against a real
media-server on 127.0.0.1.

    python3 test_changes.py MEDIA_SERVER FIXTURE_TOOL
"""
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


def start(root, *extra):
    s = Server(root, *extra)
    servers.append(s)
    return s


def feed(s, since, limit=None, headers=None):
    """(status, [lines as objects]) of GET /api/changes."""
    q = f"/api/changes?since={since}" + (f"&limit={limit}" if limit else "")
    st, h, data = s.request("GET", q, None, headers)
    if st != 200:
        return st, data
    check(h.get("content-type", "").startswith("application/x-ndjson"), h)
    return st, [json.loads(line) for line in data.decode().splitlines() if line]


def token(s):
    st, lines = feed(s, 0)
    check(st == 200 and len(lines) == 1 and lines[0]["change"] == "reset",
          (st, lines))
    return lines[0]["token"]


def changes(s, since, limit=None):
    """All pages from `since`: (upserted {sha: entry}, deleted set, token,
    pages)."""
    up, gone, pages = {}, set(), 0
    while True:
        st, lines = feed(s, since, limit)
        check(st == 200, (st, lines))
        pages += 1
        check(lines and lines[-1]["change"] == "end", lines)
        seqs = [int(c["seq"]) for c in lines[:-1]]
        check(seqs == sorted(seqs) and all(q > int(since) for q in seqs), seqs)
        for c in lines[:-1]:
            if c["change"] == "upsert":
                up[c["entry"]["sha256"]] = c["entry"]
                gone.discard(c["entry"]["sha256"])
            else:
                check(c["change"] == "delete", c)
                gone.add(c["sha256"])
                up.pop(c["sha256"], None)
        since = lines[-1]["token"]
        if not lines[-1]["more"]:
            return up, gone, since, pages


def write(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p + ".part", "wb") as f:
        f.write(data)
    os.rename(p + ".part", p)


def wait_for(cond, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("not in time")


class Events:
    """GET /api/events on a socket of its own; events collected by a
    thread as (name, data)."""

    def __init__(self, s, headers=""):
        self.sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
        self.sock.sendall(("GET /api/events HTTP/1.1\r\nHost: x\r\n"
                           f"Accept: text/event-stream\r\n{headers}\r\n").encode())
        self.events, self.head, self.closed = [], b"", False
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        buf = b""
        try:
            while True:
                d = self.sock.recv(4096)
                if not d:
                    break
                buf += d
                if not self.head and b"\r\n\r\n" in buf:
                    self.head, buf = buf.split(b"\r\n\r\n", 1)
                # Chunked framing stripped loosely: events are text lines.
                text = buf.decode("utf-8", "replace")
                while "\n\n" in text:
                    block, text = text.split("\n\n", 1)
                    name = data = None
                    for line in block.splitlines():
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("data: "):
                            data = json.loads(line[6:])
                    if name:
                        self.events.append((name, data))
                buf = text.encode()
        except OSError:
            pass
        self.closed = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------

root = new_root("live")
first = jpeg_bytes(8000)
write(root, "a/first.jpg", first)
s = start(root)
s.wait_idle()


@test("since=0, a future token, a bad one: reset with a token, 400")
def _():
    t = token(s)
    check(isinstance(t, str) and t.isdigit() and int(t) > 0, t)
    st, lines = feed(s, int(t) + 1000)
    check(st == 200 and lines[0]["change"] == "reset" and lines[0]["token"] == t,
          lines)
    for bad in ("abc", "-1", "1e5", "18446744073709551616"):
        st, _ = feed(s, bad)
        check(st == 400, (bad, st))
    for bad in ("0", "10001", "x"):
        st, _ = feed(s, t, bad)
        check(st == 400, (bad, st))
    up, gone, t2, _ = changes(s, t)
    check(not up and not gone and t2 == t)


@test("an upload, a copy, a file copied in, a deletion: each content once, "
      "with its /list entry, in order")
def _():
    t = token(s)
    up_data = jpeg_bytes(8001)
    st, _, j = s.upload("up.jpg", up_data, "up.jpg")
    check(st == 201, j)
    write(root, "b/copied.jpg", jpeg_bytes(8002))
    write(root, "b/again.jpg", first)            # a second path of first
    s.request("POST", "/api/rescan")
    wait_for(lambda: sha(jpeg_bytes(8002)) in s.listing())
    s.wait_idle()
    up, gone, t2, _ = changes(s, t)
    want = {sha(up_data), sha(jpeg_bytes(8002)), sha(first)}
    check(set(up) >= want and not gone, (list(up), gone))
    listed = s.listing()
    for h in want:
        e = dict(up[h])
        check(e.pop("sha256") == h)
        check(e == listed[h], (e, listed[h]))
    # Deleted from disk: a deletion, once.
    os.unlink(os.path.join(root, "b", "copied.jpg"))
    s.request("POST", "/api/rescan")
    wait_for(lambda: sha(jpeg_bytes(8002)) not in s.listing())
    up, gone, t3, _ = changes(s, t2)
    check(gone == {sha(jpeg_bytes(8002))} and sha(jpeg_bytes(8002)) not in up,
          (list(up), gone))
    up, gone, t4, _ = changes(s, t3)
    check(not up and not gone and t4 == t3)


@test("pages: limit=2 over 9 changes, each once, 'more' until the last")
def _():
    t = token(s)
    datas = [jpeg_bytes(8100 + i) for i in range(9)]
    for i, d in enumerate(datas):
        check(s.upload(f"p{i}.jpg", d, f"p{i}.jpg")[0] == 201)
    up, gone, _, pages = changes(s, t, 2)
    check(set(up) == {sha(d) for d in datas}, len(up))
    check(pages >= 5, pages)


@test("events: hello with the token, then 'change' within seconds of an "
      "upload; the feed from the hello's token has it")
def _():
    ev = Events(s)
    try:
        hello = wait_for(lambda: ev.events and ev.events[0])
        check(hello[0] == "hello", ev.events)
        check(b"text/event-stream" in ev.head and b"200" in ev.head.split(b"\r\n")[0],
              ev.head)
        t = hello[1]["token"]
        d = jpeg_bytes(8200)
        check(s.upload("ev.jpg", d, "ev.jpg")[0] == 201)
        ch = wait_for(lambda: [e for e in ev.events if e[0] == "change"], 10)
        check(int(ch[0][1]["token"]) > int(t), ch)
        up, _, _, _ = changes(s, t)
        check(sha(d) in up)
    finally:
        ev.close()


@test("POST /api/rescan: 202, a scan runs (a file copied with the watch "
      "off appears); GET is 405")
def _():
    r = new_root("rescan")
    w = start(r, "--watch", "off")
    w.wait_idle()
    t = token(w)
    d = jpeg_bytes(8300)
    write(r, "new.jpg", d)
    time.sleep(1)
    check(sha(d) not in w.listing(), "indexed without a scan")
    st, _, j = w.json("POST", "/api/rescan")
    check(st == 202 and j["scan"] in ("started", "queued"), (st, j))
    wait_for(lambda: sha(d) in w.listing())
    up, _, _, _ = changes(w, t)
    check(sha(d) in up)
    check(w.request("GET", "/api/rescan")[0] == 405)
    stopped_cleanly(w)


@test("a restart keeps the tokens; a stream open at SIGTERM does not hold "
      "the server up")
def _():
    global s
    t = token(s)
    ev = Events(s)
    wait_for(lambda: ev.events)
    t0 = time.time()
    stopped_cleanly(s)
    check(time.time() - t0 < 8, time.time() - t0)
    wait_for(lambda: ev.closed, 10)
    ev.close()
    s = start(root)
    s.wait_idle()
    up, gone, t2, _ = changes(s, t)
    check(not up and not gone and t2 == t, (list(up), gone, t, t2))
    d = jpeg_bytes(8400)
    check(s.upload("after.jpg", d, "after.jpg")[0] == 201)
    up, _, _, _ = changes(s, t)
    check(set(up) == {sha(d)}, list(up))


@test("accounts: a viewer's key reads the feed and the events, rescan needs "
      "upload; no credentials, 401")
def _():
    r = new_root("live-auth")
    a = start(r)
    add_user(r, "vic", "viewer")
    key = add_key(r, "vic", "read", "mirror")
    auth = {"Authorization": "Bearer " + key}
    st, lines = feed(a, 0, headers=auth)
    check(st == 200 and lines[0]["change"] == "reset", (st, lines))
    check(a.request("GET", "/api/changes?since=0")[0] == 401)
    check(a.request("GET", "/api/events")[0] == 401)
    check(a.request("POST", "/api/rescan", None, auth)[0] == 403)
    ev = Events(a, f"Authorization: Bearer {key}\r\n")
    try:
        wait_for(lambda: ev.events and ev.events[0][0] == "hello")
    finally:
        ev.close()
    stopped_cleanly(a)


# ---------------------------------------------------------------------------
# The trash

def trash_files(r):
    d = os.path.join(r, ".mediaindex", "trash")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@test("trash: DELETE /image moves every copy out of the folder and /list, "
      "the feed says gone, /api/trash lists it (thumbnail still served), "
      "restore puts it back beside a newcomer")
def _():
    r = new_root("trash")
    d = jpeg_bytes(8500)
    write(r, "x/p.jpg", d)
    write(r, "y/p copy.jpg", d)
    t = start(r)
    t.wait_idle()
    h = sha(d)
    tok = token(t)
    st, _, j = t.json("DELETE", "/image/" + h)
    check(st == 200 and j == {"trashed": h, "files": 2}, (st, j))
    check(h not in t.listing())
    check(not os.path.exists(os.path.join(r, "x", "p.jpg")) and
          not os.path.exists(os.path.join(r, "y", "p copy.jpg")))
    check(len(trash_files(r)) == 2, trash_files(r))
    _, gone, _, _ = changes(t, tok)
    check(gone == {h}, gone)
    st, _, j = t.json("GET", "/api/trash")
    check(st == 200 and j["count"] == 1 and j["items"][0]["sha256"] == h, j)
    it = j["items"][0]
    check(it["purge_at"] - it["trashed_at"] == 30 * 86400, it)
    check(it["file_path"] in ("x/p.jpg", "y/p copy.jpg"), it)
    check(t.request("GET", "/thumbnail/" + h)[0] == 200)
    check(t.json("DELETE", "/image/" + h)[0] == 404)
    # Restore: a newcomer took x/p.jpg meanwhile: it is kept.
    other = jpeg_bytes(8501)
    write(r, "x/p.jpg", other)
    st, _, j = t.json("POST", f"/api/trash/{h}/restore")
    check(st == 200 and j["restored"] == h, (st, j))
    with open(os.path.join(r, "x", "p (1).jpg"), "rb") as f:
        check(f.read() == d)
    with open(os.path.join(r, "x", "p.jpg"), "rb") as f:
        check(f.read() == other)
    check(os.path.exists(os.path.join(r, "y", "p copy.jpg")))
    wait_for(lambda: h in t.listing())
    check(t.json("GET", "/api/trash")[2]["count"] == 0)
    check(t.json("POST", f"/api/trash/{h}/restore")[0] == 404)
    check(not trash_files(r), trash_files(r))
    stopped_cleanly(t)


@test("trash: uploading trashed bytes restores them (200, the old path); "
      "delete for good, empty the trash; a viewer may not delete")
def _():
    r = new_root("trash2")
    a, b, c = jpeg_bytes(8600), jpeg_bytes(8601), jpeg_bytes(8602)
    for name, data in (("a.jpg", a), ("b.jpg", b), ("c.jpg", c)):
        write(r, "old/" + name, data)
    t = start(r)
    t.wait_idle()
    for data in (a, b, c):
        check(t.json("DELETE", "/image/" + sha(data))[0] == 200)
    st, _, j = t.upload("again.jpg", a, "again.jpg")
    check(st == 200 and j["file_path"] == "old/a.jpg", (st, j))
    check(not os.path.isdir(os.path.join(r, "uploads")) or
          not uploads(r), uploads(r))
    check(sha(a) in t.listing())
    st, _, j = t.json("DELETE", "/api/trash/" + sha(b))
    check(st == 200, (st, j))
    check(t.json("DELETE", "/api/trash/" + sha(b))[0] == 404)
    check(t.request("GET", "/thumbnail/" + sha(b))[0] == 404)
    st, _, j = t.json("DELETE", "/api/trash")
    check(st == 200 and j["purged"] == 1, (st, j))
    check(not trash_files(r), trash_files(r))
    check(t.json("GET", "/api/trash")[2]["count"] == 0)
    # A viewer key may list nothing and delete nothing.
    add_user(r, "val", "viewer")
    key = add_key(r, "val", "read")
    auth = {"Authorization": "Bearer " + key}
    check(t.request("DELETE", "/image/" + sha(a), None, auth)[0] == 403)
    check(t.request("GET", "/api/trash", None, auth)[0] == 403)
    stopped_cleanly(t)


@test("trash: what was trashed over --trash-days ago is purged at start")
def _():
    r = new_root("trash3")
    d, e = jpeg_bytes(8700), jpeg_bytes(8701)
    write(r, "old.jpg", d)
    write(r, "new.jpg", e)
    t = start(r)
    t.wait_idle()
    check(t.json("DELETE", "/image/" + sha(d))[0] == 200)
    check(t.json("DELETE", "/image/" + sha(e))[0] == 200)
    stopped_cleanly(t)
    import sqlite3
    db = sqlite3.connect(os.path.join(r, ".mediaindex", "index.sqlite3"))
    db.execute("UPDATE trash SET at = at - 3 * 86400 WHERE hash = ?",
               (bytes.fromhex(sha(d)),))
    db.commit()
    db.close()
    t = start(r, "--trash-days", "2")
    st, _, j = t.json("GET", "/api/trash")
    check(st == 200 and [i["sha256"] for i in j["items"]] == [sha(e)], j)
    check(len(trash_files(r)) == 1, trash_files(r))
    check(any("trashed over 2 days ago" in l for l in t.log), t.log[-5:])
    stopped_cleanly(t)


@test("trash: kill -9 while 300 copies move: every copy in exactly one "
      "place, the catalog saying where, after a restart")
def _():
    r = new_root("trash-kill")
    port = str(free_port())
    d = jpeg_bytes(8800)
    for i in range(300):
        write(r, f"c/{i:03d}.jpg", d)
    t = start(r, "--port", port, "--watch", "off")
    t.wait_idle()
    check(sha(d) in t.listing())

    def delete():
        try:
            t.request("DELETE", "/image/" + sha(d))
        except OSError:
            pass
    th = threading.Thread(target=delete)
    th.start()
    # Kill as soon as some copies have moved (a busy wait: the 300 renames
    # take milliseconds).
    end = time.time() + 20
    tdir = os.path.join(r, ".mediaindex", "trash")
    while time.time() < end:
        try:
            if os.listdir(tdir):
                break
        except OSError:
            pass
    t.proc.kill()
    t.proc.wait()
    th.join(10)
    originals = {f for f in os.listdir(os.path.join(r, "c"))}
    trashed = trash_files(r)
    check(len(originals) + len(trashed) == 300,
          (len(originals), len(trashed)))
    print(f"# killed with {len(trashed)} of 300 copies in the trash", flush=True)
    t = start(r, "--port", port, "--watch", "off")
    t.wait_idle()
    listed = t.listing()
    st, _, j = t.json("GET", "/api/trash")
    if originals:
        e = listed.get(sha(d))
        check(e is not None, "the copies left in the folder are not listed")
    else:
        check(sha(d) not in listed)
    check((j["count"] == 1) == bool(trashed), (j["count"], len(trashed)))
    # Restoring brings every trashed copy back to its own path.
    if trashed:
        check(t.json("POST", f"/api/trash/{sha(d)}/restore")[0] == 200)
    check(sorted(os.listdir(os.path.join(r, "c"))) ==
          [f"{i:03d}.jpg" for i in range(300)])
    check(not trash_files(r))
    stopped_cleanly(t)


@test("the server stops cleanly")
def _():
    stopped_cleanly(s)


sys.exit(finish(*servers))
