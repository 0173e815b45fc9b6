#!/usr/bin/env python3
"""media-server behind a real nginx doing TLS, as README "Exposing it to the
internet" tells a newcomer to run it: a self-signed certificate made here
with openssl, nginx on a loopback port with the README's proxy settings,
media-server on 127.0.0.1 with --trusted-proxy 127.0.0.1.

    test_proxy.py MEDIA_SERVER [FIXTURE_TOOL]

Checks, over https through nginx: a login gets a Secure cookie and HSTS; the
session, an API key, an upload, CSRF with the browser's https Origin and a
share link all work through it; an X-Forwarded-For the client made up is not
believed (nginx appends the real peer, the server takes that last hop).
Directly over http (and from 127.0.0.2, an address that is not the proxy,
sending X-Forwarded-* of its own): no Secure, no HSTS, its own address in
the log.

Skips (1..0 # SKIP) when nginx or openssl is missing or nginx cannot start;
under CI=true that is a failure instead.  Prints TAP.
"""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish  # noqa: E402

CI = os.environ.get("CI") == "true"


def give_up(why):
    """nginx cannot run here: skip, or under CI fail."""
    if CI:
        print("Bail out! " + why + " (CI=true: the proxy test must run; "
              "scripts/install-deps.sh --tests installs nginx and openssl)")
        sys.exit(1)
    print("1..0 # SKIP " + why)
    sys.exit(0)


NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
     if os.access(p, os.X_OK)), None)
OPENSSL = shutil.which("openssl")
if not NGINX:
    give_up("nginx is not installed (apt-get install nginx)")
if not OPENSSL:
    give_up("openssl is not installed (apt-get install openssl)")

work_dir = new_root("proxy-tls")
cert = os.path.join(work_dir, "cert.pem")
key = os.path.join(work_dir, "key.pem")
r = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   capture_output=True, timeout=60)
if r.returncode != 0:
    give_up("openssl cannot make a certificate: " + r.stderr.decode()[-300:])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# The library, and the server (open while it scans, then accounts).
root = new_root("proxied")
img = jpeg_bytes(9101)
with open(os.path.join(root, "one.jpg"), "wb") as f:
    f.write(img)
SHA = sha(img)
srv = Server(root, "--trusted-proxy", "127.0.0.1")
srv.wait_idle()
pw_in = subprocess.run([SERVER, "--storage_dir", root, "user", "add", "alice",
                        "--role", "admin"], input=b"alice-password\n",
                       capture_output=True, timeout=30)
if pw_in.returncode != 0:
    print("Bail out! user add: " + pw_in.stderr.decode())
    sys.exit(1)

# nginx in the foreground, one process, everything under work_dir; the
# server block is the README's (certificate paths and ports aside).
NPORT = free_port()
conf = os.path.join(work_dir, "nginx.conf")
for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
    os.makedirs(os.path.join(work_dir, d), exist_ok=True)
