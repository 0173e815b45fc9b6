"""mi-backup (examples/mi-backup.c), the reference backup client, against a
real media-server on 127.0.0.1: a real folder backed up, run again, killed
and resumed, the server killed under it, through a real nginx doing TLS
with a small body cap, and with accounts.

    python3 test_backup.py MEDIA_SERVER FIXTURE_TOOL MI_BACKUP

The nginx test skips without nginx or openssl (fails under CI=true).
"""
import os
import re
import signal
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish  # noqa: E402

MI_BACKUP = os.path.abspath(sys.argv[3])
servers = []


def start(root, *extra):
    s = Server(root, *extra)
    servers.append(s)
    return s


def backup(folder, url, *args, env=None, timeout=180):
    e = dict(os.environ)
    e.pop("MI_BACKUP_KEY", None)
    e.update(env or {})
    p = subprocess.run([MI_BACKUP, *args, folder, url], capture_output=True,
                       timeout=timeout, env=e)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def summary(out):
    """(sent, bytes sent, resumed, already there, failed) from the last line."""
    m = re.search(r"(\d+) sent \([^:]*: (\d+) bytes, (\d+) resumed\), "
                  r"(\d+) already there, (\d+) failed", out)
    check(m, "no summary in:\n" + out)
    return tuple(int(x) for x in m.groups())


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def big(seed, mib):
    """A real JPEG followed by noise: a media file of about `mib` MiB."""
    return jpeg_bytes(seed) + os.urandom(mib << 20)


def stored(root):
    """sha256 -> bytes of every file in the server's uploads/."""
    out = {}
    for rel in uploads(root):
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
        out[sha(data)] = data
    return out


