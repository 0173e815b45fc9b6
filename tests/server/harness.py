"""What the HTTP tests of media-server share: TAP output, fixtures, and a
real server process on 127.0.0.1 (Python 3 standard library only).

    import harness; from harness import *     (argv: MEDIA_SERVER [FIXTURE_TOOL])
"""
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

SERVER = os.path.abspath(sys.argv[1])
FIXTURE_TOOL = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None

HEX64 = re.compile(r"^[0-9a-f]{64}$")

# ---------------------------------------------------------------------------
# TAP

_n = 0
_failed = 0


def report(ok, name, diag=None, skip=None):
    global _n, _failed
    _n += 1
    if skip:
        print(f"ok {_n} - {name} # SKIP {skip}", flush=True)
        return
    if not ok:
        _failed += 1
    print(f"{'ok' if ok else 'not ok'} {_n} - {name}", flush=True)
    if diag and not ok:
        for line in str(diag).splitlines():
            print(f"# {line}", flush=True)


class Skip(Exception):
    pass


def test(name):
    def wrap(fn):
        try:
            fn()
            report(True, name)
        except Skip as e:
            report(True, name, skip=str(e))
        except Exception:
            report(False, name, traceback.format_exc())
        return fn
    return wrap


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


# ---------------------------------------------------------------------------
# Fixtures


