#!/usr/bin/env python3
"""media-server behind a real nginx doing TLS, as README "Exposing it to the
internet" tells a newcomer to run it: a self-signed certificate made here
with openssl, nginx on a loopback port with the README's proxy settings,
media-server on 127.0.0.1 with --trusted-proxy 127.0.0.1 (and two more
networks, for the X-Forwarded-For walk).

    test_proxy.py MEDIA_SERVER [FIXTURE_TOOL]

Clients reach nginx from other loopback addresses (127.0.0.2 ...), so each
has an address of its own behind the proxy.  Checks, over https through
nginx: a login gets a Secure cookie and HSTS; the session, an API key, an
upload, CSRF with the browser's https Origin and a share link all work
through it; an X-Forwarded-For the client made up is not believed (nginx
appends the real peer, the server takes the right-most hop that is not a
trusted proxy); two clients behind the proxy have separate login lock-outs
and separate caps on uploads at once, and made-up X-Forwarded-For
addresses do not get a client out of its lock-out.  Sent straight to the
server: X-Forwarded-For walked right to left past the trusted hops, the
peer when a hop is not an address, ignored from a peer that is not
trusted.  Directly over http (and from 127.0.0.2, an address that is not
the proxy, sending X-Forwarded-* of its own): no Secure, no HSTS, its own
address in the log.  Bad --trusted-proxy lists are refused.

Skips (1..0 # SKIP) when nginx or openssl is missing or nginx cannot start;
under CI=true that is a failure instead.  Prints TAP.
"""
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish  # noqa: E402

work_dir = new_root("proxy-tls")
cert, key = make_cert(work_dir)


# The library, and the server (open while it scans, then accounts).
root = new_root("proxied")
img = jpeg_bytes(9101)
with open(os.path.join(root, "one.jpg"), "wb") as f:
    f.write(img)
SHA = sha(img)
# 10.0.0.0/8 and 2001:db8::/32 stand for further proxies in a chain.
srv = Server(root, "--trusted-proxy", "127.0.0.1, 10.0.0.0/8,2001:db8::/32")
srv.wait_idle()
pw_in = subprocess.run([SERVER, "--storage_dir", root, "user", "add", "alice",
                        "--role", "admin"], input=b"alice-password\n",
                       capture_output=True, timeout=30)
if pw_in.returncode != 0:
    print("Bail out! user add: " + pw_in.stderr.decode())
    sys.exit(1)

# nginx in the foreground (harness.Nginx); the server block is the
# README's (certificate paths and ports aside).
NPORT = free_port()
nginx = Nginx(work_dir, f"""
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
    }}""")
ctx = ssl._create_unverified_context()


def login_page_up():
    c = http.client.HTTPSConnection("127.0.0.1", NPORT, timeout=5, context=ctx)
    c.request("GET", "/login")
    up = c.getresponse().status == 200
    c.close()
    return up


nginx.ready(login_page_up, cleanup=srv.stop)


