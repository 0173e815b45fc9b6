#!/usr/bin/env python3
"""Phone and camera formats through a real media-server: HEIC, AVIF, WebP,
TIFF and video, decoded by mi-decode in its sandboxed process.

    test_formats.py MEDIA_SERVER

The fixtures are made here with Debian's tools (ffmpeg, heif-enc, cwebp,
exiftool: `scripts/install-deps.sh --tests`), each from one picture whose
top half is red and bottom half blue, so a thumbnail shows which way up it
was drawn.  With MI_TEST_CORPUS, the corpus's HEIC photos too.
Prints TAP.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from harness import finish, stopped_cleanly  # noqa: E402

TOOLS = {t: shutil.which(t) for t in ("ffmpeg", "heif-enc", "cwebp", "exiftool")}
CORPUS = os.environ.get("MI_TEST_CORPUS")


def tool(*args, **kw):
    if not TOOLS.get(args[0]) and os.environ.get("CI"):
        raise AssertionError(f"{args[0]} is not installed, and CI must run every format")
    if not TOOLS.get(args[0]):
        raise Skip(f"{args[0]} is not installed (scripts/install-deps.sh --tests)")
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120, **kw)


def png_pixels(data):
    """(w, h, rows of RGBA bytes) of an 8-bit RGBA PNG, as the server writes."""
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            check(depth == 8 and ctype == 6, "not 8-bit RGBA")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, rows, prev, stride = zlib.decompress(idat), [], bytearray(w * 4), w * 4
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b = prev[i]
            c = prev[i - 4] if i >= 4 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows


def local_epoch(*t):
    return int(time.mktime((*t, 0, 0, -1)))


def colour(px, x, y):
    r, g, b, a = px[2][y][4 * x:4 * x + 4]
    if a < 128:
        return "clear"
    if r > 150 and b < 100:
        return "red"
    if b > 150 and r < 100:
        return "blue"
    return f"({r},{g},{b})"


def opaque_box(px):
    """The bounding box (x0, y0, x1, y1) of the non-transparent pixels."""
    w, h, rows = px
    xs = [x for x in range(w) if any(rows[y][4 * x + 3] > 128 for y in range(0, h, 4))]
    ys = [y for y in range(h) if any(rows[y][4 * x + 3] > 128 for x in range(0, w, 4))]
    return xs[0], ys[0], xs[-1] + 1, ys[-1] + 1


def red_over_blue(path, w=320, h=160):
    """A PNG (w x h) whose top half is red and bottom half blue."""
    row_r = b"\0" + b"\xd0\x10\x10\xff" * w
    row_b = b"\0" + b"\x10\x10\xd0\xff" * w
    raw = row_r * (h // 2) + row_b * (h - h // 2)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tiff_red_over_blue(path, orientation, w=64, h=32):
    """An uncompressed RGB TIFF with an Orientation tag, written by hand."""
    pix = (b"\xd0\x10\x10" * w) * (h // 2) + (b"\x10\x10\xd0" * w) * (h - h // 2)
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, None), (259, 3, 1, 1),
            (262, 3, 1, 2), (273, 4, 1, None), (274, 3, 1, orientation),
            (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(pix)), (284, 3, 1, 1)]
    ifd_off = 8
    extra_off = ifd_off + 2 + 12 * len(tags) + 4
    bps_off, pix_off = extra_off, extra_off + 6
    out = b"II*\0" + struct.pack("<I", ifd_off) + struct.pack("<H", len(tags))
    for tag, typ, n, val in tags:
        if tag == 258:
            val = bps_off
            out += struct.pack("<HHII", tag, typ, n, val)
        elif tag == 273:
            out += struct.pack("<HHII", tag, typ, n, pix_off)
        elif typ == 3:
            out += struct.pack("<HHIHH", tag, typ, n, val, 0)
        else:
            out += struct.pack("<HHII", tag, typ, n, val)
    out += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8) + pix
    with open(path, "wb") as f:
        f.write(out)


def dng(path, preview_jpeg=None, orientation=1):
    """A minimal DNG written by hand: IFD0 a 64 x 32 red-over-blue preview
    (uncompressed RGB, or the JPEG given), a SubIFD of 128 x 64 16-bit CFA
    data, DNG tags, a make, model and date."""
    W, H = 64, 32
    prev = (b"\xd0\x10\x10" * W) * (H // 2) + (b"\x10\x10\xd0" * W) * (H // 2)
    RW, RH = 128, 64
    raw = b"\x00\x08" * (RW * RH)
    entries0 = []  # (tag, type, count, value-bytes)
    def e(lst, tag, typ, vals):
        fmt = {1: "B", 2: "s", 3: "H", 4: "I", 10: "ii"}[typ]
        if typ == 2:
            b = vals.encode() + b"\0"; n = len(b)
        elif typ == 10:
            b = b"".join(struct.pack("<ii", *v) for v in vals); n = len(vals)
        else:
            b = b"".join(struct.pack("<" + fmt, v) for v in vals); n = len(vals)
        lst.append((tag, typ, n, b))
    pdata = preview_jpeg if preview_jpeg else prev
    ifd0, sub = [], []
    e(ifd0, 254, 4, [1]); e(ifd0, 256, 4, [W]); e(ifd0, 257, 4, [H])
    e(ifd0, 258, 3, [8, 8, 8]); e(ifd0, 259, 3, [7 if preview_jpeg else 1]); e(ifd0, 262, 3, [6 if preview_jpeg else 2])
    e(ifd0, 271, 2, "TestMake"); e(ifd0, 272, 2, "TestModel")
    e(ifd0, 273, 4, [0]); e(ifd0, 274, 3, [orientation]); e(ifd0, 277, 3, [3]); e(ifd0, 278, 4, [H]); e(ifd0, 279, 4, [len(pdata)])
    e(ifd0, 306, 2, "2019:03:04 05:06:07")
    e(ifd0, 330, 4, [0])
    e(ifd0, 50706, 1, [1, 4, 0, 0]); e(ifd0, 50708, 2, "TestMake TestModel")
    e(ifd0, 50721, 10, [(1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1)])
    e(ifd0, 50778, 3, [21])
    e(sub, 254, 4, [0]); e(sub, 256, 4, [RW]); e(sub, 257, 4, [RH]); e(sub, 258, 3, [16]); e(sub, 259, 3, [1])
    e(sub, 262, 3, [32803]); e(sub, 273, 4, [0]); e(sub, 277, 3, [1]); e(sub, 278, 4, [RH]); e(sub, 279, 4, [len(raw)])
    e(sub, 33421, 3, [2, 2]); e(sub, 33422, 1, [0, 1, 1, 2]); e(sub, 50717, 4, [4095])
    # layout: header, ifd0, sub, extra data, preview, raw
    def ifd_size(l): return 2 + 12 * len(l) + 4
    off0 = 8; offs = off0 + ifd_size(ifd0); extra = offs + ifd_size(sub)
    def pack(l, extra_off, fix):
        out = struct.pack("<H", len(l)); data = b""
        for tag, typ, n, b in sorted(l):
            b = fix.get(tag, b)
            if len(b) <= 4:
                out += struct.pack("<HHI", tag, typ, n) + b.ljust(4, b"\0")
            else:
                out += struct.pack("<HHII", tag, typ, n, extra_off + len(data)); data += b
                if len(data) % 2: data += b"\0"
        return out + struct.pack("<I", 0), data
    # first pass to size extra data
    _, d0 = pack(ifd0, 0, {}); _, d1 = pack(sub, 0, {})
    poff = extra + len(d0) + len(d1); roff = poff + len(pdata)
    i0, d0 = pack(ifd0, extra, {273: struct.pack("<I", poff), 330: struct.pack("<I", offs)})
    i1, d1 = pack(sub, extra + len(d0), {273: struct.pack("<I", roff)})
    open(path, "wb").write(b"II*\0" + struct.pack("<I", off0) + i0 + i1 + d0 + d1 + pdata + raw)


_made = {}


def fixtures():
    """Every generated fixture, made once: name -> path."""
    if _made:
        return _made
    d = new_root("fixtures")
    src = os.path.join(d, "src.png")
    red_over_blue(src)
    out = {}

    def add(name, *cmd):
        p = os.path.join(d, name)
        try:
            tool(*[a.replace("OUT", p) for a in cmd])
            out[name] = p
        except (Skip, AssertionError, subprocess.CalledProcessError,
                subprocess.TimeoutExpired):
            pass
    add("photo.heic", "heif-enc", "-q", "80", "-o", "OUT", src)
    add("photo.avif", "heif-enc", "-A", "-q", "80", "-o", "OUT", src)
    add("photo.webp", "cwebp", "-quiet", src, "-o", "OUT")
    # An iPhone-like clip: H.264, a display matrix turning it a quarter
    # clockwise, Apple's keys for the date (with its zone) and the place.
    add("clip.mp4", "ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
        "color=c=0xd01010:s=320x80:r=30:d=3", "-f", "lavfi", "-i",
        "color=c=0x1010d0:s=320x80:r=30:d=3", "-filter_complex", "vstack",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "OUT")
    if "clip.mp4" in out:
        try:
            tool("exiftool", "-q", "-overwrite_original", "-Rotation=90",
                 "-Keys:CreationDate=2021:06:14 12:34:56+03:00",
                 "-Keys:GPSCoordinates=60.1467, 24.9068",
                 "-Keys:Make=Apple", "-Keys:Model=iPhone 12", out["clip.mp4"])
        except (Skip, subprocess.CalledProcessError):
            del out["clip.mp4"]
    add("hevc.mov", "ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
        "color=c=0xd01010:s=320x80:r=25:d=2", "-f", "lavfi", "-i",
        "color=c=0x1010d0:s=320x80:r=25:d=2", "-filter_complex", "vstack",
        "-c:v", "libx265", "-x265-params", "log-level=none", "-tag:v", "hvc1",
        "-metadata", "creation_time=2020-02-03T04:05:06Z", "OUT")
    add("clip.webm", "ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
        "testsrc2=s=160x120:r=10:d=1", "-c:v", "libvpx-vp9", "-b:v", "200k", "OUT")
    for o in (1, 6):
        p = os.path.join(d, f"o{o}.tif")
        tiff_red_over_blue(p, o)
        out[f"o{o}.tif"] = p
    dng(os.path.join(d, "bitmap.dng"))
    out["bitmap.dng"] = os.path.join(d, "bitmap.dng")
    if TOOLS.get("ffmpeg"):
        # A JPEG preview, turned by the file's orientation 6.
        small = os.path.join(d, "small.png")
        red_over_blue(small, 64, 32)
        pj = os.path.join(d, "prev.jpg")
        try:
            tool("ffmpeg", "-y", "-loglevel", "error", "-i", small, "-q:v", "2", pj)
            dng(os.path.join(d, "jpeg.dng"), open(pj, "rb").read(), 6)
            out["jpeg.dng"] = os.path.join(d, "jpeg.dng")
        except (Skip, AssertionError, subprocess.CalledProcessError):
            pass
    if "clip.mp4" in out:
        data = open(out["clip.mp4"], "rb").read()
        p = os.path.join(d, "half.mp4")      # index first, data cut off
        with open(p, "wb") as f:
            f.write(data[:len(data) // 2])
        out["half.mp4"] = p
    p = os.path.join(d, "fake.mov")
    with open(p, "wb") as f:
        f.write(mp4_bytes(7, 5000))
    out["fake.mov"] = p
    _made.update(out)
    return _made


def need(*names):
    f = fixtures()
    missing = [n for n in names if n not in f]
    if missing and os.environ.get("CI"):
        raise AssertionError("could not make " + ", ".join(missing))
    if missing:
        raise Skip("could not make " + ", ".join(missing) +
                   " (scripts/install-deps.sh --tests)")
    return [f[n] for n in names]


def scanned(names, *extra):
    """A server over a folder holding these fixtures, after its first scan."""
    root = new_root("scan-" + str(len(os.listdir(work))))
    for n in names:
        shutil.copy(fixtures()[n], os.path.join(root, n))
    s = Server(root, *extra)
    s.wait_idle()
    return s


def by_name(listing):
    return {e["filename"]: e for e in listing.values()}


def thumb(s, e):
    st, _, data = s.request("GET", "/thumbnail/" + e["thumbnail_file"][:64])
    check(st == 200, f"thumbnail of {e['filename']}: {st}")
    return png_pixels(data)


@test("HEIC, AVIF and WebP: thumbnailed upright by mi-decode, listed with their size")
def _():
    need("photo.heic", "photo.webp")
    names = [n for n in ("photo.heic", "photo.avif", "photo.webp") if n in fixtures()]
    s = scanned(names)
    try:
        lst = by_name(s.listing())
        for n in names:
            e = lst[n]
            check(e["thumbnail_file"], f"{n}: no thumbnail")
            check((e.get("width"), e.get("height")) == (320, 160),
                  f"{n}: {e.get('width')}x{e.get('height')}")
            px = thumb(s, e)
            check(opaque_box(px) == (0, 64, 256, 192), f"{n}: box {opaque_box(px)}")
            check(colour(px, 128, 80) == "red" and colour(px, 128, 176) == "blue",
                  f"{n}: {colour(px, 128, 80)} over {colour(px, 128, 176)}")
        st, _, j = s.json("GET", "/status")
        check(j["last_scan_stats"]["thumbs_made"] == len(names), j["last_scan_stats"])
    finally:
        stopped_cleanly(s)


@test("TIFF: its own Orientation tag turns the thumbnail (6 = a quarter clockwise)")
def _():
    s = scanned(["o1.tif", "o6.tif"])
    try:
        lst = by_name(s.listing())
        # 64 x 32: never enlarged, centred.
        px = thumb(s, lst["o1.tif"])
        check(opaque_box(px) == (96, 112, 160, 144), f"o1: {opaque_box(px)}")
        check(colour(px, 128, 120) == "red" and colour(px, 128, 136) == "blue",
              f"o1: {colour(px, 128, 120)} over {colour(px, 128, 136)}")
        px = thumb(s, lst["o6.tif"])
        check(opaque_box(px) == (112, 96, 144, 160), f"o6: {opaque_box(px)}")
        # Turned clockwise: the top (red) is now on the right.
        check(colour(px, 120, 128) == "blue" and colour(px, 136, 128) == "red",
              f"o6: {colour(px, 120, 128)} | {colour(px, 136, 128)}")
        check((lst["o6.tif"].get("width"), lst["o6.tif"].get("height")) == (32, 64),
              f"o6 size {lst['o6.tif'].get('width')}x{lst['o6.tif'].get('height')}")
    finally:
        stopped_cleanly(s)


@test("DNG: thumbnail from the embedded preview (bitmap or JPEG, orientation applied), make, model and date")
def _():
    need("bitmap.dng", "jpeg.dng")
    s = scanned(["bitmap.dng", "jpeg.dng"])
    try:
        lst = by_name(s.listing())
        for n in ("bitmap.dng", "jpeg.dng"):
            e = lst[n]
            check(e["mime_type"] == "image/x-adobe-dng", e)
            check(e.get("make") == "TestMake" and e.get("model") == "TestModel", e)
            check(e["original_creation_date"] == local_epoch(2019, 3, 4, 5, 6, 7),
                  e["original_creation_date"])
        # The preview is drawn at the raw's size (128 x 64), never larger.
        px = thumb(s, lst["bitmap.dng"])
        check(opaque_box(px) == (64, 96, 192, 160), f"bitmap: {opaque_box(px)}")
        check(colour(px, 128, 104) == "red" and colour(px, 128, 152) == "blue",
              f"bitmap: {colour(px, 128, 104)} over {colour(px, 128, 152)}")
        px = thumb(s, lst["jpeg.dng"])
        check(opaque_box(px) == (96, 64, 160, 192), f"jpeg: {opaque_box(px)}")
        check(colour(px, 104, 128) == "blue" and colour(px, 152, 128) == "red",
              f"jpeg: {colour(px, 104, 128)} | {colour(px, 152, 128)}")
        st, _, data = s.request("GET", "/preview/" + lst["jpeg.dng"]["thumbnail_file"][:64])
        check(st == 200 and jpeg_size(data) == (32, 64), (st, data[:80]))
    finally:
        stopped_cleanly(s)


@test("an iPhone-like MP4: poster upright per its display matrix, date with its zone, GPS, camera, duration")
def _():
    need("clip.mp4")
    s = scanned(["clip.mp4"])
    try:
        e = by_name(s.listing())["clip.mp4"]
        check(e["kind"] == "video" and e["mime_type"] == "video/mp4", e)
        # 2021-06-14 12:34:56 +03:00
        check(e["original_creation_date"] == 1623663296, e["original_creation_date"])
        check(abs(e.get("latitude", 0) - 60.1467) < 1e-4 and
              abs(e.get("longitude", 0) - 24.9068) < 1e-4, e)
        check(e.get("make") == "Apple" and e.get("model") == "iPhone 12", e)
        check((e.get("width"), e.get("height")) == (160, 320), "size after rotation: "
              f"{e.get('width')}x{e.get('height')}")
        check(abs(e.get("duration", 0) - 3.0) < 0.2, e.get("duration"))
        check(e.get("codec") == "h264", e.get("codec"))
        px = thumb(s, e)
        check(opaque_box(px) == (64, 0, 192, 256), f"poster box {opaque_box(px)}")
        check(colour(px, 80, 128) == "blue" and colour(px, 176, 128) == "red",
              f"poster: {colour(px, 80, 128)} | {colour(px, 176, 128)}")
    finally:
        stopped_cleanly(s)


@test("HEVC in MOV and VP9 in WebM: posters, UTC creation_time, codec named")
def _():
    need("hevc.mov")
    names = [n for n in ("hevc.mov", "clip.webm") if n in fixtures()]
    s = scanned(names)
    try:
        lst = by_name(s.listing())
        e = lst["hevc.mov"]
        check(e["original_creation_date"] == 1580702706, e["original_creation_date"])
        check(e.get("codec") == "hevc", e.get("codec"))
        px = thumb(s, e)
        check(colour(px, 128, 80) == "red" and colour(px, 128, 176) == "blue",
              f"hevc: {colour(px, 128, 80)} over {colour(px, 128, 176)}")
        if "clip.webm" in lst:
            check(lst["clip.webm"]["thumbnail_file"], "webm: no poster")
            check(lst["clip.webm"].get("codec") == "vp9", lst["clip.webm"].get("codec"))
    finally:
        stopped_cleanly(s)


@test("a truncated MP4 and a fake MOV on disk: listed, no thumbnail, the reason in /api/problems")
def _():
    need("half.mp4")
    s = scanned(["half.mp4", "fake.mov"])
    try:
        lst = by_name(s.listing())
        check(set(lst) == {"half.mp4", "fake.mov"}, sorted(lst))
        for n in lst:
            check(lst[n]["thumbnail_file"] is None, f"{n}: {lst[n]['thumbnail_file']}")
            st, _, _ = s.request("GET", "/thumbnail/" + [h for h, e in s.listing().items()
                                                        if e["filename"] == n][0])
            check(st == 404, f"{n}: thumbnail {st}")
        st, _, j = s.json("GET", "/api/problems")
        check(sorted(p["path"] for p in j["problems"]) == ["fake.mov", "half.mp4"], j)
        # The decoder's own reason, not a generic one.
        why = {p["path"]: p["reason"] for p in j["problems"]}
        check("ends before its video does" in why["half.mp4"], why)
        check("FFmpeg" in why["fake.mov"], why)
    finally:
        stopped_cleanly(s)


@test("truncated HEIC, AVIF, WebP, TIFF and DNG on disk: each listed without a thumbnail, with a reason; a whole one beside them decodes, and a DNG cut in its raw data keeps its preview")
def _():
    need("photo.heic", "photo.avif", "photo.webp", "o1.tif", "jpeg.dng")
    root = new_root("truncated")
    cut = {}
    for n in ("photo.heic", "photo.avif", "photo.webp", "o1.tif", "jpeg.dng"):
        data = open(fixtures()[n], "rb").read()
        # A fifth of each; the DNG inside its first IFD.
        cut["cut-" + n] = data[:100] if n.endswith(".dng") else data[:max(64, len(data) // 5)]
        with open(os.path.join(root, "cut-" + n), "wb") as f:
            f.write(cut["cut-" + n])
    shutil.copy(fixtures()["photo.heic"], os.path.join(root, "whole.heic"))
    # A DNG cut inside its raw data (the last 16 KiB, after the preview):
    # its whole embedded preview still makes the thumbnail.
    data = open(fixtures()["jpeg.dng"], "rb").read()
    with open(os.path.join(root, "rawcut.dng"), "wb") as f:
        f.write(data[:len(data) - 8000])
    s = Server(root)
    try:
        s.wait_idle(timeout=60)
        lst = by_name(s.listing())
        check(set(lst) == set(cut) | {"whole.heic", "rawcut.dng"}, sorted(lst))
        for n in ("whole.heic", "rawcut.dng"):
            check(lst[n]["thumbnail_file"], f"{n} has no thumbnail")
            thumb(s, lst[n])
        for n in cut:
            check(lst[n]["thumbnail_file"] is None, f"{n}: {lst[n]['thumbnail_file']}")
            st, _, _ = s.request("GET", "/thumbnail/" + sha(cut[n]))
            check(st == 404, f"{n}: thumbnail {st}")
            st, _, j = s.json("GET", "/preview/" + sha(cut[n]))
            check(400 <= st < 500, f"{n}: preview {st}")
            if n == "cut-photo.heic":    # the decoder's reason, not a generic one
                check("libheif" in j["error"], j)
        st, _, j = s.json("GET", "/api/problems")
        why = {p["path"]: p["reason"] for p in j["problems"]}
        check(set(why) == set(cut), why)
        check(all(why[n] for n in cut), why)
        print("# " + "; ".join(f"{n}: {why[n]}" for n in sorted(why)))
    finally:
        stopped_cleanly(s)


@test("uploads of each format: 201, then 200 for the same bytes; a truncated or fake video is refused with 400")
def _():
    f = fixtures()
    s = Server(new_root("uploads"))
    try:
        for n in ("photo.heic", "photo.avif", "photo.webp", "o6.tif", "clip.mp4",
                  "hevc.mov", "clip.webm", "bitmap.dng", "jpeg.dng"):
            if n not in f:
                continue
            data = open(f[n], "rb").read()
            st, _, j = s.upload(n, data, filename=n)
            check(st == 201, f"{n}: {st} {j}")
            check(j.get("thumbnail_file"), f"{n}: no thumbnail in the answer {j}")
            st, _, j = s.upload(n, data, filename=n)
            check(st == 200, f"{n} again: {st} {j}")
        for n in ("half.mp4", "fake.mov"):
            if n not in f:
                continue
            st, _, j = s.upload(n, open(f[n], "rb").read(), filename=n)
            check(st == 400, f"{n}: {st} {j}")
            check("cannot be opened" in j.get("error", ""), j)
        check(not any(p.endswith(("half.mp4", "fake.mov")) for p in uploads(s.root)),
              sorted(uploads(s.root)))
    finally:
        stopped_cleanly(s)


@test("previews for the viewer: HEIC, TIFF and a large JPEG as JPEG (as displayed, not enlarged), cached; none for video; 512 px thumbnails of each")
def _():
    need("photo.heic", "clip.mp4")
    root = new_root("previews")
    for n in ("photo.heic", "o6.tif", "clip.mp4"):
        shutil.copy(fixtures()[n], os.path.join(root, n))
    with open(os.path.join(root, "plain.jpg"), "wb") as fh:
        fh.write(jpeg_bytes(3))
    with open(os.path.join(root, "big.jpg"), "wb") as fh:
        fh.write(jpeg_bytes(4, w=2400, h=1200))
    s = Server(root)
    try:
        s.wait_idle()
        sha_of = {e["filename"]: h for h, e in s.listing().items()}
        st, h, data = s.request("GET", "/preview/" + sha_of["photo.heic"])
        check(st == 200 and h.get("content-type") == "image/jpeg", (st, h))
        check(jpeg_size(data) == (320, 160), jpeg_size(data))
        check(h.get("etag"), "no ETag")
        st2, _, _ = s.request("GET", "/preview/" + sha_of["photo.heic"],
                              headers={"If-None-Match": h["etag"]})
        check(st2 == 304, f"revalidation: {st2}")
        check(os.path.exists(os.path.join(root, ".thumbnails",
                                          sha_of["photo.heic"] + "-preview.jpg")),
              "not cached on disk")
        st, h, data = s.request("GET", "/preview/" + sha_of["o6.tif"])
        check(st == 200 and jpeg_size(data) == (32, 64), (st, jpeg_size(data) if st == 200 else data))
        # A JPEG's: the viewer's lighter stand-in for a large original.
        for n, size in (("big.jpg", (1600, 800)), ("plain.jpg", (64, 48))):
            st, h, data = s.request("GET", "/preview/" + sha_of[n])
            check(st == 200 and jpeg_size(data) == size,
                  (n, st, jpeg_size(data) if st == 200 else data))
        st, _, _ = s.request("GET", "/preview/" + sha_of["clip.mp4"])
        check(st == 404, f"clip.mp4: {st}")
        st, _, _ = s.request("GET", "/preview/" + "0" * 64)
        check(st == 404, f"unknown hash: {st}")
        # The 512 px grid thumbnails: as displayed (the clip turned a
        # quarter), never enlarged, no padding.
        for n, size in (("big.jpg", (512, 256)), ("plain.jpg", (64, 48)),
                        ("photo.heic", (320, 160)), ("o6.tif", (32, 64)),
                        ("clip.mp4", (160, 320))):
            st, h, data = s.request("GET", f"/thumbnail/{sha_of[n]}?size=512")
            check(st == 200 and h.get("content-type") == "image/jpeg" and
                  jpeg_size(data) == size,
                  (n, st, jpeg_size(data) if st == 200 else data))
    finally:
        stopped_cleanly(s)


def faulty(marker):
    """A HEIC-looking file whose bytes 16..31 ask mi-decode to misbehave."""
    return (struct.pack(">I", 32) + b"ftypheic" + b"\0\0\0\0" + marker +
            b"\0" * 64)


@test("mi-decode crashing or hanging on a file costs that file only; the next one decodes")
def _():
    need("photo.heic")
    root = new_root("faults")
    with open(os.path.join(root, "crash.heic"), "wb") as fh:
        fh.write(faulty(b"mi-decode:crash!"))
    with open(os.path.join(root, "hang.heic"), "wb") as fh:
        fh.write(faulty(b"mi-decode:hang!!"))
    shutil.copy(fixtures()["photo.heic"], os.path.join(root, "good.heic"))
    os.environ["MI_DECODE_FAULTS"] = "1"
    try:
        t0 = time.time()
        s = Server(root, "--decoder-timeout", "2")
    finally:
        del os.environ["MI_DECODE_FAULTS"]
    try:
        st = s.wait_idle(timeout=60)
        took = time.time() - t0
        lst = by_name(s.listing())
        check(lst["good.heic"]["thumbnail_file"], "good.heic: no thumbnail")
        check(lst["crash.heic"]["thumbnail_file"] is None and
              lst["hang.heic"]["thumbnail_file"] is None, lst)
        check(st["last_scan_stats"]["thumbs_failed"] == 2, st["last_scan_stats"])
        _, _, pj = s.json("GET", "/api/problems")
        why = {p["path"]: p["reason"] for p in pj["problems"]}
        check("crashed" in why.get("crash.heic", ""), why)
        check("longer than 2 s" in why.get("hang.heic", ""), why)
        check(took < 20, f"the scan took {took:.1f} s")
        # An upload after both: still decoded.
        data = open(fixtures()["photo.heic"], "rb").read() + b"x"
        code, _, j = s.upload("again.heic", data, filename="again.heic")
        check(code == 201 and j.get("thumbnail_file"), (code, j))
        check(s.proc.poll() is None, "the server died")
    finally:
        stopped_cleanly(s)


@test("the decoder process runs sandboxed: seccomp filter on, no new privileges, address space limited")
def _():
    need("photo.heic")
    s = scanned(["photo.heic"])
    try:
        kids = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        st = fh.read()
                except OSError:
                    continue
                if f"PPid:\t{s.proc.pid}\n" in st and "Name:\tmi-decode" in st:
                    kids.append((pid, st))
        check(kids, "no mi-decode process under the server")
        for pid, st in kids:
            check("Seccomp:\t2" in st, f"seccomp mode: {st.split('Seccomp:')[1][:4]!r}")
            check("NoNewPrivs:\t1" in st, "no_new_privs not set")
            with open(f"/proc/{pid}/limits") as fh:
                lim = fh.read()
            m = re.search(r"Max address space\s+(\d+)", lim)
            if "address" not in os.environ.get("MI_TEST_CFLAGS", ""):
                check(m and int(m.group(1)) <= 1 << 30,
                      "RLIMIT_AS: " + (m.group(1) if m else "none"))
            fds = os.listdir(f"/proc/{pid}/fd")
            check(len(fds) <= 5, f"open descriptors: {len(fds)}")
    finally:
        stopped_cleanly(s)


# ---------------------------------------------------------------------------
# HEIF transforms, alpha, 10 bits, collections and sequences, embedded
# thumbnails; video rotations, QuickTime's ©xyz place, more containers and
# camera raws (uploads).

def png_rgba(path, w, h, pixel, depth=8):
    """A PNG (RGBA, or RGB at 16 bits) whose pixel(x, y) gives each pixel's bytes."""
    raw = b"".join(b"\0" + b"".join(pixel(x, y) for x in range(w)) for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth,
                                           2 if depth == 16 else 6, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


RED, BLUE = b"\xd0\x10\x10\xff", b"\x10\x10\xd0\xff"


def corner_png(path, w=320, h=160):
    """Blue, with a red block in its top-left corner (a quarter of its width,
    half its height): the corner and the aspect tell all eight ways of
    showing it apart."""
    png_rgba(path, w, h, lambda x, y: RED if x < w // 4 and y < h // 2 else BLUE)


# The corner picture as a grid of 4 x 2 cells, as stored.
CORNER = [["red", "blue", "blue", "blue"], ["blue", "blue", "blue", "blue"]]


def rot_ccw(g):
    """The grid turned a quarter anticlockwise (what irot's angle counts)."""
    return [list(r) for r in zip(*g)][::-1]


def mirrored(g, axis):
    """imir as ISO/IEC 23008-12:2022 6.5.12 (and libavif, Apple) has it:
    axis 0 exchanges top and bottom (EXIF's orientation 4), axis 1 left and
    right (EXIF's 2)."""
    return g[::-1] if axis == 0 else [r[::-1] for r in g]


def shown(transforms):
    """CORNER after the HEIF transforms, applied in their ipma order."""
    g = CORNER
    for kind, v in transforms:
        if kind == "irot":
            for _ in range(v % 4):
                g = rot_ccw(g)
        else:
            g = mirrored(g, v)
    return g


def grid(px, rect, cols, rows):
    """The colour at the centre of each of cols x rows cells of rect."""
    x0, y0, x1, y1 = rect
    return [[colour(px, x0 + (2 * c + 1) * (x1 - x0) // (2 * cols),
                    y0 + (2 * r + 1) * (y1 - y0) // (2 * rows))
             for c in range(cols)] for r in range(rows)]


def boxes(data, pos, end):
    """(type, start, header length, end) of each ISO-BMFF box in data[pos:end]."""
    out = []
    while pos + 8 <= end:
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        hdr = 8
        if n == 1:
            n, hdr = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif n == 0:
            n = end - pos
        check(n >= hdr and pos + n <= end, f"bad box {kind} at {pos}")
        out.append((kind, pos, hdr, pos + n))
        pos += n
    return out


def bmff_box(kind, body):
    return struct.pack(">I4s", 8 + len(body), kind) + body


def heif_transform(data, transforms, thumbnails=False):
    """A HEIF file (heif-enc's, whose meta box precedes its mdat) with
    transformative properties added: transforms is a list of ("irot",
    quarter turns anticlockwise) and ("imir", axis), in the order they
    apply.  They go at the end of ipco, associated (essential) with the
    primary item, and with its thumbnails too when thumbnails is true; the
    item locations past the grown meta box move with it."""
    meta = [b for b in boxes(data, 0, len(data)) if b[0] == b"meta"][0]
    _, m0, mh, m1 = meta
    kids = boxes(data, m0 + mh + 4, m1)
    get = {k[0]: k for k in kids}
    pitm = get[b"pitm"]
    at = pitm[1] + pitm[2]
    primary = int.from_bytes(data[at + 4:at + (6 if data[at] == 0 else 8)], "big")
    targets = {primary}
    if thumbnails and b"iref" in get:
        r = get[b"iref"]
        w = 2 if data[r[1] + r[2]] == 0 else 4
        for kind, s0, h0, _ in boxes(data, r[1] + r[2] + 4, r[3]):
            q = s0 + h0
            frm = int.from_bytes(data[q:q + w], "big")
            n = int.from_bytes(data[q + w:q + w + 2], "big")
            to = [int.from_bytes(data[q + w + 2 + i * w:q + 2 * w + 2 + i * w], "big")
                  for i in range(n)]
            if kind == b"thmb" and primary in to:
                targets.add(frm)
    iprp = get[b"iprp"]
    ipco, ipma = [{k[0]: k for k in boxes(data, iprp[1] + iprp[2], iprp[3])}[t]
                  for t in (b"ipco", b"ipma")]
    nprops = len(boxes(data, ipco[1] + ipco[2], ipco[3]))
    new_ipco = bmff_box(b"ipco", data[ipco[1] + ipco[2]:ipco[3]] + b"".join(
        bmff_box(k.encode(), bytes([v])) for k, v in transforms))
    p = ipma[1] + ipma[2]
    ver, wide = data[p], data[p + 3] & 1
    count = struct.unpack(">I", data[p + 4:p + 8])[0]
    body, p = bytearray(data[p:p + 8]), p + 8
    for _ in range(count):
        idlen = 2 if ver < 1 else 4
        item = int.from_bytes(data[p:p + idlen], "big")
        body += data[p:p + idlen]
        p += idlen
        n = data[p]
        assoc = data[p + 1:p + 1 + n * (2 if wide else 1)]
        p += 1 + len(assoc)
        if item in targets:
            for i in range(len(transforms)):
                idx = nprops + 1 + i
                assoc += struct.pack(">H", 0x8000 | idx) if wide else bytes([0x80 | idx])
            n += len(transforms)
        body += bytes([n]) + assoc
    new_iprp = bmff_box(b"iprp", b"".join(
        new_ipco if k[0] == b"ipco" else bmff_box(b"ipma", bytes(body))
        if k[0] == b"ipma" else data[k[1]:k[3]]
        for k in boxes(data, iprp[1] + iprp[2], iprp[3])))
    delta = len(new_iprp) - (iprp[3] - iprp[1])
    # iloc: offsets into the file past the meta box move by delta.
    il = get[b"iloc"]
    out = bytearray(data[il[1]:il[3]])
    o = il[2]
    iv = out[o]
    o += 4
    osz, lsz, bsz = out[o] >> 4, out[o] & 15, out[o + 1] >> 4
    isz = out[o + 1] & 15 if iv in (1, 2) else 0
    o += 2
    cnt = int.from_bytes(out[o:o + (2 if iv < 2 else 4)], "big")
    o += 2 if iv < 2 else 4
    for _ in range(cnt):
        o += 2 if iv < 2 else 4
        method = 0
        if iv in (1, 2):
            method = int.from_bytes(out[o:o + 2], "big") & 15
            o += 2
        o += 2
        base_at, base = o, int.from_bytes(out[o:o + bsz], "big")
        o += bsz
        ne = int.from_bytes(out[o:o + 2], "big")
        o += 2
        for _ in range(ne):
            o += isz
            eo = int.from_bytes(out[o:o + osz], "big")
            if method == 0 and base < m1 <= base + eo:
                out[o:o + osz] = (eo + delta).to_bytes(osz, "big")
            o += osz + lsz
        if method == 0 and bsz and base >= m1:
            out[base_at:base_at + bsz] = (base + delta).to_bytes(bsz, "big")
    new_meta = bmff_box(b"meta", data[m0 + mh:m0 + mh + 4] + b"".join(
        new_iprp if k[0] == b"iprp" else bytes(out) if k[0] == b"iloc"
        else data[k[1]:k[3]] for k in kids))
    return data[:m0] + new_meta + data[m1:]


def raw_tiff(path, make, model, magic=b"II*\0", orientation=1):
    """A camera raw that is not a DNG: dng()'s layout without its DNG tags,
    under another maker's name and, for ORF and RW2, their own magic."""
    dng(path, orientation=orientation)
    data = bytearray(open(path, "rb").read())
    # dng() wrote "TestMake"/"TestModel"; same-length names keep every offset.
    for old, new in ((b"TestMake\0", make), (b"TestModel\0", model)):
        i = data.find(old)
        check(i > 0 and len(new) + 1 <= len(old), (old, new))
        data[i:i + len(old)] = new.encode().ljust(len(old), b"\0")
    # Drop DNGVersion (50706): turn its tag into a private one nobody reads.
    i = data.find(struct.pack("<HHI", 50706, 1, 4))
    check(i > 0, "no DNGVersion")
    data[i:i + 2] = struct.pack("<H", 65000)
    data[0:4] = magic
    with open(path, "wb") as f:
        f.write(bytes(data))


_more = {}
VIDEO_SRC = ["-f", "lavfi", "-i", "color=c=0xd01010:s=320x80:r=25:d=2",
             "-f", "lavfi", "-i", "color=c=0x1010d0:s=320x80:r=25:d=2",
             "-filter_complex", "vstack"]
X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]


def more_fixtures():
    """The fixtures of the tests below, made once: name -> path."""
    if _more:
        return _more
    d = new_root("more-fixtures")
    out = {}

    def add(name, *cmd):
        p = os.path.join(d, name)
        try:
            tool(*[a.replace("OUT", p) for a in cmd])
            out[name] = p
        except (Skip, AssertionError, subprocess.CalledProcessError,
                subprocess.TimeoutExpired):
            pass
        return p
    corner = os.path.join(d, "corner.png")
    corner_png(corner)
    big = os.path.join(d, "big.png")
    corner_png(big, 1280, 640)
    alpha = os.path.join(d, "alpha.png")   # left half transparent, right red
    png_rgba(alpha, 320, 160, lambda x, y: b"\x10\x10\xd0\x00" if x < 160 else RED)
    deep = os.path.join(d, "deep.png")     # 16 bits a channel, red over blue
    png_rgba(deep, 320, 160, lambda x, y: struct.pack(
        ">HHH", *((0xd000, 0x1000, 0x1000) if y < 80 else (0x1000, 0x1000, 0xd000))), 16)
    add("corner.heic", "heif-enc", "-q", "85", "-o", "OUT", corner)
    if "corner.heic" in out:
        base = open(out["corner.heic"], "rb").read()
        for name, t in HEIF_TRANSFORMS.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(heif_transform(base, t))
            out[name] = os.path.join(d, name)
        # EXIF orientation 6 in the file: alone, then beside irot.
        p = os.path.join(d, "exif6.heic")
        shutil.copy(out["corner.heic"], p)
        try:
            tool("exiftool", "-q", "-overwrite_original", "-n", "-Orientation=6", p)
            out["exif6.heic"] = p
            with open(os.path.join(d, "exif6-irot1.heic"), "wb") as f:
                f.write(heif_transform(open(p, "rb").read(), [("irot", 1)]))
            out["exif6-irot1.heic"] = os.path.join(d, "exif6-irot1.heic")
        except (Skip, AssertionError, subprocess.CalledProcessError):
            pass
    add("thumbed.heic", "heif-enc", "-q", "70", "-t", "320", "-o", "OUT", big)
    if "thumbed.heic" in out:
        with open(os.path.join(d, "thumbed-irot1.heic"), "wb") as f:
            f.write(heif_transform(open(out["thumbed.heic"], "rb").read(),
                                   [("irot", 1)], thumbnails=True))
        out["thumbed-irot1.heic"] = os.path.join(d, "thumbed-irot1.heic")
    add("alpha.heic", "heif-enc", "-q", "85", "-o", "OUT", alpha)
    add("deep.heic", "heif-enc", "-b", "10", "-q", "85", "-o", "OUT", deep)
    # Two images in one file, the first the primary (what a burst is).
    add("burst.heic", "heif-enc", "-q", "85", "-o", "OUT", corner, alpha)
    # An AVIF image sequence (brand avis): its first frame red over blue,
    # the four after it blue over red.
    add("seq.avif", "ffmpeg", "-y", "-loglevel", "error",
        "-f", "lavfi", "-i", "color=c=0xd01010:s=320x80:r=5:d=1",
        "-f", "lavfi", "-i", "color=c=0x1010d0:s=320x80:r=5:d=1",
        "-filter_complex", "[0][1]vstack,trim=end_frame=1[a];[1][0]vstack,trim=end_frame=4[b];"
        "[a][b]concat,format=yuv420p", "-c:v", "libaom-av1", "-cpu-used", "8", "OUT")
    # Videos 320 x 160, red over blue, 2 s.
    for name, deg in (("r180.mp4", 180), ("r270.mov", 270)):
        p = add(name, "ffmpeg", "-y", "-loglevel", "error", *VIDEO_SRC, *X264, "OUT")
        if name in out:
            try:
                tool("exiftool", "-q", "-overwrite_original", f"-Rotation={deg}", p)
            except (Skip, subprocess.CalledProcessError):
                del out[name]
    # The place as QuickTime's ©xyz: FFmpeg writes it in MOV (not in MP4);
    # exiftool's UserData:GPSCoordinates writes it in an MP4 (as Android does).
    add("xyz.mov", "ffmpeg", "-y", "-loglevel", "error", *VIDEO_SRC, *X264,
        "-metadata", "location=+60.1470+024.9070/", "OUT")
    p = add("xyz.mp4", "ffmpeg", "-y", "-loglevel", "error", *VIDEO_SRC, *X264, "OUT")
    if "xyz.mp4" in out:
        try:
            tool("exiftool", "-q", "-overwrite_original",
                 "-UserData:GPSCoordinates=-33.8568, -74.0445", p)
            check(b"\xa9xyz" in open(p, "rb").read(), "exiftool wrote no ©xyz")
        except (Skip, AssertionError, subprocess.CalledProcessError):
            del out["xyz.mp4"]
    # Containers phones and cameras write.
    add("clip.3gp", "ffmpeg", "-y", "-loglevel", "error",
        "-f", "lavfi", "-i", "color=c=0xd01010:s=176x72:r=15:d=2",
        "-f", "lavfi", "-i", "color=c=0x1010d0:s=176x72:r=15:d=2",
        "-filter_complex", "vstack", "-c:v", "h263", "OUT")
    add("clip.mkv", "ffmpeg", "-y", "-loglevel", "error", *VIDEO_SRC, *X264, "OUT")
    add("clip.avi", "ffmpeg", "-y", "-loglevel", "error", *VIDEO_SRC,
        "-c:v", "mpeg4", "-q:v", "3", "OUT")
    add("clip.mts", "ffmpeg", "-y", "-loglevel", "error", *VIDEO_SRC, *X264,
        "-f", "mpegts", "OUT")
    # Camera raws other than DNG, written by hand (libraw reads them by
    # their maker's name; ORF by its own magic).
    raw_tiff(os.path.join(d, "camera.nef"), "NIKON", "D3X")
    out["camera.nef"] = os.path.join(d, "camera.nef")
    raw_tiff(os.path.join(d, "camera.orf"), "OLYMPUS", "E-M10", b"IIRO")
    out["camera.orf"] = os.path.join(d, "camera.orf")
    _more.update(out)
    return _more


HEIF_TRANSFORMS = {
    "irot1.heic": [("irot", 1)],
    "irot2.heic": [("irot", 2)],
    "irot3.heic": [("irot", 3)],
    "imir0.heic": [("imir", 0)],
    "imir1.heic": [("imir", 1)],
    "imir0-irot1.heic": [("imir", 0), ("irot", 1)],
    "irot1-imir0.heic": [("irot", 1), ("imir", 0)],
}


def need_more(*names):
    f = more_fixtures()
    missing = [n for n in names if n not in f]
    if missing and os.environ.get("CI"):
        raise AssertionError("could not make " + ", ".join(missing))
    if missing:
        raise Skip("could not make " + ", ".join(missing) +
                   " (scripts/install-deps.sh --tests)")
    return [f[n] for n in names]


def scanned_more(names):
    root = new_root("scan-" + str(len(os.listdir(work))))
    for n in names:
        shutil.copy(more_fixtures()[n], os.path.join(root, n))
    s = Server(root)
    s.wait_idle(timeout=60)
    return s


def jpeg_pixels(data):
    """(w, h, RGBA rows) of a JPEG, decoded by FFmpeg (the tests have no
    JPEG decoder of their own)."""
    if not TOOLS.get("ffmpeg"):
        raise Skip("ffmpeg is not installed")
    w, h = jpeg_size(data)
    r = subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "mjpeg", "-i", "pipe:0",
                        "-f", "rawvideo", "-pix_fmt", "rgba", "pipe:1"],
                       input=data, capture_output=True, timeout=60, check=True)
    check(len(r.stdout) == w * h * 4, f"{len(r.stdout)} bytes for {w}x{h}")
    return w, h, [r.stdout[y * w * 4:(y + 1) * w * 4] for y in range(h)]


