#!/usr/bin/env python3
"""make-dng.py - a camera-sized DNG written by hand, for bench/raw.sh and
bench/mixed.sh (the layout of tests/server/test_formats.py's dng(), at
real size):

    make-dng.py OUT.dng PREVIEW.jpg [WIDTH HEIGHT [SEED]]

IFD0 is the preview (the JPEG given, NewSubfileType 1, as cameras and
Adobe's converter write it); its SubIFD is WIDTH x HEIGHT (default
6000 x 4000, 24 MP) of uncompressed 16-bit RGGB CFA data holding 12-bit
values (noise from SEED plus a gradient), with the DNG tags dcraw/libraw
need: version, CFA pattern, white level, colour matrix, as-shot neutral.
The preview's pixel size is read from its SOF marker."""
import os
import random
import struct
import sys


def jpeg_size(data):
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        m = data[i + 1]
        if m in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    sys.exit("make-dng.py: no SOF in the preview")


def cfa(w, h, seed):
    """w x h little-endian 16-bit samples, 0..4095: random low bits over a
    left-to-right ramp (bytes operations, fast without numpy)."""
    rng = random.Random(seed)
    rb = 2 * w
    ramp = bytes(4 + 4 * x // w for x in range(w))      # high byte 4..7
    mask = bytes(b & 0x07 for b in range(256))
    rows = []
    for _ in range(64):
        r = bytearray(os.urandom(rb))
        r[1::2] = bytes(a | b for a, b in zip(r[1::2].translate(mask), ramp))
        rows.append(bytes(r))
    # 64 distinct rows in an order drawn from SEED: every file differs.
    return b"".join(rows[rng.randrange(64)] for _ in range(h))


def main():
    out, pjpg = sys.argv[1], sys.argv[2]
    RW = int(sys.argv[3]) if len(sys.argv) > 3 else 6000
    RH = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    pdata = open(pjpg, "rb").read()
    W, H = jpeg_size(pdata)
    raw = cfa(RW, RH, seed)

    def e(lst, tag, typ, vals):
        if typ == 2:
            b = vals.encode() + b"\0"; n = len(b)
        elif typ in (5, 10):
            f = "<II" if typ == 5 else "<ii"
            b = b"".join(struct.pack(f, *v) for v in vals); n = len(vals)
        else:
            fmt = {1: "B", 3: "H", 4: "I"}[typ]
            b = b"".join(struct.pack("<" + fmt, v) for v in vals); n = len(vals)
        lst.append((tag, typ, n, b))

    ifd0, sub = [], []
    e(ifd0, 254, 4, [1]); e(ifd0, 256, 4, [W]); e(ifd0, 257, 4, [H])
    e(ifd0, 258, 3, [8, 8, 8]); e(ifd0, 259, 3, [7]); e(ifd0, 262, 3, [6])
    e(ifd0, 271, 2, "BenchMake"); e(ifd0, 272, 2, "BenchModel 24MP")
    e(ifd0, 273, 4, [0]); e(ifd0, 274, 3, [1]); e(ifd0, 277, 3, [3])
    e(ifd0, 278, 4, [H]); e(ifd0, 279, 4, [len(pdata)])
    e(ifd0, 306, 2, "2023:07:%02d 10:11:12" % (1 + seed % 28))
    e(ifd0, 330, 4, [0])
    e(ifd0, 50706, 1, [1, 4, 0, 0]); e(ifd0, 50707, 1, [1, 1, 0, 0])
    e(ifd0, 50708, 2, "BenchMake BenchModel 24MP")
    e(ifd0, 50721, 10, [(10000, 10000), (-2000, 10000), (-1000, 10000),
                        (-3000, 10000), (12000, 10000), (1000, 10000),
                        (-500, 10000), (1500, 10000), (6000, 10000)])
    e(ifd0, 50728, 5, [(1, 2), (1, 1), (2, 3)])
    e(ifd0, 50778, 3, [21])
    e(sub, 254, 4, [0]); e(sub, 256, 4, [RW]); e(sub, 257, 4, [RH])
    e(sub, 258, 3, [16]); e(sub, 259, 3, [1]); e(sub, 262, 3, [32803])
    e(sub, 273, 4, [0]); e(sub, 277, 3, [1]); e(sub, 278, 4, [RH])
    e(sub, 279, 4, [len(raw)])
    e(sub, 33421, 3, [2, 2]); e(sub, 33422, 1, [0, 1, 1, 2])
    e(sub, 50714, 3, [256]); e(sub, 50717, 3, [4095])

    def ifd_size(l): return 2 + 12 * len(l) + 4
    off0 = 8; offs = off0 + ifd_size(ifd0); extra = offs + ifd_size(sub)

    def pack(l, extra_off, fix):
        out = struct.pack("<H", len(l)); data = b""
        for tag, typ, n, b in sorted(l):
            b = fix.get(tag, b)
            if len(b) <= 4:
                out += struct.pack("<HHI", tag, typ, n) + b.ljust(4, b"\0")
            else:
                out += struct.pack("<HHII", tag, typ, n, extra_off + len(data))
                data += b
                if len(data) % 2:
                    data += b"\0"
        return out + struct.pack("<I", 0), data
    _, d0 = pack(ifd0, 0, {}); _, d1 = pack(sub, 0, {})
    poff = extra + len(d0) + len(d1)
    poff += poff % 2
    roff = poff + len(pdata) + (len(pdata) % 2)
    i0, d0 = pack(ifd0, extra, {273: struct.pack("<I", poff),
                                330: struct.pack("<I", offs)})
    i1, d1 = pack(sub, extra + len(d0), {273: struct.pack("<I", roff)})
    head = b"II*\0" + struct.pack("<I", off0) + i0 + i1 + d0 + d1
    head += b"\0" * (poff - len(head))
    with open(out, "wb") as f:
        f.write(head + pdata + b"\0" * (len(pdata) % 2) + raw)


main()
