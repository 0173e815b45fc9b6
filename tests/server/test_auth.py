#!/usr/bin/env python3
"""HTTP tests of media-server's accounts: sessions, API keys, roles, CSRF,
throttling, the command line while the server runs, and open mode.

    test_auth.py MEDIA_SERVER [FIXTURE_TOOL]

Prints TAP.  Python 3 standard library only (sqlite3 to age sessions and
keys the way time would).
"""
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish  # noqa: E402

servers = []


def cli(root, *args, password=None, timeout=30):
    """media-server --storage_dir ROOT ARGS, the password on stdin."""
    r = subprocess.run([SERVER, "--storage_dir", root, *args],
                       input=(password + "\n").encode() if password else b"",
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def start(root, *extra):
    s = Server(root, *extra)
    servers.append(s)
    return s


def req(s, method, path, body=None, headers=None):
    return s.request(method, path, body, headers)


def jreq(s, method, path, obj=None, headers=None):
    h = dict(headers or {})
    body = None
    if obj is not None:
        body = json.dumps(obj).encode()
        h.setdefault("Content-Type", "application/json")
    st, hd, data = s.request(method, path, body, h)
    try:
        j = json.loads(data) if data else None
    except ValueError:
        j = None
    return st, hd, j


def login(s, user, pw, headers=None):
    """(status, cookie header value or None, JSON)."""
    st, h, j = jreq(s, "POST", "/api/auth/login",
                    {"username": user, "password": pw}, headers)
    cookie = None
    if "set-cookie" in h:
        m = re.match(r"(mi_session=[^;]*)", h["set-cookie"])
        cookie = m.group(1) if m else None
    return st, cookie, j, h


def logged(s, pred, timeout=3):
    """Has the server logged a line for which pred holds (within timeout)?"""
    end = time.time() + timeout
    while time.time() < end:
        if any(pred(l) for l in list(s.log)):
            return True
        time.sleep(0.02)
    return False


def key_of(out):
    k = out.strip().splitlines()[-1] if out.strip() else ""
    check(re.match(r"^mik_[A-Za-z0-9_-]{43}$", k), out)
    return k


def db(root):
    c = sqlite3.connect(os.path.join(root, ".mediaindex", "auth.sqlite3"),
                        timeout=10)
    return c


# ---------------------------------------------------------------------------
# Open mode, then the first account

root = new_root("auth")
img = jpeg_bytes(7001)
png = png_bytes(8, 8, 7002)
with open(os.path.join(root, "one.jpg"), "wb") as f:
    f.write(img)
SHA = sha(img)
srv = start(root)
srv.wait_idle()


@test("open mode: no account, the contract's routes open, a loud warning")
def _():
    check(any("NO ACCOUNTS" in l for l in srv.log), "\n".join(srv.log[:5]))
    st, _, j = jreq(srv, "GET", "/api/auth/me")
    check(st == 200 and j == {"mode": "open", "can_setup": True}, (st, j))
    check(req(srv, "GET", "/list")[0] == 200)
    check(req(srv, "GET", "/thumbnail/" + SHA)[0] == 200)
    check(req(srv, "GET", "/image/" + SHA)[0] == 200)
    st, _, body = req(srv, "GET", "/")
    check(st == 200 and b"timeline" in body, st)
    st, _, j = srv.upload("open.png", png, "open.png")
    check(st == 201, (st, j))
    check(jreq(srv, "GET", "/api/keys")[0] == 409)
    check(login(srv, "x", "yyyyyyyy")[0] == 409)
    # Open mode: no share links (everything is open already), none to open.
    st, _, j = jreq(srv, "POST", "/api/shares", {"items": [SHA]})
    check(st == 409 and "need accounts" in j["error"], (st, j))
    check(jreq(srv, "GET", "/api/shares")[0] == 409)
    check(req(srv, "GET", "/s/" + "A" * 43 + "/list")[0] == 404)


@test("first-run setup: refused through an unknown proxy and from afar")
def _():
    st, _, j = jreq(srv, "POST", "/api/auth/setup",
                    {"username": "root", "password": "rootpassword"},
                    {"X-Forwarded-For": "203.0.113.9"})
    check(st == 403, (st, j))
    st, _, j = jreq(srv, "GET", "/api/auth/me", None,
                    {"X-Real-IP": "203.0.113.9"})
    check(j["can_setup"] is False, j)
    st, _, j = jreq(srv, "POST", "/api/auth/setup",
                    {"username": "root", "password": "rootpassword"},
                    {"Origin": "http://evil.example"})
    check(st == 403, (st, j))
    st, _, j = jreq(srv, "POST", "/api/auth/setup",
                    {"username": "root", "password": "short"})
    check(st == 400 and "short" in j["error"], (st, j))
    check(jreq(srv, "GET", "/api/auth/me")[2]["mode"] == "open")


ADMIN_COOKIE = None


@test("first-run setup from this machine: an admin and a session; only once")
def _():
    global ADMIN_COOKIE
    st, h, j = jreq(srv, "POST", "/api/auth/setup",
                    {"username": "root", "password": "rootpassword"})
    check(st == 201 and j["role"] == "admin", (st, j))
    c = h["set-cookie"]
    check("HttpOnly" in c and "SameSite=Lax" in c and "Path=/" in c, c)
    check("Secure" not in c, c)
    ADMIN_COOKIE = re.match(r"(mi_session=[^;]*)", c).group(1)
    st, _, j = jreq(srv, "POST", "/api/auth/setup",
                    {"username": "root2", "password": "rootpassword"})
    check(st == 409, (st, j))
    st, _, j = jreq(srv, "GET", "/api/auth/me", None, {"Cookie": ADMIN_COOKIE})
    check(st == 200 and j["user"] == "root" and j["via"] == "session", j)
    check(req(srv, "GET", "/list")[0] == 401)


# ---------------------------------------------------------------------------
# Users and keys made by the command line while the server runs

KEYS = {}
COOKIES = {}


@test("CLI while the server runs: users added, keys made, seen at once")
def _():
    for name, role in (("mem", "member"), ("view", "viewer")):
        rc, out, err = cli(root, "user", "add", name, "--role", role,
                           password=name + "-password")
        check(rc == 0, err)
    rc, out, err = cli(root, "user", "add", "mem", password="xxxxxxxxxx")
    check(rc == 1 and "already exists" in err, err)
    rc, out, err = cli(root, "user", "add", "-bad", password="xxxxxxxxxx")
    check(rc == 2, err)
    rc, out, err = cli(root, "user", "list")
    check(rc == 0 and re.search(r"^mem +member", out, re.M) and
          re.search(r"^view +viewer", out, re.M) and
          re.search(r"^root +admin", out, re.M), out)
    for label, user, scope in (("admin", "root", "read,upload,admin"),
                               ("mem", "mem", "read,upload"),
                               ("mem-read", "mem", "read"),
                               ("mem-up", "mem", "upload"),
                               ("view", "view", "read"),
                               ("expired", "mem", "read,upload"),
                               ("revoked", "mem", "read,upload")):
        rc, out, err = cli(root, "key", "create", "--user", user, "--name",
                           label, "--scope", scope)
        check(rc == 0, err)
        KEYS[label] = key_of(out)
    rc, out, err = cli(root, "key", "create", "--user", "view", "--name", "x",
                       "--scope", "read,upload")
    check(rc == 1 and "cannot have" in err, err)
    # Age one key past its end; revoke another.
    with db(root) as c:
        c.execute("UPDATE api_keys SET expires = ? WHERE name = 'expired'",
                  (int(time.time()) - 10,))
    rc, out, err = cli(root, "key", "list")
    check(rc == 0, err)
    rid = re.search(r"^(\d+) +mem +revoked", out, re.M)
    check(rid, out)
    rc, _, err = cli(root, "key", "revoke", rid.group(1))
    check(rc == 0, err)
    check("mik_" in out and KEYS["mem"] not in out, "key list shows keys")
    for user in ("mem", "view"):
        st, cookie, j, _ = login(srv, user, user + "-password")
        check(st == 200 and cookie and j["role"] in ("member", "viewer"),
              (st, j))
        COOKIES[user] = cookie
    COOKIES["root"] = ADMIN_COOKIE


# ---------------------------------------------------------------------------
# The table: route x method x credential

EVIL = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
CREDS = {
    "none": ({}, None),
    "wrong key": ({"Authorization": "Bearer mik_" + "A" * 43}, None),
    "garbage auth": ({"Authorization": "Basic cm9vdDpyb290"}, None),
    "wrong cookie": ({"Cookie": "mi_session=" + "B" * 43}, None),
    "expired key": (lambda: {"Authorization": "Bearer " + KEYS["expired"]},
                    None),
    "revoked key": (lambda: {"x-api-key": KEYS["revoked"]}, None),
    "viewer": (lambda: {"Cookie": COOKIES["view"]}, "viewer"),
    "member": (lambda: {"Cookie": COOKIES["mem"]}, "member"),
    "admin": (lambda: {"Cookie": COOKIES["root"]}, "admin"),
    "viewer key": (lambda: {"Authorization": "Bearer " + KEYS["view"]},
                   "viewer/read"),
    "member key": (lambda: {"x-api-key": KEYS["mem"]}, "member/read,upload"),
    "member read key": (lambda: {"Authorization": "Bearer " + KEYS["mem-read"]},
                        "member/read"),
    "member upload key": (lambda: {"Authorization": "Bearer " + KEYS["mem-up"]},
                          "member/upload"),
    "admin key": (lambda: {"Authorization": "Bearer " + KEYS["admin"]},
                  "admin/read,upload,admin"),
    "member cookie, other origin": (lambda: dict(EVIL, Cookie=COOKIES["mem"]),
                                    "member/xorigin"),
    "admin key, other origin": (lambda: dict(EVIL, Authorization="Bearer " +
                                             KEYS["admin"]),
                                "admin/read,upload,admin"),
}

# (method, path, what it needs, status once allowed)
ROUTES = [
    ("GET", "/", "read", 200),
    ("HEAD", "/", "read", 200),
    ("GET", "/static/app.js", "public", 200),     # a share link's page runs it
    ("GET", "/list", "read", 200),
    ("HEAD", "/list", "read", 200),
    ("GET", "/list?format=ndjson", "read", 200),
    ("GET", "/list/date/2020-01-01", "read", 200),
    ("GET", "/list/daterange/2020-01-01/2030-01-01", "read", 200),
    ("GET", "/list?q=helsinki+2021", "read", 200),
    ("GET", "/list?q=foo:bar", "read", 400),
    ("GET", "/list/location/Helsinki", "read", 200),
    ("GET", "/list/location/Helsinki/Finland", "read", 200),
    ("GET", "/api/places", "read", 200),
    ("GET", "/api/timeline", "read", 200),
    ("GET", "/api/timeline?q=date:2021", "read", 200),
    ("GET", "/api/items/" + SHA, "read", 200),
    ("HEAD", "/api/items/" + SHA, "read", 200),
    ("GET", "/api/items/" + "0" * 64, "read", 404),
    ("GET", "/api/items/nothex", "read", 400),
    ("GET", "/status", "read", 200),
    ("GET", "/api/problems", "read", 200),
    ("GET", "/api/formats", "read", 200),
    ("GET", "/thumbnail/" + SHA, "read", 200),
    ("GET", "/thumbnail/" + SHA + "?size=512", "read", 200),
    ("GET", "/image/" + SHA, "read", 200),
    ("HEAD", "/image/" + SHA, "read", 200),
    ("GET", "/image/sha256/" + SHA, "read", 200),
    ("GET", "/image/" + "0" * 64, "read", 404),
    ("GET", "/thumbnail/nothex", "read", 400),
    ("PUT", "/image/new.png", "upload", (200, 201)),
    ("POST", "/list", "read", 405),
    ("DELETE", "/image/" + "0" * 64, "upload", 404),   # to the trash
    ("GET", "/api/changes?since=0", "read", 200),
    ("HEAD", "/api/events", "read", 200),
    ("POST", "/api/rescan", "upload", 202),
    ("GET", "/api/trash", "upload", 200),
    ("DELETE", "/api/trash", "upload", 200),
    ("DELETE", "/api/trash/" + "0" * 64, "upload", 404),
    ("POST", "/api/trash/" + "0" * 64 + "/restore", "upload", 404),
    ("PUT", "/api/trash", "upload", 405),
    ("GET", "/api/similar", "read", 200),
    ("GET", "/api/similar/" + SHA, "read", 200),
    ("GET", "/api/similar/" + "0" * 64, "read", 404),
    ("POST", "/api/similar", "read", 405),
    ("POST", "/image/x.png", "read", 405),
    ("GET", "/no/such/route", "read", 404),
    ("GET", "/a/b/c/d/e/f", "read", 404),
    ("GET", "/api/auth/me", "any", 200),
    ("GET", "/api/keys", "self", 200),
    ("POST", "/api/keys", "self", 201),
    ("DELETE", "/api/keys/999999", "self", 404),
    ("POST", "/api/auth/logout-all", "self", None),      # tested apart
    ("GET", "/api/users", "admin", 200),
    ("POST", "/api/users", "admin", 400),         # {}: tested apart
    ("PATCH", "/api/users/nobody-here", "admin", 400),
    ("DELETE", "/api/users/nobody-here", "admin", 404),
    ("PUT", "/api/users", "admin", 405),
    ("GET", "/api/shares", "share", 200),
    ("POST", "/api/shares", "share", 201),
    ("DELETE", "/api/shares/999999", "share", 404),
    ("PATCH", "/api/shares", "share", 405),
    ("GET", "/s/" + "A" * 43, "public", 404),
    ("GET", "/s/" + "A" * 43 + "/list", "public", 404),
    ("GET", "/s/" + "A" * 43 + "/thumbnail/" + SHA, "public", 404),
    ("GET", "/s/" + "A" * 43 + "/status", "read", 404),
    ("GET", "/login", "public", 200),
    ("GET", "/static/login.js", "public", 200),
    ("GET", "/static/style.css", "public", 200),
]


def expected(need, cred, method, ok_status):
    """The status a credential should get: 401, 403 or ok_status."""
    _, who = CREDS[cred]
    if need == "public":
        return ok_status
    if who is None:
        return 401
    role, _, scopes = who.partition("/")
    key = bool(scopes) and scopes != "xorigin"
    if scopes == "xorigin" and method not in ("GET", "HEAD"):
        return 403
    rank = {"viewer": 1, "member": 2, "admin": 3}[role]
    sc = set(scopes.split(",")) if key else {"read", "upload", "admin"}
    ok = {"any": True,
          "read": rank >= 1 and "read" in sc,
          "upload": rank >= 2 and "upload" in sc,
          "self": not key or "admin" in sc,
          "admin": rank >= 3 and "admin" in sc,
          "share": rank >= 2 and "upload" in sc}[need]
    return ok_status if ok else 403


@test("every route x method x credential: 401, 403 or the route's own answer")
def _():
    bad = []
    n = 0
    for method, path, need, ok_status in ROUTES:
        if ok_status is None:
            continue
        for cred, (h, _) in CREDS.items():
            h = dict(h() if callable(h) else h)
            body = None
            if method == "PUT":
                body, ctype = multipart([("file", "new.png",
                                          png_bytes(8, 8, 7100 + n))])
                h["Content-Type"] = ctype
            elif method == "POST" and path == "/api/keys":
                body = json.dumps({"name": "t%d" % n,
                                   "scopes": ["read"]}).encode()
                h["Content-Type"] = "application/json"
            elif method == "POST" and path == "/api/shares":
                body = json.dumps({"items": [SHA]}).encode()
                h["Content-Type"] = "application/json"
            elif method in ("POST", "PATCH") and path.startswith("/api/users"):
                body = b"{}"
                h["Content-Type"] = "application/json"
            n += 1
            st, hd, data = req(srv, method, path, body, h)
            want = expected(need, cred, method, ok_status)
            good = st in want if isinstance(want, tuple) else st == want
            if not good:
                bad.append(f"{method} {path} [{cred}]: {st}, expected {want}: "
                           f"{data[:120]!r}")
            if st == 401 and "www-authenticate" not in hd:
                bad.append(f"{method} {path} [{cred}]: 401 without "
                           "WWW-Authenticate")
            if st == 401 and path != "/" and method != "HEAD":
                try:
                    check("error" in json.loads(data))
                except Exception:
                    bad.append(f"{method} {path} [{cred}]: 401 not JSON")
    check(not bad, f"{len(bad)} of {n} wrong:\n" + "\n".join(bad[:40]))


@test("accounts from the gallery: an admin lists, adds, re-passwords and "
      "deletes users (/api/users)")
def _():
    adm = {"Cookie": COOKIES["root"]}
    st, _, j = jreq(srv, "POST", "/api/users",
                    {"name": "carl", "role": "member",
                     "password": "carl-password-1"}, adm)
    check(st == 201 and j == {"name": "carl", "role": "member"}, (st, j))
    st, _, j = jreq(srv, "GET", "/api/users", None, adm)
    carl = [u for u in j["users"] if u["name"] == "carl"]
    check(st == 200 and len(carl) == 1 and carl[0]["role"] == "member" and
          carl[0]["keys"] == 0 and "root" in [u["name"] for u in j["users"]],
          j)
    check(not any("pw" in k or "hash" in k for u in j["users"] for k in u), j)
    check(login(srv, "carl", "carl-password-1")[0] == 200)
    for body, want in (({"name": "carl", "role": "member",
                         "password": "another-password"}, 409),
                       ({"name": "dora", "role": "boss",
                         "password": "dora-password"}, 400),
                       ({"name": "dora", "password": "short"}, 400),
                       ({"name": "a/b", "password": "dora-password"}, 400),
                       ({"role": "member", "password": "dora-password"}, 400)):
        st, _, e = jreq(srv, "POST", "/api/users", body, adm)
        check(st == want and "error" in e, (body, st, e))
    st, _, e = jreq(srv, "PATCH", "/api/users/carl",
                    {"password": "carl-password-2"}, adm)
    check(st == 200, (st, e))
    check(login(srv, "carl", "carl-password-1")[0] == 401)
    check(login(srv, "carl", "carl-password-2")[0] == 200)
    check(jreq(srv, "PATCH", "/api/users/carl", {"password": "x"}, adm)[0]
          == 400)
    check(jreq(srv, "PATCH", "/api/users/nobody", {"password":
                                                   "long-enough-1"}, adm)[0]
          == 404)
    st, _, e = jreq(srv, "DELETE", "/api/users/root", None, adm)
    check(st == 409 and "own account" in e["error"], (st, e))
    st, _, e = jreq(srv, "DELETE", "/api/users/carl", None, adm)
    check(st == 200, (st, e))
    check(login(srv, "carl", "carl-password-2")[0] == 401)
    check(jreq(srv, "DELETE", "/api/users/carl", None, adm)[0] == 404)
    # A member, a viewer: no.
    check(jreq(srv, "GET", "/api/users", None,
               {"Cookie": COOKIES["view"]})[0] == 403)
    # Cookie-authenticated writes from another origin: no.
    st, _, _ = jreq(srv, "POST", "/api/users",
                    {"name": "evil", "password": "evil-password"},
                    dict(adm, Origin="http://evil.example"))
    check(st == 403, st)


@test("the gallery without a session is the login page (no gallery, no data)")
def _():
    st, h, body = req(srv, "GET", "/")
    check(st == 401 and b"login-form" in body and b"timeline" not in body,
          (st, body[:200]))
    check("text/html" in h["content-type"])
    st, _, body = req(srv, "GET", "/", None, {"Cookie": COOKIES["view"]})
    check(st == 200 and b"timeline" in body, st)


@test("thumbnails and originals behind a login are not for shared caches")
def _():
    st, h, _ = req(srv, "GET", "/image/" + SHA, None,
                   {"Cookie": COOKIES["view"]})
    check(st == 200 and h["cache-control"].startswith("private"), h)


# ---------------------------------------------------------------------------
# CSRF, sessions, keys over HTTP


@test("CSRF: cookie writes need the same origin; keys are exempt")
def _():
    c = COOKIES["mem"]
    body = {"name": "csrf", "scopes": ["read"]}
    for h, want in (({"Sec-Fetch-Site": "cross-site"}, 403),
                    ({"Sec-Fetch-Site": "same-site"}, 403),
                    ({"Origin": "http://evil.example"}, 403),
                    ({"Origin": "null"}, 403),
                    ({"Origin": f"http://127.0.0.1:{srv.port}.evil"}, 403),
                    ({"Sec-Fetch-Site": "same-origin",
                      "Origin": f"http://127.0.0.1:{srv.port}"}, 201),
                    ({"Origin": f"http://127.0.0.1:{srv.port}"}, 201),
                    ({}, 201)):
        st, _, j = jreq(srv, "POST", "/api/keys", body, dict(h, Cookie=c))
        check(st == want, (h, st, j))
    st, _, j = jreq(srv, "POST", "/api/keys", body,
                    dict(EVIL, Authorization="Bearer " + KEYS["admin"]))
    check(st == 201, (st, j))
    # A login from another site's page is refused too.
    st, _, _, _ = login(srv, "mem", "mem-password", EVIL)
    check(st == 403, st)


@test("API keys over HTTP: made (shown once), listed, used, revoked")
def _():
    c = {"Cookie": COOKIES["mem"]}
    st, _, j = jreq(srv, "POST", "/api/keys",
                    {"name": "phone", "scopes": ["read", "upload"]}, c)
    check(st == 201 and j["key"].startswith("mik_"), (st, j))
    key, kid = j["key"], j["id"]
    st, _, lst = jreq(srv, "GET", "/api/keys", None, c)
    mine = [k for k in lst["keys"] if k["id"] == kid]
    check(st == 200 and mine and "key" not in mine[0] and
          key.startswith(mine[0]["prefix"]), lst)
    check(all(k["name"] != "admin" for k in lst["keys"]), "another's key")
    b = {"Authorization": "Bearer " + key}
    body, ctype = multipart([("file", "k.png", png_bytes(9, 9, 7300))])
    st, _, _ = req(srv, "PUT", "/image/k.png", body,
                   dict(b, **{"Content-Type": ctype}))
    check(st == 201, st)
    st, _, j = jreq(srv, "GET", "/api/keys", None, c)
    used = [k for k in j["keys"] if k["id"] == kid][0]
    check(used["last_used"], used)
    # A viewer cannot make an upload key; a member cannot revoke another's.
    st, _, j = jreq(srv, "POST", "/api/keys",
                    {"name": "x", "scopes": ["upload"]},
                    {"Cookie": COOKIES["view"]})
    check(st == 400 and "cannot have" in j["error"], (st, j))
    st, _, j = jreq(srv, "POST", "/api/keys", {"name": "", "scopes": "read"}, c)
    check(st == 400, (st, j))
    st, _, j = jreq(srv, "POST", "/api/keys", {"name": "x", "scopes": ["fly"]},
                    c)
    check(st == 400, (st, j))
    st, _, _ = jreq(srv, "DELETE", f"/api/keys/{kid}", None,
                    {"Cookie": COOKIES["view"]})
    check(st == 404, st)
    st, _, _ = jreq(srv, "DELETE", f"/api/keys/{kid}", None, c)
    check(st == 200, st)
    check(req(srv, "GET", "/list", None, b)[0] == 401)


@test("login bodies: JSON only, capped; wrong password 401")
def _():
    st, _, _ = req(srv, "POST", "/api/auth/login",
                   b"username=mem&password=mem-password",
                   {"Content-Type": "application/x-www-form-urlencoded"})
    check(st == 415, st)
    st, _, _ = req(srv, "POST", "/api/auth/login", b"{" + b" " * 10000 + b"}",
                   {"Content-Type": "application/json"})
    check(st == 413, st)
    st, _, _ = req(srv, "POST", "/api/auth/login", b"[1,2]",
                   {"Content-Type": "application/json"})
    check(st == 400, st)
    st, _, j, h = login(srv, "mem", "not-the-password")
    check(st == 401 and "www-authenticate" in h, (st, j))
    check(logged(srv, lambda l: "login failed" in l and "127.0.0.1" in l),
          "no log line")


@test("logout ends the session; logout-all ends every one; keys stay")
def _():
    st, c1, _, _ = login(srv, "mem", "mem-password")
    st, c2, _, _ = login(srv, "mem", "mem-password")
    check(c1 and c2 and c1 != c2)
    st, h, _ = jreq(srv, "POST", "/api/auth/logout", None, {"Cookie": c1})
    check(st == 200 and "Max-Age=0" in h.get("set-cookie", ""), (st, h))
    check(req(srv, "GET", "/list", None, {"Cookie": c1})[0] == 401)
    check(req(srv, "GET", "/list", None, {"Cookie": c2})[0] == 200)
    st, _, _ = jreq(srv, "POST", "/api/auth/logout-all", None, {"Cookie": c2})
    check(st == 200)
    check(req(srv, "GET", "/list", None, {"Cookie": c2})[0] == 401)
    check(req(srv, "GET", "/list", None, {"Cookie": COOKIES["mem"]})[0] == 401)
    check(req(srv, "GET", "/list", None, {"x-api-key": KEYS["mem"]})[0] == 200)
    st, COOKIES["mem"], _, _ = login(srv, "mem", "mem-password")
    check(st == 200)


@test("sessions end when idle too long and at their absolute end")
def _():
    st, c1, _, _ = login(srv, "view", "view-password")
    st, c2, _, _ = login(srv, "view", "view-password")
    check(req(srv, "GET", "/list", None, {"Cookie": c1})[0] == 200)
    now = int(time.time())
    with db(root) as d:
        ids = [r[0] for r in d.execute(
            "SELECT id FROM sessions WHERE user_id = "
            "(SELECT id FROM users WHERE name = 'view') ORDER BY id DESC "
            "LIMIT 2")]
        d.execute("UPDATE sessions SET last_seen = ? WHERE id = ?",
                  (now - 8 * 86400, ids[1]))
        d.execute("UPDATE sessions SET expires = ? WHERE id = ?",
                  (now - 1, ids[0]))
    check(req(srv, "GET", "/list", None, {"Cookie": c1})[0] == 401)
    check(req(srv, "GET", "/list", None, {"Cookie": c2})[0] == 401)


@test("CLI while the server runs: passwd logs out, del removes keys")
def _():
    rc, _, err = cli(root, "user", "add", "temp", "--role", "member",
                     password="temp-password")
    check(rc == 0, err)
    st, c, _, _ = login(srv, "temp", "temp-password")
    check(st == 200)
    rc, out, err = cli(root, "key", "create", "--user", "temp", "--name", "k")
    k = key_of(out)
    check(req(srv, "GET", "/list", None, {"x-api-key": k})[0] == 200)
    rc, _, err = cli(root, "user", "passwd", "temp", password="temp-password2")
    check(rc == 0, err)
    check(req(srv, "GET", "/list", None, {"Cookie": c})[0] == 401)
    check(login(srv, "temp", "temp-password")[0] == 401)
    check(login(srv, "temp", "temp-password2")[0] == 200)
    check(req(srv, "GET", "/list", None, {"x-api-key": k})[0] == 200)
    rc, _, err = cli(root, "user", "del", "temp")
    check(rc == 0, err)
    check(req(srv, "GET", "/list", None, {"x-api-key": k})[0] == 401)
    rc, _, err = cli(root, "user", "del", "root")
    check(rc == 1 and "last admin" in err, err)
    rc, _, err = cli(root, "user", "del", "nobody")
    check(rc == 1 and "no user" in err, err)


@test("revoked from outside the server (CLI, sqlite3): refused within 0.3 s")
def _():
    def until_refused(k, timeout=3.0):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if req(srv, "GET", "/status", None, {"x-api-key": k})[0] == 401:
                return time.perf_counter() - t0
            time.sleep(0.002)
        return None
    times = []
    for i in range(3):
        rc, out, err = cli(root, "key", "create", "--user", "mem", "--name",
                           "rv%d" % i, "--scope", "read")
        k = key_of(out)
        for _ in range(20):          # cached, and the store quiet again
            check(req(srv, "GET", "/status", None, {"x-api-key": k})[0] == 200)
        time.sleep(0.3)
        if i < 2:
            rc, out, _ = cli(root, "key", "list")
            kid = re.search(r"^(\d+) +mem +rv%d " % i, out, re.M).group(1)
            rc, _, err = cli(root, "key", "revoke", kid)
            check(rc == 0, err)
        else:
            with db(root) as d:
                d.execute("DELETE FROM api_keys WHERE name = 'rv2'")
        times.append(until_refused(k))
    print("# revocation seen after " + ", ".join(
        "%.1f ms" % (t * 1e3) if t is not None else "never" for t in times) +
        " (CLI, CLI, sqlite3)")
    check(all(t is not None and t < 0.3 for t in times), times)


@test("the store is private: mode 0600, no token or password in clear")
def _():
    p = os.path.join(root, ".mediaindex", "auth.sqlite3")
    check(os.stat(p).st_mode & 0o777 == 0o600, oct(os.stat(p).st_mode))
    blob = b""
    for suffix in ("", "-wal"):
        if os.path.exists(p + suffix):
            blob += open(p + suffix, "rb").read()
    for k in KEYS.values():
        check(k[4:].encode() not in blob, "a key in clear")
    check(COOKIES["view"].split("=")[1].encode() not in blob, "a token")
    check(b"view-password" not in blob and b"$argon2id$" in blob)


# ---------------------------------------------------------------------------
# Brute force, the dummy hash, the proxy


@test("brute force: 429 with Retry-After per address, then per user")
def _():
    r2 = new_root("brute")
    rc, _, err = cli(r2, "user", "add", "alice", "--role", "admin",
                     password="alice-password")
    check(rc == 0, err)
    s = start(r2, "--trusted-proxy", "127.0.0.1")
    codes = []
    for i in range(7):
        st, _, _, h = login(s, "alice", "wrong%d-guess" % i,
                            {"X-Forwarded-For": "198.51.100.7"})
        codes.append(st)
    check(codes[:5] == [401] * 5 and codes[5] == 429, codes)
    st, _, j, h = login(s, "alice", "alice-password",
                        {"X-Forwarded-For": "198.51.100.7"})
    check(st == 429 and int(h["retry-after"]) >= 1, (st, h))
    check(logged(s, lambda l: "198.51.100.7" in l and "login failed" in l),
          "\n".join(s.log[-5:]))
    # Another address is not blocked; the right password clears its count.
    st, _, _, _ = login(s, "alice", "alice-password",
                        {"X-Forwarded-For": "198.51.100.8"})
    check(st == 200, st)
    # One user, guessed from many addresses.
    codes = []
    for i in range(12):
        st, _, _, _ = login(s, "bob", "guess", {"X-Forwarded-For":
                                                "192.0.2.%d" % (i + 1)})
        codes.append(st)
    check(codes[:10] == [401] * 10 and 429 in codes[10:], codes)


@test("unknown users cost what known ones do (dummy hash)")
def _():
    r3 = new_root("timing")
    rc, _, err = cli(r3, "user", "add", "carol", password="carol-password")
    check(rc == 0, err)
    s = start(r3, "--trusted-proxy", "127.0.0.1")
    login(s, "warmup", "x" * 8, {"X-Forwarded-For": "10.9.9.9"})
    known, unknown = [], []
    for i in range(8):
        for name, out in (("carol", known), ("nobody%d" % i, unknown)):
            t = time.perf_counter()
            st, _, _, _ = login(s, name, "wrong-password",
                                {"X-Forwarded-For": "10.0.%d.%d" %
                                 (i, len(out))})
            out.append(time.perf_counter() - t)
            check(st == 401, st)
    k, u = statistics.median(known), statistics.median(unknown)
    print(f"# login: known user {k * 1e3:.1f} ms, unknown {u * 1e3:.1f} ms "
          "(median of 8)")
    check(0.6 < u / k < 1.6, (k, u))


@test("behind the trusted proxy over HTTPS: Secure cookie and HSTS")
def _():
    r4 = new_root("proxy")
    rc, _, err = cli(r4, "user", "add", "dave", password="dave-password")
    check(rc == 0, err)
    s = start(r4, "--trusted-proxy", "127.0.0.1")
    st, _, _, h = login(s, "dave", "dave-password",
                        {"X-Forwarded-Proto": "https",
                         "X-Forwarded-For": "203.0.113.5"})
    check(st == 200 and "; Secure" in h["set-cookie"], h)
    check("max-age" in h.get("strict-transport-security", ""), h)
    check(logged(s, lambda l: l.startswith("203.0.113.5 POST /api/auth/login")),
          "\n".join(s.log[-5:]))
    # A server without --trusted-proxy believes none of it.
    r5 = new_root("noproxy")
    cli(r5, "user", "add", "erin", password="erin-password")
    s2 = start(r5)
    st, _, _, h = login(s2, "erin", "erin-password",
                        {"X-Forwarded-Proto": "https",
                         "X-Forwarded-For": "203.0.113.5"})
    check(st == 200 and "Secure" not in h["set-cookie"] and
          "strict-transport-security" not in h, h)


@test("the last account deleted: open again, said in the log")
def _():
    r6 = new_root("reopen")
    cli(r6, "user", "add", "fay", password="fay-password")
    s = start(r6)
    check(req(s, "GET", "/list")[0] == 401)
    rc, _, err = cli(r6, "user", "del", "fay")
    check(rc == 0, err)
    check(req(s, "GET", "/list")[0] == 200)
    check(logged(s, lambda l: "OPEN again" in l), "\n".join(s.log[-5:]))


# ---------------------------------------------------------------------------
# Share links

SH = {}          # name -> sha of the share fixtures


def share_setup():
    """A store of its own: three dated photos (one with GPS), a member, a
    second member and a viewer."""
    r = new_root("share")
    for name, seed, date in (("a.jpg", 7401, "2021:05:01 10:00:00"),
                             ("b.jpg", 7402, "2021:06:15 10:00:00"),
                             ("c.jpg", 7403, "2022:01:01 10:00:00")):
        data = jpeg_bytes(seed, 64, 48, (date, "Acme", "Cam 1"))
        path = os.path.join(r, "private-folder", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        if name == "a.jpg":
            g = subprocess.run(["exiftool", "-q", "-overwrite_original",
                                "-GPSLatitude=48.8584", "-GPSLatitudeRef=N",
                                "-GPSLongitude=2.2945", "-GPSLongitudeRef=E",
                                path], capture_output=True)
            if g.returncode != 0:
                raise Skip("exiftool cannot add GPS: " + g.stderr.decode())
            data = open(path, "rb").read()
        SH[name[0]] = sha(data)
    s = start(r)
    s.wait_idle()            # while it is open: /status needs no login
    for name, role in (("ann", "member"), ("bob", "member"),
                       ("vic", "viewer"), ("adm", "admin")):
        rc, _, err = cli(r, "user", "add", name, "--role", role,
                         password=name + "-password")
        check(rc == 0, err)
    return r, s


SHARE = {}


def share(cookie, obj):
    st, _, j = jreq(SHARE["srv"], "POST", "/api/shares", obj,
                    {"Cookie": cookie})
    check(st == 201, (st, j))
    check(re.match(r"^/s/[A-Za-z0-9_-]{43}$", j["url"]) and
          j["url"] == "/s/" + j["token"], j)
    return j


def ndjson(data):
    return [json.loads(l) for l in data.decode().splitlines() if l]


@test("share links: made by a member (not a viewer, not a read key), shown once")
def _():
    try:
        r, s = share_setup()
    except Skip:
        if os.environ.get("CI") == "true":
            raise AssertionError("exiftool missing under CI")
        raise
    SHARE["root"], SHARE["srv"] = r, s
    for u in ("ann", "bob", "vic", "adm"):
        st, c, _, _ = login(s, u, u + "-password")
        check(st == 200, st)
        SHARE[u] = c
    st, _, j = jreq(s, "POST", "/api/shares", {"items": [SH["a"]]},
                    {"Cookie": SHARE["vic"]})
    check(st == 403, (st, j))
    rc, out, err = cli(r, "key", "create", "--user", "ann", "--name", "r",
                       "--scope", "read")
    st, _, j = jreq(s, "POST", "/api/shares", {"items": [SH["a"]]},
                    {"Authorization": "Bearer " + key_of(out)})
    check(st == 403, (st, j))
    j = share(SHARE["ann"], {"items": [SH["a"]], "name": "Paris"})
    SHARE["one"] = j
    check(j["kind"] == "items" and j["count"] == 1 and j["gps"] is False and
          j["originals"] is False and j["password"] is False and
          j["expires"] is None and j["name"] == "Paris", j)
    st, _, lst = jreq(s, "GET", "/api/shares", None, {"Cookie": SHARE["ann"]})
    check(st == 200 and [x["id"] for x in lst["shares"]] == [j["id"]], lst)
    check("token" not in lst["shares"][0] and "url" not in lst["shares"][0])
    st, _, lst = jreq(s, "GET", "/api/shares", None, {"Cookie": SHARE["bob"]})
    check(st == 200 and lst["shares"] == [], lst)
    # Everybody's links, with their owners: an admin's session (or a key
    # with the admin scope) only.
    st, _, lst = jreq(s, "GET", "/api/shares?all=1", None,
                      {"Cookie": SHARE["adm"]})
    check(st == 200 and [(x["id"], x["owner"]) for x in lst["shares"]] ==
          [(j["id"], "ann")], (st, lst))
    st, _, lst = jreq(s, "GET", "/api/shares", None, {"Cookie": SHARE["adm"]})
    check(st == 200 and lst["shares"] == [], lst)
    st, _, e = jreq(s, "GET", "/api/shares?all=1", None,
                    {"Cookie": SHARE["bob"]})
    check(st == 403, (st, e))
    st, _, e = jreq(s, "GET", "/api/shares?all=yes", None,
                    {"Cookie": SHARE["adm"]})
    check(st == 400, (st, e))
    for scope, want in (("read,upload", 403), ("read,upload,admin", 200)):
        rc, out, err = cli(r, "key", "create", "--user", "adm", "--name",
                           "k-" + scope, "--scope", scope)
        check(rc == 0, err)
        st, _, e = jreq(s, "GET", "/api/shares?all=1", None,
                        {"Authorization": "Bearer " + key_of(out)})
        check(st == want, (scope, st, e))
    # Bad requests.
    for body, what in (({"items": []}, "1 to"),
                       ({"items": ["xyz"]}, "malformed"),
                       ({"items": ["0" * 64]}, "no item"),
                       ({"items": "abc"}, "items"),
                       ({"from": "2021-13-01"}, "range"),
                       ({"from": "2022-01-01", "to": "2021-01-01"}, "ends"),
                       ({}, "range"),
                       ({"items": [SH["a"]], "expires_in": -5}, "expires_in"),
                       ({"items": [SH["a"]], "expires": 1000}, "expires"),
                       ({"items": [SH["a"]], "password": "short"}, "short"),
                       ({"items": [SH["a"]], "name": "a\nb"}, "name")):
        st, _, e = jreq(s, "POST", "/api/shares", body,
                        {"Cookie": SHARE["ann"]})
        check(st == 400 and what in e["error"], (body, st, e))
    st, _, e = jreq(s, "POST", "/api/shares",
                    {"items": [SH["a"]] * 10001}, {"Cookie": SHARE["ann"]})
    check(st == 400, (st, e))
    # Too large a body is refused from its Content-Length, before it is sent.
    c = s.conn()
    c.putrequest("POST", "/api/shares")
    for k, v in (("Cookie", SHARE["ann"]), ("Content-Type", "application/json"),
                 ("Content-Length", "800000")):
        c.putheader(k, v)
    c.endheaders()
    st = c.getresponse().status
    c.close()
    check(st == 413, st)


@test("share link: its page, its item, and nothing else (a stolen link)")
def _():
    s, t = SHARE["srv"], SHARE["one"]["token"]
    base = "/s/" + t
    st, h, body = req(s, "GET", base)
    check(st == 200 and b"timeline" in body and "text/html" in
          h["content-type"] and h["referrer-policy"] == "no-referrer", st)
    check(req(s, "GET", "/static/app.js")[0] == 200)
    st, h, data = req(s, "GET", base + "/list")
    rows = ndjson(data)
    check(st == 200 and [e["sha256"] for e in rows] == [SH["a"]], data)
    check(h["cache-control"] in ("no-store", "no-cache"), h)
    e = rows[0]
    check("latitude" not in e and "longitude" not in e, e)
    check("city" not in e and "country_code" not in e, e)
    check(e["file_path"] == "a.jpg" and "private-folder" not in data.decode(),
          e)
    st, _, j = jreq(s, "GET", base + "/info")
    check(st == 200 and j["locked"] is False and j["count"] == 1 and
          j["name"] == "Paris" and j["gps"] is False, j)
    for path, want in (("/thumbnail/" + SH["a"], 200),
                       ("/thumbnail/" + SH["a"] + "?size=512", 200),
                       ("/preview/" + SH["a"], 200),
                       ("/image/" + SH["a"], 403),       # no originals
                       ("/thumbnail/" + SH["b"], 404),
                       ("/preview/" + SH["b"], 404),
                       ("/image/" + SH["b"], 404),
                       ("/thumbnail/" + "0" * 64, 404),
                       ("/image/sha256/" + SH["a"], 401),
                       ("/thumbnail/nothex", 400),
                       ("/status", 401), ("/api/problems", 401),
                       ("/../../list", 401), ("/list/x", 401)):
        st, h, data = req(s, "GET", base + path)
        check(st == want, (path, st, data[:100]))
        if st == 200:
            check(h["cache-control"].startswith("private"), h)
    st, _, data = req(s, "GET", base + "/thumbnail/" + SH["a"])
    check(data[:4] == b"\x89PNG", data[:8])
    st, _, data = req(s, "GET", base + "/preview/" + SH["a"])
    check(data[:2] == b"\xff\xd8" and b"Exif" not in data[:4096] and
          b"GPS" not in data, "the preview carries EXIF")
    # The token is no credential anywhere else.
    for h in ({"Authorization": "Bearer " + t}, {"x-api-key": t},
              {"Authorization": "Bearer mik_" + t},
              {"Cookie": "mi_session=" + t}, {"Cookie": "mi_share=" + t},
              {}):
        for path in ("/list", "/list?format=ndjson", "/thumbnail/" + SH["b"],
                     "/image/" + SH["a"], "/image/" + SH["b"],
                     "/preview/" + SH["c"], "/status", "/api/shares", "/"):
            st, _, _ = req(s, "GET", path, None, h)
            check(st == 401, (path, h, st))
    # Another token, or one letter changed: nothing.
    bad = t[:-1] + ("A" if t[-1] != "A" else "B")
    for tok in (bad, t + "A", t[:-1], "A" * 43, "%00" + t[3:]):
        st, _, _ = req(s, "GET", "/s/" + tok + "/list")
        check(st == 404, (tok, st))
    # The log keeps no token; the store keeps only its hash.
    time.sleep(0.2)
    check(not any(t in l for l in s.log), "the token in the log")
    check(any("/s/" + t[:6] + "..." in l for l in s.log), s.log[-3:])
    p = os.path.join(SHARE["root"], ".mediaindex", "auth.sqlite3")
    blob = b"".join(open(p + x, "rb").read() for x in ("", "-wal")
                    if os.path.exists(p + x))
    check(t.encode() not in blob, "a share token in clear")


@test("share links: a selection with GPS and originals; a date range")
def _():
    s = SHARE["srv"]
    j = share(SHARE["ann"], {"items": [SH["a"], SH["b"], SH["a"]], "gps": True,
                             "originals": True})
    check(j["count"] == 2, j)
    base = j["url"]
    st, _, data = req(s, "GET", base + "/list")
    rows = {e["sha256"]: e for e in ndjson(data)}
    check(set(rows) == {SH["a"], SH["b"]}, rows)
    check(abs(rows[SH["a"]]["latitude"] - 48.8584) < 1e-3, rows[SH["a"]])
    check(rows[SH["a"]].get("city") == "Paris", rows[SH["a"]])
    st, _, data = req(s, "GET", base + "/image/" + SH["b"])
    check(st == 200 and sha(data) == SH["b"], st)
    check(req(s, "GET", base + "/image/" + SH["c"])[0] == 404)
    # A range: May and June 2021 hold a and b; c (2022) is not in it.
    j = share(SHARE["ann"], {"from": "2021-05-01", "to": "2021-06-30"})
    check(j["kind"] == "range" and j["from"] == "2021-05-01", j)
    base = j["url"]
    st, _, data = req(s, "GET", base + "/list")
    rows = ndjson(data)
    check(st == 200 and sorted(e["sha256"] for e in rows) ==
          sorted([SH["a"], SH["b"]]), data)
    check(all("latitude" not in e for e in rows), rows)
    # The place would betray the position: hidden with it.
    check(all("city" not in e and "country" not in e and "region" not in e
              and "country_code" not in e for e in rows), rows)
    check(req(s, "GET", base + "/thumbnail/" + SH["b"])[0] == 200)
    check(req(s, "GET", base + "/thumbnail/" + SH["c"])[0] == 404)
    check(req(s, "GET", base + "/image/" + SH["a"])[0] == 403)
    j = share(SHARE["ann"], {"from": "2022-01-01", "to": ""})
    st, _, data = req(s, "GET", j["url"] + "/list")
    check([e["sha256"] for e in ndjson(data)] == [SH["c"]], data)


@test("share links: expiry (set, checked, refused in the past)")
def _():
    s = SHARE["srv"]
    j = share(SHARE["ann"], {"items": [SH["c"]], "expires_in": 2})
    check(abs(j["expires"] - (time.time() + 2)) < 2, j)
    check(req(s, "GET", j["url"] + "/list")[0] == 200)
    time.sleep(2.2)
    check(req(s, "GET", j["url"] + "/list")[0] == 404)
    check(req(s, "GET", j["url"] + "/thumbnail/" + SH["c"])[0] == 404)
    st, _, body = req(s, "GET", j["url"])
    check(st == 404 and b"timeline" in body, st)     # the page says so
    j = share(SHARE["ann"], {"items": [SH["c"]],
                             "expires": int(time.time()) + 3600})
    check(req(s, "GET", j["url"] + "/list")[0] == 200)
    with db(SHARE["root"]) as d:
        d.execute("UPDATE shares SET expires = ? WHERE id = ?",
                  (int(time.time()) - 1, j["id"]))
    check(req(s, "GET", j["url"] + "/list")[0] == 404)
    st, _, lst = jreq(s, "GET", "/api/shares", None, {"Cookie": SHARE["ann"]})
    mine = [x for x in lst["shares"] if x["id"] == j["id"]][0]
    check(mine["expired"] is True, mine)


@test("share links: a password (argon2id, never stored in clear), unlock")
def _():
    s, r = SHARE["srv"], SHARE["root"]
    j = share(SHARE["ann"], {"items": [SH["b"]], "password": "open-sesame"})
    check(j["password"] is True, j)
    base, tok = j["url"], j["token"]
    st, h, e = jreq(s, "GET", base + "/list")
    check(st == 401 and e["password_required"] is True and
          "www-authenticate" in h, (st, e))
    check(req(s, "GET", base + "/thumbnail/" + SH["b"])[0] == 401)
    st, _, e = jreq(s, "GET", base + "/info")
    check(st == 200 and e == {"locked": True}, e)
    check(req(s, "GET", base)[0] == 200)       # the page asks for it
    st, h, e = jreq(s, "POST", base + "/unlock", {"password": "wrong-one"})
    check(st == 401 and "set-cookie" not in h, (st, e))
    st, h, e = jreq(s, "POST", base + "/unlock", {"password": "open-sesame"},
                    {"Origin": "http://evil.example"})
    check(st == 403, (st, e))
    st, h, e = jreq(s, "POST", base + "/unlock", {"password": "open-sesame"})
    check(st == 200, (st, e))
    c = h["set-cookie"]
    check(f"Path=/s/{tok}" in c and "HttpOnly" in c and "SameSite=Lax" in c,
          c)
    grant = re.match(r"(mi_share=[^;]*)", c).group(1)
    check(req(s, "GET", base + "/list", None, {"Cookie": grant})[0] == 200)
    check(req(s, "GET", base + "/thumbnail/" + SH["b"], None,
              {"Cookie": grant})[0] == 200)
    # The grant is for this link only, and opens nothing else.
    j2 = share(SHARE["ann"], {"items": [SH["b"]], "password": "open-sesame"})
    check(req(s, "GET", j2["url"] + "/list", None, {"Cookie": grant})[0] == 401)
    check(req(s, "GET", "/list", None, {"Cookie": grant})[0] == 401)
    forged = grant[:-2] + ("AA" if grant[-2:] != "AA" else "BB")
    check(req(s, "GET", base + "/list", None, {"Cookie": forged})[0] == 401)
    with db(r) as d:
        (ph,) = d.execute("SELECT pwhash FROM shares WHERE id = ?",
                          (j["id"],)).fetchone()
    check(ph.startswith("$argon2id$"), ph)
    p = os.path.join(r, ".mediaindex", "auth.sqlite3")
    blob = b"".join(open(p + x, "rb").read() for x in ("", "-wal")
                    if os.path.exists(p + x))
    check(b"open-sesame" not in blob, "the link's password in clear")
    # Guessing is throttled like logins.
    codes = [jreq(s, "POST", j2["url"] + "/unlock",
                  {"password": "guess-%d" % i})[0] for i in range(7)]
    check(codes[-1] == 429, codes)
    # A restart keeps what was unlocked (the grants' key is the store's).
    s.stop()
    s = SHARE["srv"] = start(r)
    check(req(s, "GET", base + "/list", None, {"Cookie": grant})[0] == 200)
    check(req(s, "GET", base + "/list", None, {"Cookie": forged})[0] == 401)
    SHARE["grant"], SHARE["locked"] = grant, j


@test("share links: revoked by the owner (or an admin), at once")
def _():
    s = SHARE["srv"]
    j = SHARE["one"]
    base = j["url"]
    check(req(s, "GET", base + "/thumbnail/" + SH["a"])[0] == 200)
    for who, want in (("bob", 404), ("vic", 403)):
        st, _, e = jreq(s, "DELETE", "/api/shares/%d" % j["id"], None,
                        {"Cookie": SHARE[who]})
        check(st == want, (who, st, e))
    st, _, e = jreq(s, "DELETE", "/api/shares/%d" % j["id"], None,
                    {"Cookie": SHARE["ann"]})
    check(st == 200, (st, e))
    for path in ("/list", "/info", "/thumbnail/" + SH["a"],
                 "/preview/" + SH["a"]):
        check(req(s, "GET", base + path)[0] == 404, path)
    check(jreq(s, "DELETE", "/api/shares/%d" % j["id"], None,
               {"Cookie": SHARE["ann"]})[0] == 404)
    # An admin may revoke anybody's (the unlocked one: its grant dies too).
    lk = SHARE["locked"]
    st, _, _ = jreq(s, "DELETE", "/api/shares/%d" % lk["id"], None,
                    {"Cookie": SHARE["adm"]})
    check(st == 200, st)
    check(req(s, "GET", lk["url"] + "/list", None,
              {"Cookie": SHARE["grant"]})[0] == 404)
    st, _, e = jreq(s, "DELETE", "/api/shares/abc", None,
                    {"Cookie": SHARE["ann"]})
    check(st == 400, st)


@test("share links go with their owner's account")
def _():
    s, r = SHARE["srv"], SHARE["root"]
    j = share(SHARE["bob"], {"items": [SH["c"]]})
    check(req(s, "GET", j["url"] + "/list")[0] == 200)
    rc, _, err = cli(r, "user", "del", "bob")
    check(rc == 0, err)
    check(req(s, "GET", j["url"] + "/list")[0] == 404)


@test("servers stop cleanly, no sanitizer report")
def _():
    for s in servers:
        stopped_cleanly(s)


sys.exit(finish(*servers))