def landscape(g):
    return len(g[0]) > len(g)


def check_corner(s, e, want, what):
    """The thumbnail and the preview of a corner picture show grid `want`."""
    tw, th = (256, 128) if landscape(want) else (128, 256)
    dw, dh = (320, 160) if landscape(want) else (160, 320)
    check((e.get("width"), e.get("height")) == (dw, dh),
          f"{what}: listed as {e.get('width')}x{e.get('height')}, shown as {dw}x{dh}")
    px = thumb(s, e)
    box = opaque_box(px)
    check(box == ((256 - tw) // 2, (256 - th) // 2, (256 + tw) // 2, (256 + th) // 2),
          f"{what}: thumbnail box {box}, want {tw}x{th} centred")
    got = grid(px, box, len(want[0]), len(want))
    check(got == want, f"{what}: thumbnail cells {got}, want {want}")
    st, h, data = s.request("GET", "/preview/" + e["thumbnail_file"][:64])
    check(st == 200 and h.get("content-type") == "image/jpeg", f"{what}: preview {st}")
    check(jpeg_size(data) == (dw, dh), f"{what}: preview {jpeg_size(data)}, want {(dw, dh)}")
    ppx = jpeg_pixels(data)
    got = grid(ppx, (0, 0, dw, dh), len(want[0]), len(want))
    check(got == want, f"{what}: preview cells {got}, want {want}")


@test("HEIF transforms: irot 90/180/270, imir on either axis and both combined turn the thumbnail and the preview as the file says")
def _():
    need_more("corner.heic", *HEIF_TRANSFORMS)
    names = ["corner.heic", *HEIF_TRANSFORMS]
    s = scanned_more(names)
    try:
        lst = by_name(s.listing())
        bad = []
        for n in names:
            try:
                check(lst[n]["thumbnail_file"], f"{n}: no thumbnail")
                check_corner(s, lst[n], shown(HEIF_TRANSFORMS.get(n, [])), n)
            except AssertionError as ex:
                bad.append(str(ex))
        check(not bad, "\n".join(bad))
    finally:
        stopped_cleanly(s)


@test("HEIF and EXIF orientation: EXIF's Orientation does not turn a HEIF (irot/imir do), alone or beside irot")
def _():
    need_more("exif6.heic", "exif6-irot1.heic")
    s = scanned_more(["exif6.heic", "exif6-irot1.heic"])
    try:
        lst = by_name(s.listing())
        bad = []
        for n, want in (("exif6.heic", CORNER), ("exif6-irot1.heic", shown([("irot", 1)]))):
            try:
                check(lst[n]["thumbnail_file"], f"{n}: no thumbnail")
                check_corner(s, lst[n], want, n)
            except AssertionError as ex:
                bad.append(str(ex))
        check(not bad, "\n".join(bad))
    finally:
        stopped_cleanly(s)


@test("HEIF with an embedded thumbnail item (heif-enc -t 320): thumbnail right and upright, with and without irot on both items")
def _():
    need_more("thumbed.heic", "thumbed-irot1.heic")
    s = scanned_more(["thumbed.heic", "thumbed-irot1.heic"])
    try:
        lst = by_name(s.listing())
        for n, want, size in (("thumbed.heic", CORNER, (1280, 640)),
                              ("thumbed-irot1.heic", rot_ccw(CORNER), (640, 1280))):
            e = lst[n]
            check(e["thumbnail_file"], f"{n}: no thumbnail")
            check((e.get("width"), e.get("height")) == size,
                  f"{n}: {e.get('width')}x{e.get('height')}, want {size}")
            px = thumb(s, e)
            tw, th = (256, 128) if landscape(want) else (128, 256)
            box = opaque_box(px)
            check(box == ((256 - tw) // 2, (256 - th) // 2, (256 + tw) // 2, (256 + th) // 2),
                  f"{n}: box {box}")
            got = grid(px, box, len(want[0]), len(want))
            check(got == want, f"{n}: cells {got}, want {want}")
    finally:
        stopped_cleanly(s)


@test("HEIF with alpha keeps its transparent pixels; a 10-bit HEIF (heif-enc -b 10) thumbnails in its colours")
def _():
    need_more("alpha.heic", "deep.heic")
    s = scanned_more(["alpha.heic", "deep.heic"])
    try:
        lst = by_name(s.listing())
        e = lst["alpha.heic"]
        check(e["thumbnail_file"], "alpha.heic: no thumbnail")
        check((e.get("width"), e.get("height")) == (320, 160), e)
        px = thumb(s, e)
        # 256 x 128 at y 64..192: the left half clear, the right half red.
        got = [colour(px, x, y) for y in (80, 128, 176) for x in (32, 96, 160, 224)]
        check(got == ["clear", "clear", "red", "red"] * 3, f"alpha.heic: {got}")
        check(opaque_box(px)[0] >= 120, f"alpha.heic: opaque from x {opaque_box(px)[0]}")
        # JPEG has no alpha: the 512 px thumbnail and the preview show the
        # clear half over white, as a page would (not black).
        h64 = e["thumbnail_file"][:64]
        for route in (f"/thumbnail/{h64}?size=512", f"/preview/{h64}"):
            st, _, data = s.request("GET", route)
            check(st == 200, (route, st))
            w, h, rows = jpeg_pixels(data)
            left, right = rows[h // 2][w // 8 * 4:w // 8 * 4 + 3], rows[h // 2][w * 7 // 8 * 4:w * 7 // 8 * 4 + 3]
            check(min(left) > 235, (route, "clear half", tuple(left)))
            check(right[0] > 150 and right[2] < 100, (route, "red half", tuple(right)))
        e = lst["deep.heic"]
        check(e["thumbnail_file"], "deep.heic: no thumbnail")
        check((e.get("width"), e.get("height")) == (320, 160), e)
        px = thumb(s, e)
        check(opaque_box(px) == (0, 64, 256, 192), f"deep.heic: box {opaque_box(px)}")
        check(colour(px, 128, 80) == "red" and colour(px, 128, 176) == "blue",
              f"deep.heic: {colour(px, 128, 80)} over {colour(px, 128, 176)}")
    finally:
        stopped_cleanly(s)


@test("a HEIF holding two images (a burst) and an AVIF image sequence: one entry each, the primary image / first frame thumbnailed")
def _():
    need_more("burst.heic")
    names = [n for n in ("burst.heic", "seq.avif") if n in more_fixtures()]
    s = scanned_more(names)
    try:
        lst = by_name(s.listing())
        check(sorted(lst) == sorted(names), sorted(lst))
        e = lst["burst.heic"]
        check(e["thumbnail_file"], "burst.heic: no thumbnail")
        check_corner(s, e, CORNER, "burst.heic")
        if "seq.avif" in lst:
            e = lst["seq.avif"]
            check(e["kind"] == "image" and e["mime_type"] == "image/avif", e)
            check(e["thumbnail_file"], "seq.avif: no thumbnail")
            check((e.get("width"), e.get("height")) == (320, 160), e)
            px = thumb(s, e)
            check(colour(px, 128, 80) == "red" and colour(px, 128, 176) == "blue",
                  f"seq.avif: {colour(px, 128, 80)} over {colour(px, 128, 176)}")
        else:
            print("# no AVIF sequence: ffmpeg could not make one")
    finally:
        stopped_cleanly(s)


@test("video rotation 180 (MP4) and 270 (MOV): posters upright, sizes as shown, durations")
def _():
    need_more("r180.mp4", "r270.mov")
    s = scanned_more(["r180.mp4", "r270.mov"])
    try:
        lst = by_name(s.listing())
        e = lst["r180.mp4"]
        check((e.get("width"), e.get("height")) == (320, 160),
              f"r180: {e.get('width')}x{e.get('height')}")
        check(abs(e.get("duration", 0) - 2.0) < 0.2, f"r180 duration {e.get('duration')}")
        px = thumb(s, e)
        check(opaque_box(px) == (0, 64, 256, 192), f"r180: box {opaque_box(px)}")
        # Turned half round: the top (red) now at the bottom.
        check(colour(px, 128, 80) == "blue" and colour(px, 128, 176) == "red",
              f"r180: {colour(px, 128, 80)} over {colour(px, 128, 176)}")
        e = lst["r270.mov"]
        check((e.get("width"), e.get("height")) == (160, 320),
              f"r270: {e.get('width')}x{e.get('height')}")
        check(abs(e.get("duration", 0) - 2.0) < 0.2, f"r270 duration {e.get('duration')}")
        px = thumb(s, e)
        check(opaque_box(px) == (64, 0, 192, 256), f"r270: box {opaque_box(px)}")
        # Three quarters clockwise: the top (red) now on the left.
        check(colour(px, 80, 128) == "red" and colour(px, 176, 128) == "blue",
              f"r270: {colour(px, 80, 128)} | {colour(px, 176, 128)}")
    finally:
        stopped_cleanly(s)


@test("video GPS from QuickTime's ©xyz atom (MOV by FFmpeg, MP4 by exiftool, southern and western signs)")
def _():
    need_more("xyz.mov")
    names = [n for n in ("xyz.mov", "xyz.mp4") if n in more_fixtures()]
    s = scanned_more(names)
    try:
        lst = by_name(s.listing())
        want = {"xyz.mov": (60.1470, 24.9070), "xyz.mp4": (-33.8568, -74.0445)}
        for n in names:
            e = lst[n]
            check(abs(e.get("latitude", 0) - want[n][0]) < 1e-4 and
                  abs(e.get("longitude", 0) - want[n][1]) < 1e-4,
                  f"{n}: {e.get('latitude')}, {e.get('longitude')}, want {want[n]}")
            check(abs(e.get("duration", 0) - 2.0) < 0.2, f"{n} duration {e.get('duration')}")
    finally:
        stopped_cleanly(s)


# name: (MIME type, duration in s, poster's width, height)
CONTAINERS = {"clip.3gp": ("video/3gpp", 2.0, 176, 144),
              "clip.mkv": ("video/x-matroska", 2.0, 320, 160),
              "clip.avi": ("video/x-msvideo", 2.0, 320, 160),
              "clip.mts": ("video/mp2t", 2.0, 320, 160)}
RAWS = {"camera.nef": "image/x-nikon-nef", "camera.orf": "image/x-olympus-orf"}


@test("uploads of 3GP, MKV, AVI and MTS videos and NEF and ORF raws: 201, then 200 for the same bytes, listed with a thumbnail, type and duration")
def _():
    need_more(*CONTAINERS, *RAWS)
    f = more_fixtures()
    s = Server(new_root("more-uploads"))
    bad = []

    def each(n, fn):
        """fn's failure for format n noted, the other formats still checked."""
        try:
            fn()
        except AssertionError as ex:
            bad.append(str(ex))

    def up(n):
        data = open(f[n], "rb").read()
        st, _, j = s.upload(n, data, filename=n)
        check(st == 201, f"{n}: {st} {j}")
        check(j.get("thumbnail_file"), f"{n}: no thumbnail in the answer {j}")
        st, _, j = s.upload(n, data, filename=n)
        check(st == 200, f"{n} again: {st} {j}")

    def video(n):
        mime, dur, w, h = CONTAINERS[n]
        e = lst.get(n)
        check(e, f"{n} not listed: {sorted(lst)}")
        check(e["kind"] == "video" and e["mime_type"] == mime, f"{n}: {e}")
        check((e.get("width"), e.get("height")) == (w, h), f"{n}: {e}")
        check(abs(e.get("duration", 0) - dur) < 0.2, f"{n}: duration {e.get('duration')}")
        px = thumb(s, e)
        x0, y0, x1, y1 = opaque_box(px)
        top, bottom = (colour(px, 128, y0 + (y1 - y0) // 4),
                       colour(px, 128, y0 + 3 * (y1 - y0) // 4))
        check((top, bottom) == ("red", "blue"), f"{n}: poster {top} over {bottom}")

    def raw(n):
        e = lst.get(n)
        check(e, f"{n} not listed: {sorted(lst)}")
        check(e["kind"] == "image" and e["mime_type"] == RAWS[n], f"{n}: {e}")
        check(e["original_creation_date"] == local_epoch(2019, 3, 4, 5, 6, 7), f"{n}: {e}")
        px = thumb(s, e)
        check(colour(px, 128, 104) == "red" and colour(px, 128, 152) == "blue",
              f"{n}: preview {colour(px, 128, 104)} over {colour(px, 128, 152)}")
    try:
        for n in (*CONTAINERS, *RAWS):
            each(n, lambda: up(n))
        s.wait_idle(timeout=60)
        lst = by_name(s.listing())
        for n in CONTAINERS:
            each(n, lambda: video(n))
        for n in RAWS:
            each(n, lambda: raw(n))
        # Known to fail (2026-12): every MTS upload is refused as "not a
        # known image or video" though the same file on disk is indexed
        # (the test below): the upload's type check does not see far enough
        # into the file for MPEG-TS's second sync byte, at offset 188.
        check(not bad, "\n".join(bad))
    finally:
        stopped_cleanly(s)


@test("3GP, MKV, AVI and MTS on disk: listed by the scan with their type, size, duration and an upright poster")
def _():
    need_more(*CONTAINERS)
    s = scanned_more(list(CONTAINERS))
    try:
        lst = by_name(s.listing())
        bad = []
        for n, (mime, dur, w, h) in CONTAINERS.items():
            e = lst.get(n)
            if not e:
                bad.append(f"{n} not listed: {sorted(lst)}")
                continue
            if (e["kind"], e["mime_type"], e.get("width"), e.get("height")) != \
                    ("video", mime, w, h) or abs(e.get("duration", 0) - dur) >= 0.2 or \
                    not e["thumbnail_file"]:
                bad.append(f"{n}: {e}")
                continue
            px = thumb(s, e)
            x0, y0, x1, y1 = opaque_box(px)
            top, bottom = (colour(px, 128, y0 + (y1 - y0) // 4),
                           colour(px, 128, y0 + 3 * (y1 - y0) // 4))
            if (top, bottom) != ("red", "blue"):
                bad.append(f"{n}: poster {top} over {bottom}")
        check(not bad, "\n".join(bad))
    finally:
        stopped_cleanly(s)


@test("truncated uploads of 3GP, MKV, AVI, MTS, NEF and ORF (cut in half): each refused with 400 and a reason, nothing kept")
def _():
    need_more(*CONTAINERS, *RAWS)
    f = more_fixtures()
    s = Server(new_root("more-cut"))
    try:
        bad = []
        for n in (*CONTAINERS, *RAWS):
            data = open(f[n], "rb").read()
            # Videos: half the file, and not on an MPEG-TS packet's
            # boundary.  Raws: inside their first IFD (libraw reads a raw
            # cut in its raw data for its preview, by design: see the DNG
            # test above).
            cut = data[:100] if n in RAWS else data[:len(data) // 2 + 61]
            st, _, j = s.upload("cut-" + n, cut, filename="cut-" + n)
            why = (j or {}).get("error", "")
            if st != 400 or ("cannot be opened" not in why and "cut short" not in why):
                bad.append(f"cut-{n} ({len(cut)} of {len(data)} bytes): {st} {j}")
            else:
                print(f"# cut-{n}: {j['error']}")
        kept = sorted(uploads(s.root))
        # MP4, 3GP and AVI cut so lose the index FFmpeg needs; Matroska
        # and MPEG-TS open without one, and are told by their own framing
        # (a segment longer than the file, a packet cut in two).
        check(not bad and not kept, "not refused as cut short:\n" + "\n".join(bad) +
              "\nkept: " + ", ".join(kept))
    finally:
        stopped_cleanly(s)


@test("a wide HEIC's preview and 512 px thumbnail keep its shape (4798 x 2400: 1600 x 800, 512 x 256), its corner where it is")
def _():
    root = new_root("wide-heic")
    w, h = 4798, 2400
    red = b"\xd0\x10\x10" * (w // 4) + b"\x10\x10\xd0" * (w - w // 4)
    blue = b"\x10\x10\xd0" * w
    raw = b"".join(b"\0" + (red if y < h // 2 else blue) for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body))
    src = os.path.join(root, "wide.png.src")
    with open(src, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
    os.rename(src, src + ".png")
    tool("heif-enc", "-q", "60", "-o", os.path.join(root, "wide.heic"), src + ".png")
    os.unlink(src + ".png")
    s = Server(root)
    try:
        s.wait_idle(timeout=120)
        sha_ = next(iter(s.listing()))
        for route, size in (("/preview/" + sha_, (1600, 800)),
                            (f"/thumbnail/{sha_}?size=512", (512, 256))):
            st, _, data = s.request("GET", route)
            check(st == 200, (route, st, data[:200]))
            pw, ph, rows = jpeg_pixels(data)
            check((pw, ph) == size, (route, pw, ph))
            # Red in the top-left quarter-by-half, blue elsewhere.
            px = lambda x, y: rows[y][x * 4:x * 4 + 3]
            for x, y, want in ((pw // 8, ph // 4, "red"), (pw // 2, ph // 4, "blue"),
                               (pw // 8, ph * 3 // 4, "blue")):
                r, g, b = px(x, y)
                got = "red" if r > 150 and b < 100 else "blue" if b > 150 and r < 100 else "?"
                check(got == want, (route, x, y, (r, g, b)))
    finally:
        stopped_cleanly(s)


@test("corpus: every HEIC photo gets a thumbnail (the Nokia 8.3's irot 270 gives a portrait one)")
def _():
    if not CORPUS:
        raise Skip("MI_TEST_CORPUS not set")
    heic = os.path.join(CORPUS, "heic")
    root = new_root("corpus-heic")
    names = []
    for d, _, files in os.walk(heic):
        for n in files:
            shutil.copy(os.path.join(d, n), os.path.join(root, n))
            names.append(n)
    if not names:
        # CI's copy of the corpus has held other files than a session's.
        raise Skip(f"the corpus has no HEIC/HEIF files ({heic})")
    s = Server(root)
    try:
        s.wait_idle(timeout=120)
        lst = by_name(s.listing())
        for n in names:
            check(lst[n]["thumbnail_file"], f"{n}: no thumbnail")
        # Files the corpus holds only on some machines (CI's copy has
        # differed from a session's): checked where present.  The Live Photo
        # pairing itself is tested on a generated fixture by the browser suite.
        if "IMG_5195.HEIC" in lst:
            # An iPhone's Live Photo id, from Apple's maker note.
            check(lst["IMG_5195.HEIC"].get("live_photo_id") ==
                  "570F1469-09C7-4E50-9875-05F21D5BD166", lst["IMG_5195.HEIC"])
        if "HMD_Nokia_8.3_5G.heif" in lst:
            e = lst["HMD_Nokia_8.3_5G.heif"]
            check((e["width"], e["height"]) == (3456, 4608), (e["width"], e["height"]))
            x0, y0, x1, y1 = opaque_box(thumb(s, e))
            check(x1 - x0 < y1 - y0, f"not portrait: {(x0, y0, x1, y1)}")
    finally:
        stopped_cleanly(s)


sys.exit(finish())