def offset_on_server(s, state_file, timeout=30):
    """Wait for mi-backup's state file to name an upload; its offset."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            line = open(state_file).read().split()
        except OSError:
            line = []
        if len(line) >= 2:
            loc = line[1][line[1].index("/api/uploads/"):]
            st, h, _ = s.request("HEAD", loc, None, {"Tus-Resumable": "1.0.0"})
            if st == 200 and int(h["upload-offset"]) > 0:
                return int(h["upload-offset"])
        time.sleep(0.05)
    raise AssertionError("mi-backup never began its upload")


# ---------------------------------------------------------------------------

src = new_root("phone")
photos = {}
for i in range(24):
    data = jpeg_bytes(7000 + i, 96, 64,
                      ("2024:05:%02d 10:00:00" % (1 + i % 28),))
    rel = f"DCIM/{100 + i % 3}APPLE/IMG_{i:04d}.JPG"
    write(os.path.join(src, rel), data)
    photos[sha(data)] = data
# The same photo twice, and what is not a photo at all.
write(os.path.join(src, "copies/IMG_0000 copy.JPG"),
      photos[next(iter(photos))])
write(os.path.join(src, "notes.txt"), b"not a photo\n")
write(os.path.join(src, ".hidden/x.bin"), os.urandom(100))

store = new_root("server")
s = start(store)
URL = f"http://127.0.0.1:{s.port}"


@test("a folder: every photo on the server byte-identical, a duplicate "
      "once, nothing else sent")
def _():
    rc, out = backup(src, URL)
    check(rc == 0, out)
    sent, nbytes, resumed, already, failed = summary(out)
    check((sent, resumed, already, failed) == (24, 0, 0, 0), out)
    check(nbytes == sum(len(d) for d in photos.values()), out)
    got = stored(store)
    check(got == photos, f"{len(got)} stored, {len(photos)} expected")
    listed = s.listing()
    check(all(h in listed for h in photos), "not all indexed")
    # The client keeps its own index in the folder, and no state behind.
    check(os.path.exists(os.path.join(src, ".mediaindex", "index.sqlite3")),
          os.listdir(os.path.join(src, ".mediaindex")))
    check(not open(os.path.join(src, ".mediaindex", "mi-backup.state")).read(),
          "uploads left in the state file")


@test("run again: nothing re-hashed, nothing sent, exit 0")
def _():
    before = set(uploads(store))
    rc, out = backup(src, URL)
    check(rc == 0, out)
    check(re.search(r"files, 0 new or changed since the last run", out), out)
    check(summary(out) == (0, 0, 0, 24, 0), out)
    check("24 of 24 on the server already; 0 to send" in out, out)
    check(set(uploads(store)) == before)
    # A new photo, and one the server got from somewhere else meanwhile.
    extra = jpeg_bytes(7100, 80, 60)
    write(os.path.join(src, "DCIM/new.jpg"), extra)
    other = jpeg_bytes(7101, 80, 60)
    write(os.path.join(src, "DCIM/other.jpg"), other)
    check(s.upload("other.jpg", other, "other.jpg")[0] == 201)
    rc, out = backup(src, URL)
    check(rc == 0, out)
    check("2 new or changed" in out, out)
    check(summary(out) == (1, len(extra), 0, 25, 0), out)
    photos[sha(extra)] = extra
    photos[sha(other)] = other
    check(stored(store) == photos)


@test("mi-backup killed mid-upload: the next run resumes where the server "
      "stands, re-sending at most one chunk")
def _():
    data = big(7200, 12)
    write(os.path.join(src, "VID/long.jpg"), data)
    state = os.path.join(src, ".mediaindex", "mi-backup.state")
    p = subprocess.Popen([MI_BACKUP, "--chunk", "1", "--limit-rate", "4M",
                          src, URL], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        off = offset_on_server(s, state)
        time.sleep(0.5)
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    time.sleep(0.5)   # the server done with the chunk that was cut
    st, h, _ = s.request("HEAD", open(state).read().split()[1][len(URL):],
                         None, {"Tus-Resumable": "1.0.0"})
    off = int(h["upload-offset"])
    check(0 < off < len(data), off)
    rc, out = backup(src, URL, "--chunk", "1")
    check(rc == 0, out)
    check(f"resuming at {off} of {len(data)} bytes" in out, out)
    sent, nbytes, resumed, _, failed = summary(out)
    check((sent, resumed, failed) == (1, 1, 0), out)
    check(nbytes == len(data) - off, (nbytes, len(data) - off))
    photos[sha(data)] = data
    check(stored(store) == photos)


@test("the server killed (-9) under a running backup and restarted: the "
      "same run waits, resumes and finishes")
def _():
    global s
    root = new_root("killed")
    port = str(free_port())
    k = start(root, "--port", port)
    folder = new_root("killed-src")
    data = big(7300, 12)
    small = jpeg_bytes(7301, 64, 48)
    write(os.path.join(folder, "a.jpg"), data)
    write(os.path.join(folder, "b.jpg"), small)
    p = subprocess.Popen([MI_BACKUP, "--chunk", "1", "--limit-rate", "4M",
                          folder, f"http://127.0.0.1:{port}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        offset_on_server(k, os.path.join(folder, ".mediaindex",
                                         "mi-backup.state"))
        k.proc.kill()
        k.proc.wait()
        time.sleep(1)
        k = start(root, "--port", port)
        out = p.communicate(timeout=120)[0].decode()
    finally:
        if p.poll() is None:
            p.kill()
    check(p.returncode == 0, out)
    check("trying again" in out, out)
    sent, nbytes, resumed, _, failed = summary(out)
    check((sent, failed) == (2, 0), out)
    # At most the chunk that was on the wire is sent twice.
    check(nbytes <= len(data) + len(small) + (1 << 20), nbytes)
    check(stored(root) == {sha(data): data, sha(small): small})
    stopped_cleanly(k)


@test("nothing to reach: a clear message and exit 2")
def _():
    folder = new_root("unreachable")
    write(os.path.join(folder, "a.jpg"), jpeg_bytes(7400))
    rc, out = backup(folder, f"http://127.0.0.1:{free_port()}")
    check(rc == 2, (rc, out))
    check("Could not connect" in out or "Couldn't connect" in out, out)
    rc, out = backup(os.path.join(folder, "missing"), URL)
    check(rc == 2 and "missing" in out, (rc, out))
    p = subprocess.run([MI_BACKUP, folder], capture_output=True, timeout=30)
    check(p.returncode == 2 and b"usage" in p.stderr, p)


@test("accounts: refused without a key (401, exit 2), done with "
      "MI_BACKUP_KEY, refused with a read-only key (exit 1)")
def _():
    root = new_root("accounts")
    a = start(root)
    add_user(root, "ann", "admin")

    def key(scope):
        return add_key(root, "ann", scope, "phone-" + scope)
    folder = new_root("accounts-src")
    data = jpeg_bytes(7500, 64, 48)
    write(os.path.join(folder, "a.jpg"), data)
    url = f"http://127.0.0.1:{a.port}"
    rc, out = backup(folder, url)
    check(rc == 2 and "401" in out, (rc, out))
    reader = key("read")
    rc, out = backup(folder, url, env={"MI_BACKUP_KEY": reader})
    check(rc == 1 and "403" in out, (rc, out))
    check(stored(root) == {})
    rc, out = backup(folder, url, env={"MI_BACKUP_KEY": key("read,upload")})
    check(rc == 0, out)
    check(stored(root) == {sha(data): data})
    check(reader not in " ".join(a.log), "a key in the server's log")
    stopped_cleanly(a)


@test("through nginx over https with client_max_body_size 8m: a 64 MiB "
      "file in smaller chunks (--cacert), byte-identical")
def _():
    work_dir = new_root("nginx-8m")
    cert, key = make_cert(work_dir)
    nport = free_port()
    n = Nginx(work_dir, f"""
    server {{
        listen 127.0.0.1:{nport} ssl;
        server_name localhost;
        ssl_certificate     {cert};
        ssl_certificate_key {key};
        client_max_body_size 8m;
        location / {{
            proxy_pass http://127.0.0.1:{s.port};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}""")
    ctx = ssl.create_default_context(cafile=cert)

    def up():
        c = http.client.HTTPSConnection("127.0.0.1", nport, timeout=5,
                                        context=ctx)
        c.request("GET", "/status")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    try:
        n.ready(up)
        folder = new_root("nginx-src")
        data = big(7600, 64)
        write(os.path.join(folder, "big.jpg"), data)
        rc, out = backup(folder, f"https://127.0.0.1:{nport}", "--chunk", "32",
                         "--cacert", cert)
        check(rc == 0, out)
        check("sending 8192 KiB chunks" in out, out)
        check(summary(out)[:2] == (1, len(data)), out)
        photos[sha(data)] = data
        check(stored(store) == photos)
        # Without the certificate, nothing is sent.
        rc, out = backup(folder, f"https://127.0.0.1:{nport}")
        check(rc == 2 and "certificate" in out.lower(), (rc, out))
    finally:
        n.stop()


@test("the server stops cleanly")
def _():
    stopped_cleanly(s)


sys.exit(finish(*servers))