with open(conf, "w") as f:
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
    server {{
        listen 127.0.0.1:{NPORT} ssl;
        server_name localhost;
        ssl_certificate     {cert};
        ssl_certificate_key {key};
        client_max_body_size 8g;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout 600s;
        location / {{
            proxy_pass http://127.0.0.1:{srv.port};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
""")
nginx = subprocess.Popen([NGINX, "-p", work_dir, "-c", conf,
                          "-e", os.path.join(work_dir, "logs", "error.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
ctx = ssl._create_unverified_context()
end = time.time() + 15
up = False
while time.time() < end and nginx.poll() is None:
    try:
        c = http.client.HTTPSConnection("127.0.0.1", NPORT, timeout=5,
                                        context=ctx)
        c.request("GET", "/login")
        up = c.getresponse().status == 200
        c.close()
        if up:
            break
    except OSError:
        time.sleep(0.1)
if not up:
    err = ""
    if nginx.poll() is not None:
        err = nginx.stderr.read().decode()[-400:]
    else:
        nginx.kill()
    try:
        err += open(os.path.join(work_dir, "logs", "error.log")).read()[-400:]
    except OSError:
        pass
    srv.stop()
    give_up("nginx cannot run here: " + (err.strip() or "it did not answer"))


def via_proxy(method, path, body=None, headers=None):
    c = http.client.HTTPSConnection("127.0.0.1", NPORT, timeout=30,
                                    context=ctx)
    c.request(method, path, body=body, headers=headers or {})
    resp = c.getresponse()
    data = resp.read()
    c.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def from_addr(src, method, path, body=None, headers=None):
    """Straight to the server over http, from the local address src."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30,
                                   source_address=(src, 0))
    c.request(method, path, body=body, headers=headers or {})
    resp = c.getresponse()
    data = resp.read()
    c.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def login_body():
    return json.dumps({"username": "alice",
                       "password": "alice-password"}).encode()


def logged(pred, timeout=3):
    end = time.time() + timeout
    while time.time() < end:
        if any(pred(l) for l in list(srv.log)):
            return True
        time.sleep(0.02)
    return False


JSON = {"Content-Type": "application/json"}
STATE = {}


@test("through nginx over https: login gives a Secure cookie, and HSTS")
def _():
    st, h, data = via_proxy("POST", "/api/auth/login", login_body(), JSON)
    check(st == 200, (st, data))
    c = h.get("set-cookie", "")
    check("; Secure" in c and "HttpOnly" in c and "SameSite=Lax" in c, c)
    check("max-age=" in h.get("strict-transport-security", ""), h)
    STATE["cookie"] = re.match(r"(mi_session=[^;]*)", c).group(1)
    st, h, data = via_proxy("GET", "/api/auth/me", None,
                            {"Cookie": STATE["cookie"]})
    check(st == 200 and json.loads(data)["user"] == "alice", (st, data))
    check("max-age=" in h.get("strict-transport-security", ""), h)
    st, h, _ = via_proxy("GET", "/list", None, {"Cookie": STATE["cookie"]})
    check(st == 200 and h["cache-control"] == "no-cache", (st, h))
    st, _, _ = via_proxy("GET", "/list")
    check(st == 401, st)


@test("through nginx: a made-up X-Forwarded-For is not believed")
def _():
    st, _, _ = via_proxy("GET", "/api/formats", None,
                         {"X-Forwarded-For": "203.0.113.66",
                          "Cookie": STATE["cookie"]})
    check(st == 200, st)
    # nginx sent "203.0.113.66, 127.0.0.1": the last hop is nginx's peer.
    check(logged(lambda l: l.startswith("127.0.0.1 GET /api/formats")),
          "\n".join(srv.log[-5:]))
    check(not any("203.0.113.66" in l for l in srv.log), "spoofed address")
    # Failed logins count against the real address, not the made-up one.
    # (Two: below the 5 that start the waits for 127.0.0.1.)
    for i in range(2):
        via_proxy("POST", "/api/auth/login",
                  json.dumps({"username": "alice",
                              "password": "wrong-%d-xx" % i}).encode(),
                  dict(JSON, **{"X-Forwarded-For": "198.51.100.%d" % i}))
    check(logged(lambda l: "login failed" in l and "from 127.0.0.1" in l),
          "\n".join(srv.log[-5:]))
    check(not any("198.51.100." in l for l in srv.log), "spoofed address")


@test("through nginx: API key, upload, CSRF with the https Origin, share link")
def _():
    origin = f"https://127.0.0.1:{NPORT}"
    cookie = {"Cookie": STATE["cookie"]}
    st, _, data = via_proxy("POST", "/api/keys",
                            json.dumps({"name": "phone"}).encode(),
                            dict(JSON, Origin=origin, **cookie))
    check(st == 201, (st, data))
    k = json.loads(data)["key"]
    st, _, data = via_proxy("POST", "/api/keys",
                            json.dumps({"name": "evil"}).encode(),
                            dict(JSON, Origin="https://evil.example",
                                 **cookie))
    check(st == 403, (st, data))
    body, ctype = multipart([("file", "up.png", png_bytes(9, 9, 9102))])
    st, _, data = via_proxy("PUT", "/image/up.png", body,
                            {"Content-Type": ctype,
                             "Authorization": "Bearer " + k})
    check(st == 201, (st, data))
    st, _, data = via_proxy("POST", "/api/shares",
                            json.dumps({"items": [SHA],
                                        "password": "share-pass"}).encode(),
                            dict(JSON, Origin=origin, **cookie))
    check(st == 201, (st, data))
    url = json.loads(data)["url"]
    check(via_proxy("GET", url + "/list")[0] == 401)
    st, h, data = via_proxy("POST", url + "/unlock",
                            json.dumps({"password": "share-pass"}).encode(),
                            dict(JSON, Origin=origin))
    check(st == 200 and "; Secure" in h.get("set-cookie", ""), (st, h))
    grant = re.match(r"(mi_share=[^;]*)", h["set-cookie"]).group(1)
    st, _, data = via_proxy("GET", url + "/thumbnail/" + SHA, None,
                            {"Cookie": grant})
    check(st == 200 and data[:4] == b"\x89PNG", st)


@test("directly over http, and from an address that is not the proxy: "
      "no Secure, no HSTS, X-Forwarded-* ignored")
def _():
    # From 127.0.0.2 (loopback, but not --trusted-proxy): its headers lie.
    try:
        st, h, data = from_addr("127.0.0.2", "GET", "/api/problems",
                                None, {"X-Forwarded-For": "203.0.113.77",
                                       "X-Forwarded-Proto": "https",
                                       "Cookie": STATE["cookie"]})
    except OSError as e:
        raise Skip("cannot connect from 127.0.0.2: %s" % e)
    check(st == 200, (st, data))
    check("strict-transport-security" not in h, h)
    check(logged(lambda l: l.startswith("127.0.0.2 GET /api/problems")),
          "\n".join(srv.log[-5:]))
    check(not any("203.0.113.77" in l for l in srv.log), "spoofed address")
    # A login from there: a cookie without Secure (the client used http).
    st, h, data = from_addr("127.0.0.2", "POST", "/api/auth/login",
                            login_body(),
                            dict(JSON, **{"X-Forwarded-Proto": "https"}))
    check(st == 200 and "Secure" not in h["set-cookie"] and
          "strict-transport-security" not in h, (st, h))


@test("nginx and the server stop cleanly")
def _():
    nginx.terminate()
    try:
        nginx.wait(10)
    except subprocess.TimeoutExpired:
        nginx.kill()
    stopped_cleanly(srv)


if nginx.poll() is None:
    nginx.kill()
sys.exit(finish(srv))
