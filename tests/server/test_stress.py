#!/usr/bin/env python3
"""Reliability probes of media-server, as an outside tester runs them.

    test_stress.py MEDIA_SERVER [FIXTURE_TOOL]

 - kill -9 at random moments during concurrent uploads, many times: every
   acknowledged upload is there afterwards, listed, byte for byte; nothing
   partial anywhere; no temp file survives a restart; the catalog passes
   SQLite's integrity check;
 - kill -9 during a first scan, repeatedly: the next start finishes it;
 - decompression bombs arriving at once, and a scan of a folder of them:
   the server's peak RSS (VmHWM) stays under 128 MiB.
Prints TAP.  MI_STRESS_CYCLES sets the kill -9 cycles (default 100).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish  # noqa: E402

import sqlite3  # noqa: E402

CYCLES = int(os.environ.get("MI_STRESS_CYCLES", "100"))


def start_fixed(root, *extra):
    """A server on a chosen port whose start is not waited for (kill -9
    may come first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([SERVER, "--storage_dir", root, "--listen",
                          "127.0.0.1", "--port", str(port), *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, port


def put(port, name, data, timeout=10):
    body, ctype = multipart([("file", name, data)])
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("PUT", "/image/" + name, body, {"Content-Type": ctype})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, json.loads(out) if out else None


def integrity(root):
    db = sqlite3.connect(os.path.join(root, ".mediaindex", "index.sqlite3"))
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def upload_body(rnd, i):
    """JPEG magic, then random bytes: 1 KiB to 2 MiB."""
    size = rnd.choice((1 << 10, 50 << 10, 300 << 10, 2 << 20))
    return b"\xff\xd8\xff\xe0" + os.urandom(size) + struct.pack(">I", i)


@test(f"kill -9 during concurrent uploads, {CYCLES} times: every acknowledged upload intact")
def _():
    root = new_root("kill9")
    rnd = random.Random(9)
    acked = {}                      # sha -> bytes
    sent = set()                    # sha of everything sent in full or not
    n = 0
    for cycle in range(CYCLES):
        p, port = start_fixed(root)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.01)
        lock = threading.Lock()

        def client():
            nonlocal n
            while True:
                with lock:
                    n += 1
                    i = n
                data = upload_body(rnd, i)
                with lock:
                    sent.add(sha(data))
                try:
                    st, j = put(port, f"u{i}.jpg", data)
                except Exception:
                    return              # killed under us
                if st in (200, 201):
                    with lock:
                        acked[j["sha256"]] = data
        ts = [threading.Thread(target=client) for _ in range(6)]
        for t in ts:
            t.start()
        time.sleep(rnd.uniform(0.05, 0.4))
        p.kill()
        p.wait()
        for t in ts:
            t.join()
    # A clean start: the scan picks up what was placed but not indexed.
    s = Server(root)
    s.wait_idle()
    lst = s.listing()
    missing = [h for h in acked if h not in lst]
    check(not missing, f"{len(missing)} acknowledged uploads not listed")
    for h, data in list(acked.items())[:400]:
        st, _, body = s.request("GET", "/image/" + h)
        check(st == 200 and body == data, f"{h}: {st}, {len(body)} bytes")
    # Every stored file is a whole upload, and nothing is left half-way.
    for rel in uploads(root):
        with open(os.path.join(root, rel), "rb") as f:
            h = sha(f.read())
        check(h in sent, f"{rel} is not a complete upload")
        check(h in lst, f"{rel} is not listed")
    check(tmp_files(root) == [], tmp_files(root))
    check(s.stop() == 0)
    check(integrity(root) == "ok")
    print(f"# {CYCLES} cycles, {len(sent)} uploads started, {len(acked)} "
          f"acknowledged, {len(uploads(root))} files stored")


@test("kill -9 during a first scan, 10 times: the next start completes it")
def _():
    root = new_root("kill9scan")
    want = set()
    for i in range(1500):
        data = png_bytes(4, 4, 5000 + i)
        d = os.path.join(root, f"d{i % 30}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"p{i}.png"), "wb") as f:
            f.write(data)
        want.add(sha(data))
    rnd = random.Random(10)
    for _ in range(10):
        p, _port = start_fixed(root)
        time.sleep(rnd.uniform(0.05, 0.5))
        p.kill()
        p.wait()
    s = Server(root)
    st = s.wait_idle(timeout=120)
    check(st["media"] == 1500, st)
    check(set(s.listing()) == want)
    check(s.stop() == 0)
    check(integrity(root) == "ok")


def zeros_png16(w, h):
    """A complete all-transparent w x h 16-bit RGBA PNG: ~800 MB once
    decoded whole, 0.8 MB on the wire."""
    co = zlib.compressobj(9)
    row = b"\0" * (1 + w * 8)
    z = b"".join(co.compress(row) for _ in range(h)) + co.flush()

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)) +
            chunk(b"IDAT", z) + chunk(b"IEND", b""))


def with_text(png, i):
    """The same image with a tEXt chunk: other bytes, same pixels."""
    t = b"n\0" + str(i).encode()
    c = (struct.pack(">I", len(t)) + b"tEXt" + t +
         struct.pack(">I", zlib.crc32(b"tEXt" + t) & 0xFFFFFFFF))
    return png[:33] + c + png[33:]


BOMB = None


@test("64 PNG bombs (4999x4999 16-bit) uploaded at once: peak RSS under 128 MiB, every one thumbnailed")
def _():
    global BOMB
    BOMB = zeros_png16(4999, 4999)
    root = new_root("bombs")
    s = Server(root)
    s.wait_idle()
    results = []

    def one(i):
        # Past 32 uploads from one address the server says 503 and
        # Retry-After: a client waits and sends again.
        for _attempt in range(100):
            try:
                st = put(s.port, f"b{i}.png", with_text(BOMB, i),
                         timeout=300)[0]
            except Exception as e:
                st = repr(e)
            if st != 503:
                break
            time.sleep(0.5)
        results.append(st)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    hwm = vm_hwm_kb(s.proc.pid)
    print(f"# 64 bombs: {sorted(set(map(str, results)))}, VmHWM {hwm} KiB")
    check(results.count(201) == 64, results)
    check(0 < hwm < 128 * 1024, hwm)
    thumbs = os.listdir(os.path.join(root, ".thumbnails"))
    check(len([t for t in thumbs if t.endswith(".png")]) == 64, len(thumbs))
    stopped_cleanly(s)


@test("a scan of a folder of bombs: peak RSS under 128 MiB")
def _():
    root = new_root("bombscan")
    for i in range(8):
        with open(os.path.join(root, f"b{i}.png"), "wb") as f:
            f.write(with_text(BOMB or zeros_png16(4999, 4999), 100 + i))
    s = Server(root)
    st = s.wait_idle(timeout=300)
    hwm = vm_hwm_kb(s.proc.pid)
    print(f"# scan of 8 bombs: {st['last_scan_stats']}, VmHWM {hwm} KiB")
    check(st["media"] == 8 and st["last_scan_stats"]["thumbs_made"] == 8, st)
    check(0 < hwm < 128 * 1024, hwm)
    check(s.stop() == 0)


sys.exit(finish())