def png_bytes(w=8, h=8, seed=0):
    """A valid RGB PNG; different seeds give different bytes."""
    rnd = random.Random(seed)
    rows = b"".join(b"\x00" + bytes(rnd.randrange(256) for _ in range(3 * w))
                    for _ in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg_bytes(seed=0, w=64, h=48, exif=()):
    """A real baseline JPEG from the C fixtures, or JPEG magic + noise.
    exif: () or (DateTimeOriginal,) or (DateTimeOriginal, make, model) or
    (DateTimeOriginal, make, model, latitude, longitude)."""
    if FIXTURE_TOOL:
        with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
            r = subprocess.run([FIXTURE_TOOL, "jpeg", f.name, str(w), str(h),
                                str(seed), *map(str, exif)])
            if r.returncode == 0:
                return open(f.name, "rb").read()
    rnd = random.Random(seed)
    return b"\xff\xd8\xff\xe0" + bytes(rnd.randrange(256) for _ in range(2000))


def jpeg_size(data):
    """(width, height) from a JPEG's SOF marker."""
    check(data[:3] == b"\xff\xd8\xff", "not a JPEG")
    pos = 2
    while pos + 9 < len(data):
        marker, n = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return w, h
        pos += 2 + n
    raise AssertionError("no SOF in the JPEG")


def mp4_bytes(seed=0, size=3000):
    rnd = random.Random(seed)
    head = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + \
        b"isomiso2"
    return head + bytes(rnd.randrange(256) for _ in range(size))


def sha(b):
    return hashlib.sha256(b).hexdigest()


def multipart(parts, boundary=None):
    """parts: list of (name, filename or None, bytes)."""
    boundary = boundary or "----mi%016x" % random.getrandbits(64)
    out = []
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out.append(f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
                   f"Content-Type: application/octet-stream\r\n\r\n"
                   .encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------------------
# The server under test


class Server:
    def __init__(self, root, *extra, tz=None):
        """tz: the server's TZ (this process's is left as it is)."""
        self.root = root
        self.log = []
        env = None
        if tz is not None:
            env = dict(os.environ, TZ=tz)
        self.proc = subprocess.Popen(
            [SERVER, "--storage_dir", root, "--listen", "127.0.0.1",
             "--port", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.port = None
        ready = threading.Event()

        def drain():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                m = re.search(r"on http://[^ ]*:(\d+)/", line)
                if m and not self.port:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()
        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        ready.wait(20)
        if not self.port:
            self.proc.kill()
            raise RuntimeError("server did not start: " + "\n".join(self.log))

    def conn(self, timeout=20):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if not conn:
            c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json(self, method, path, body=None, headers=None):
        st, h, data = self.request(method, path, body, headers)
        return st, h, json.loads(data) if data else None

    def upload(self, name, data, filename="upload.bin", field="file",
               path_prefix="/image/"):
        body, ctype = multipart([(field, filename, data)])
        return self.json("PUT", path_prefix + name, body,
                         {"Content-Type": ctype})

    def wait_list_cache(self, timeout=30):
        """Until /list comes from its cache (gzip when asked); False if
        it never does."""
        end = time.time() + timeout
        while time.time() < end:
            st, h, _ = self.request("GET", "/list", None, {"Accept-Encoding": "gzip"})
            if st == 200 and h.get("content-encoding") == "gzip":
                return True
            time.sleep(0.1)
        return False

    def wait_idle(self, after=0.0, timeout=30):
        """Wait for a scan that finished after `after` (epoch seconds)."""
        end = time.time() + timeout
        while time.time() < end:
            st, _, j = self.json("GET", "/status")
            if (st == 200 and j["state"] == "idle" and
                    j["last_scan_finished"] and
                    j["last_scan_finished"] > after):
                return j
            time.sleep(0.05)
        raise AssertionError("no scan finished in time")

    def listing(self):
        st, h, data = self.request("GET", "/list")
        check(st == 200, f"/list status {st}")
        return json.loads(data.decode("utf-8"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(5)
        return rc


def sanitizer_reports(server):
    """UBSan does not change the exit status: look for its reports."""
    return [l for l in server.log
            if "runtime error:" in l or "Sanitizer" in l][:10]


def tree(root):
    """Every file under root, relative, except the index's own folder."""
    out = set()
    for d, dirs, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if not rel.startswith(".mediaindex" + os.sep):
                out.add(rel)
    return out


def uploads(root):
    return {p for p in tree(root) if p.startswith("uploads" + os.sep)}


def tmp_files(root):
    t = os.path.join(root, ".mediaindex", "tmp")
    return os.listdir(t) if os.path.isdir(t) else []


# ---------------------------------------------------------------------------
# Scratch folders and the command line

work = tempfile.mkdtemp(prefix="mi-server-test-")


def new_root(name):
    d = os.path.join(work, name)
    os.makedirs(d)
    return d


def run_cli(*args, timeout=10):
    r = subprocess.run([SERVER, *args], capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()




def add_user(root, name, role, password=None):
    """`media-server user add` (the password on standard input)."""
    p = subprocess.run([SERVER, "--storage_dir", root, "user", "add", name,
                        "--role", role],
                       input=((password or name + "-password-1") + "\n").encode(),
                       capture_output=True, timeout=60)
    check(p.returncode == 0, p.stderr)


def add_key(root, user, scope, name="k"):
    """`media-server key create`: the key it prints once."""
    p = subprocess.run([SERVER, "--storage_dir", root, "key", "create",
                        "--user", user, "--name", name, "--scope", scope],
                       capture_output=True, timeout=60)
    check(p.returncode == 0, p.stderr)
    m = re.search(r"\b(mik_[A-Za-z0-9_-]{20,})", p.stdout.decode())
    check(m, p.stdout)
    return m.group(1)


def put_chunked(s, name, body, ctype, piece=65536):
    """PUT body with chunked transfer encoding: (status, JSON answer)."""
    c = s.conn()
    c.putrequest("PUT", "/image/" + name)
    c.putheader("Content-Type", ctype)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    try:
        for i in range(0, len(body), piece):
            part = body[i:i + piece]
            c.send(b"%x\r\n" % len(part) + part + b"\r\n")
        c.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close once it has refused
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, json.loads(out) if out else None



def stopped_cleanly(s):
    """SIGTERM: exit 0, and no sanitizer report in its log."""
    rc = s.stop()
    check(rc == 0, f"rc {rc}\n" + "\n".join(s.log[-20:]))
    check(not sanitizer_reports(s), sanitizer_reports(s))


def finish(*servers):
    """Print the TAP plan, kill what still runs, clean up; the exit code."""
    print(f"1..{_n}", flush=True)
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
    shutil.rmtree(work, ignore_errors=True)
    return 1 if _failed else 0


# ---------------------------------------------------------------------------
# A real nginx in front (the proxy and backup tests)

CI = os.environ.get("CI") == "true"


def give_up(why):
    """What a test needs cannot run here: skip, or under CI fail."""
    if CI:
        print("Bail out! " + why + " (CI=true: this test must run; "
              "scripts/install-deps.sh --tests installs nginx and openssl)")
        sys.exit(1)
    print("1..0 # SKIP " + why)
    sys.exit(0)


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def make_cert(work_dir):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    openssl = shutil.which("openssl")
    if not openssl:
        give_up("openssl is not installed (apt-get install openssl)")
    cert = os.path.join(work_dir, "cert.pem")
    key = os.path.join(work_dir, "key.pem")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        give_up("openssl cannot make a certificate: " + r.stderr.decode()[-300:])
    return cert, key


class Nginx:
    """nginx in the foreground, one process, everything under work_dir,
    with one server block (its text, with {work_dir} already filled in).
    ready(probe) waits until probe() is true; gives up when it never is."""

    def __init__(self, work_dir, server_block):
        self.exe = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
             if os.access(p, os.X_OK)), None)
        if not self.exe:
            give_up("nginx is not installed (apt-get install nginx)")
        self.dir = work_dir
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
            os.makedirs(os.path.join(work_dir, d), exist_ok=True)
        self.conf = os.path.join(work_dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(f"""
daemon off;
master_process off;
worker_processes 1;
pid {work_dir}/nginx.pid;
error_log {work_dir}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {work_dir}/logs/access.log;
    client_body_temp_path {work_dir}/body;
    proxy_temp_path {work_dir}/proxy;
    fastcgi_temp_path {work_dir}/fastcgi;
    uwsgi_temp_path {work_dir}/uwsgi;
    scgi_temp_path {work_dir}/scgi;
{server_block}
}}
""")
        self.proc = subprocess.Popen(
            [self.exe, "-p", work_dir, "-c", self.conf, "-e",
             os.path.join(work_dir, "logs", "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def ready(self, probe, timeout=15, cleanup=None):
        end = time.time() + timeout
        while time.time() < end and self.proc.poll() is None:
            try:
                if probe():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        err = ""
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode()[-400:]
        else:
            self.proc.kill()
        try:
            err += open(os.path.join(self.dir, "logs", "error.log")).read()[-400:]
        except OSError:
            pass
        if cleanup:
            cleanup()
        give_up("nginx cannot run here: " + (err.strip() or "it did not answer"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