def via_proxy(method, path, body=None, headers=None, src=None):
    """Through nginx over https, from the local address src (default
    127.0.0.1, the proxy's own address: a client there is trusted too)."""
    c = http.client.HTTPSConnection("127.0.0.1", NPORT, timeout=30,
                                    context=ctx,
                                    source_address=(src, 0) if src else None)
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
    try:
        st, _, _ = via_proxy("GET", "/api/formats", None,
                             {"X-Forwarded-For": "203.0.113.66",
                              "Cookie": STATE["cookie"]}, src="127.0.0.5")
    except OSError as e:
        raise Skip("cannot connect from 127.0.0.5: %s" % e)
    check(st == 200, st)
    # nginx sent "203.0.113.66, 127.0.0.5": the right-most hop not trusted
    # is nginx's peer.
    check(logged(lambda l: l.startswith("127.0.0.5 GET /api/formats")),
          "\n".join(srv.log[-5:]))
    check(not any("203.0.113.66" in l for l in srv.log), "spoofed address")
    # Failed logins count against the real address, not the made-up one.
    # (Two: below the 5 that start the waits for 127.0.0.5.)
    for i in range(2):
        via_proxy("POST", "/api/auth/login",
                  json.dumps({"username": "alice",
                              "password": "wrong-%d-xx" % i}).encode(),
                  dict(JSON, **{"X-Forwarded-For": "198.51.100.%d" % i}),
                  src="127.0.0.5")
    check(logged(lambda l: "login failed" in l and "from 127.0.0.5" in l),
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
    k = STATE["key"] = json.loads(data)["key"]
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


def fail_until_locked_out(send):
    """Wrong passwords through send(i) (a new user name each time, so only
    the address counts) until the address must wait 3 s or more; that
    wait, or 0 when 40 tries never locked it out."""
    end = time.time() + 40
    for i in range(40):
        if time.time() > end:
            break
        st, h, data = send(i)
        if st == 429:
            wait = int(h.get("retry-after", "0"))
            if wait >= 3:
                return wait
            time.sleep(wait)
        else:
            check(st == 401, (st, data))
    return 0


def wrong_login(i, tag):
    return json.dumps({"username": "%s%d" % (tag, i),
                       "password": "not-the-password"}).encode()


@test("through nginx: two clients have their own login lock-outs; made-up "
      "X-Forwarded-For addresses do not get one out of it")
def _():
    # Each try names another made-up address on the left; nginx appends
    # 127.0.0.3, and that is the one counted.
    wait = fail_until_locked_out(lambda i: via_proxy(
        "POST", "/api/auth/login", wrong_login(i, "ghost"),
        dict(JSON, **{"X-Forwarded-For": "192.0.2.%d" % (i + 1)}),
        src="127.0.0.3"))
    check(wait >= 3, "127.0.0.3 was never locked out")
    st, h, _ = via_proxy("POST", "/api/auth/login", login_body(), JSON,
                         src="127.0.0.3")
    check(st == 429 and int(h["retry-after"]) >= 1, (st, h))
    # Another client of the same proxy, at once: not locked out.
    st, h, data = via_proxy("POST", "/api/auth/login", login_body(), JSON,
                            src="127.0.0.4")
    check(st == 200, (st, data))
    check(logged(lambda l: "login failed" in l and "from 127.0.0.3" in l),
          "\n".join(srv.log[-5:]))
    check(logged(lambda l: l.startswith("127.0.0.4 POST /api/auth/login 200")),
          "\n".join(srv.log[-5:]))
    check(not any("192.0.2." in l for l in srv.log), "spoofed address")


@test("straight to the server from a peer that is not trusted: its "
      "X-Forwarded-For is ignored, it is locked out all the same")
def _():
    wait = fail_until_locked_out(lambda i: from_addr(
        "127.0.0.7", "POST", "/api/auth/login", wrong_login(i, "spook"),
        dict(JSON, **{"X-Forwarded-For": "198.18.0.%d" % (i + 1)})))
    check(wait >= 3, "127.0.0.7 was never locked out")
    check(logged(lambda l: "login failed" in l and "from 127.0.0.7" in l),
          "\n".join(srv.log[-5:]))
    check(not any("198.18.0." in l for l in srv.log), "spoofed address")


def held_upload(src, name):
    """An upload through nginx from src: its headers and the start of its
    body, then nothing more (nginx passes it on at once: no request
    buffering), so the server has it in flight until the socket closes."""
    raw = socket.create_connection(("127.0.0.1", NPORT), timeout=30,
                                   source_address=(src, 0))
    c = ctx.wrap_socket(raw, server_hostname="localhost")
    part = ("--HOLD\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"%s\"\r\nContent-Type: image/png\r\n\r\n"
            % name).encode() + png_bytes(9, 9, 9200)[:40]
    c.sendall(("PUT /image/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Authorization: Bearer %s\r\n"
               "Content-Type: multipart/form-data; boundary=HOLD\r\n"
               "Content-Length: %d\r\n\r\n"
               % (name, NPORT, STATE["key"], len(part) + 1000000)).encode()
              + part)
    return c


@test("through nginx: two clients have their own caps on uploads at once")
def _():
    held = []
    try:
        for i in range(32):          # MAX_UPLOADS_PER_ADDR
            held.append(held_upload("127.0.0.2", "held-%d.png" % i))
        auth = {"Authorization": "Bearer " + STATE["key"]}
        # Once the server has all 32 in flight, a 33rd from 127.0.0.2 is
        # refused.
        end = time.time() + 15
        n = 0
        while True:
            n += 1
            body, ctype = multipart([("file", "over.png",
                                      png_bytes(9, 9, 9300 + n))])
            st, h, data = via_proxy("PUT", "/image/over-%d.png" % n, body,
                                    dict(auth, **{"Content-Type": ctype}),
                                    src="127.0.0.2")
            if st == 503 or time.time() > end:
                break
            time.sleep(0.1)
        check(st == 503 and "retry-after" in h, (st, data))
        check(b"127.0.0.2" in data, data)
        # Another client of the same proxy is not held back by them.
        body, ctype = multipart([("file", "other.png",
                                  png_bytes(9, 9, 9400))])
        st, _, data = via_proxy("PUT", "/image/other.png", body,
                                dict(auth, **{"Content-Type": ctype}),
                                src="127.0.0.6")
        check(st == 201, (st, data))
    finally:
        for c in held:
            c.close()


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


@test("straight to the server: X-Forwarded-For walked from the right, past "
      "the trusted hops only")
def _():
    # The server trusts 127.0.0.1, 10.0.0.0/8 and 2001:db8::/32; these come
    # from 127.0.0.1.  (headers, the client it must log)
    cases = [
        ([], "127.0.0.1"),
        (["203.0.113.9"], "203.0.113.9"),
        (["203.0.113.9, 10.1.2.3"], "203.0.113.9"),
        (["192.0.2.1, 203.0.113.9, 10.1.2.3"], "203.0.113.9"),
        (["203.0.113.13  ,  10.1.2.3"], "203.0.113.13"),
        (["10.9.9.9, 10.1.2.3"], "10.9.9.9"),        # all trusted: left-most
        (["bogus, 10.1.2.3"], "127.0.0.1"),          # malformed: the peer
        (["203.0.113.9, bogus"], "127.0.0.1"),
        (["203.0.113.12:443"], "127.0.0.1"),
        (["203.0.113.9,"], "127.0.0.1"),
        ([""], "127.0.0.1"),
        (["192.0.2.1", "203.0.113.10, 10.1.2.3"], "203.0.113.10"),
        (["203.0.113.10", "10.1.2.3"], "203.0.113.10"),
        (["2a00:1450:0::5, 2001:db8::7"], "2a00:1450::5"),
        (["::ffff:203.0.113.11"], "203.0.113.11"),
        (["2001:db8::8, 10.0.0.1"], "2001:db8::8"),
    ]
    for n, (xffs, want) in enumerate(cases):
        c = srv.conn()
        c.putrequest("GET", "/xff-case-%d" % n)
        for v in xffs:
            c.putheader("X-Forwarded-For", v)
        c.endheaders()
        c.getresponse().read()
        c.close()
        check(logged(lambda l: l.startswith("%s GET /xff-case-%d " %
                                            (want, n))),
              (xffs, want, srv.log[-2:]))


@test("idle connections: a trusted proxy is not held to 8 per address")
def _():
    def survivors(src):
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                          source_address=(src, 0))
                 for _ in range(12)]
        time.sleep(3)       # the reaper cuts beyond 8 after 1-2 s
        alive = 0
        for c in socks:
            try:
                c.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                alive += c.recv(9) == b"HTTP/1.1 "
            except OSError:
                pass
            c.close()
        return alive
    check(survivors("127.0.0.8") == 8)
    check(survivors("127.0.0.1") == 12)


@test("bad --trusted-proxy lists are refused")
def _():
    for bad in ("", "nginx", "10.0.0.1/33", "::1/129", "10.0.0.0/", "1.2.3.4,",
                ",1.2.3.4", "1.2.3.4,,5.6.7.8", "127.0.0.1:80", "10.0.0.0/8x"):
        r = subprocess.run([SERVER, "--storage_dir", root,
                            "--trusted-proxy", bad], capture_output=True,
                           timeout=10)
        check(r.returncode == 2 and b"--trusted_proxy" in r.stderr,
              (bad, r.returncode, r.stderr))


@test("nginx and the server stop cleanly")
def _():
    nginx.stop()
    stopped_cleanly(srv)


nginx.stop()
sys.exit(finish(srv))
