/*
 * png.c - a small, fast PNG writer for 8-bit RGBA thumbnails.
 *
 * stb_image_write's PNG encoder costs as much as the scaled JPEG decode
 * (FACTS.md: ~13 ms for 256x192): it tries five filters per row and runs a
 * hash-chain deflate.  Photographs gain little from long-distance matches;
 * what compresses them is the row filter plus Huffman coding, and what
 * compresses the transparent margins is run-length coding.  So this writer
 * does what zlib calls Z_RLE (fpnge does the same):
 *  - each row's filter (None, Sub, Up or Paeth) is the one with the least
 *    sum of absolute values, the heuristic the PNG specification suggests;
 *  - deflate with matches at distance 1 only (runs of a byte), one block
 *    with Huffman codes built for this image (length-limited to 15 bits);
 *  - stored blocks when that would not be smaller (noise).
 * Deterministic: same pixels, same bytes.  bench/thumb-profile measures it
 * against stb_image_write.
 */
#include "config.h"
#include "mi-private.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Checksums                                                               */

static uint32_t crc32_update(const uint32_t table[256], uint32_t crc,
                             const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void crc32_table(uint32_t table[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

static uint32_t adler32(const uint8_t *p, size_t n)
{
    uint32_t a = 1, b = 0;

    while (n) {
        size_t k = n < 5552 ? n : 5552;
        n -= k;
        while (k--) {
            a += *p++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

/* ---------------------------------------------------------------------- */
/* Bits                                                                    */

typedef struct bitw {
    uint8_t *p;
    size_t n;
    uint64_t acc;
    int bits;
} bitw;

static inline void put_bits(bitw *b, uint32_t v, int n)
{
    b->acc |= (uint64_t)v << b->bits;
    b->bits += n;
    if (b->bits >= 32) {
        uint32_t w = (uint32_t)b->acc;
        b->p[b->n] = (uint8_t)w;
        b->p[b->n + 1] = (uint8_t)(w >> 8);
        b->p[b->n + 2] = (uint8_t)(w >> 16);
        b->p[b->n + 3] = (uint8_t)(w >> 24);
        b->n += 4;
        b->acc >>= 32;
        b->bits -= 32;
    }
}

static void flush_bits(bitw *b)
{
    while (b->bits > 0) {
        b->p[b->n++] = (uint8_t)b->acc;
        b->acc >>= 8;
        b->bits -= 8;
    }
    b->bits = 0;
    b->acc = 0;
}

/* ---------------------------------------------------------------------- */
/* Huffman codes                                                           */

#define MAX_SYMS 288

/* Code lengths (at most maxbits) for the symbols of `freq`: Huffman's
 * algorithm with two queues, then the lengths over maxbits folded back
 * while keeping the Kraft sum at one (as miniz does). */
static void huff_lengths(const uint32_t *freq, int n, int maxbits, uint8_t *len)
{
    int sym[MAX_SYMS], parent[2 * MAX_SYMS], depth[2 * MAX_SYMS];
    uint32_t w[2 * MAX_SYMS];
    int count[64] = { 0 };
    int nsym = 0, li, ii, next, i, l;
    uint32_t total = 0;

    memset(len, 0, (size_t)n);
    for (i = 0; i < n; i++)
        if (freq[i])
            sym[nsym++] = i;
    if (nsym == 0)
        return;
    if (nsym == 1) {
        len[sym[0]] = 1;
        len[sym[0] == 0 ? 1 : 0] = 1;  /* a complete code of two */
        return;
    }
    /* Ascending frequency, ties by symbol: deterministic. */
    for (i = 1; i < nsym; i++) {
        int s = sym[i], j = i;
        while (j > 0 && (freq[sym[j - 1]] > freq[s] ||
                         (freq[sym[j - 1]] == freq[s] && sym[j - 1] > s))) {
            sym[j] = sym[j - 1];
            j--;
        }
        sym[j] = s;
    }
    for (i = 0; i < nsym; i++)
        w[i] = freq[sym[i]];
    li = 0;
    ii = nsym;
    next = nsym;
    while (next < 2 * nsym - 1) {
        int pick[2];
        for (int k = 0; k < 2; k++) {
            if (li < nsym && (ii >= next || w[li] <= w[ii]))
                pick[k] = li++;
            else
                pick[k] = ii++;
        }
        w[next] = w[pick[0]] + w[pick[1]];
        parent[pick[0]] = parent[pick[1]] = next;
        next++;
    }
    depth[next - 1] = 0;
    for (i = next - 2; i >= 0; i--)
        depth[i] = depth[parent[i]] + 1;
    for (i = 0; i < nsym; i++)
        count[depth[i] > maxbits ? maxbits : depth[i]]++;
    for (l = 1; l <= maxbits; l++)
        total += (uint32_t)count[l] << (maxbits - l);
    while (total > (1u << maxbits)) {
        count[maxbits]--;
        for (l = maxbits - 1; l > 0; l--) {
            if (count[l]) {
                count[l]--;
                count[l + 1] += 2;
                break;
            }
        }
        total--;
    }
    /* The most frequent symbols (end of sym[]) get the shortest codes. */
    i = nsym;
    for (l = 1; l <= maxbits; l++)
        for (int k = count[l]; k > 0; k--)
            len[sym[--i]] = (uint8_t)l;
}

/* Canonical codes, bit-reversed for LSB-first output. */
static void huff_codes(const uint8_t *len, int n, uint16_t *code)
{
    int count[16] = { 0 }, nextc[16];
    int c = 0;

    for (int i = 0; i < n; i++)
        count[len[i]]++;
    count[0] = 0;
    for (int b = 1; b < 16; b++) {
        c = (c + count[b - 1]) << 1;
        nextc[b] = c;
    }
    for (int i = 0; i < n; i++) {
        int l = len[i];
        uint32_t v, r = 0;
        if (!l) {
            code[i] = 0;
            continue;
        }
        v = (uint32_t)nextc[l]++;
        for (int k = 0; k < l; k++) {
            r = (r << 1) | (v & 1);
            v >>= 1;
        }
        code[i] = (uint16_t)r;
    }
}

/* ---------------------------------------------------------------------- */
/* Deflate, run-length only                                                */

static const uint16_t len_base[29] = {
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const uint8_t len_extra[29] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
    3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint8_t cl_order[19] = {
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };

/* The next token at d[i]: a literal (returns 1, *len = 0) or a run of
 * *len >= 3 copies of d[i - 1] (a match at distance 1). */
static inline size_t next_token(const uint8_t *d, size_t n, size_t i,
                                unsigned *len)
{
    if (i > 0 && i + 2 < n && d[i] == d[i - 1] && d[i + 1] == d[i - 1] &&
        d[i + 2] == d[i - 1]) {
        size_t r = 3, max = n - i < 258 ? n - i : 258;
        while (r < max && d[i + r] == d[i - 1])
            r++;
        *len = (unsigned)r;
        return r;
    }
    *len = 0;
    return 1;
}

/* A planned deflate stream: codes built from a first pass over the data,
 * and the exact size, so the output is allocated once, to the byte. */
typedef struct zplan {
    uint8_t lencode[256];
    uint8_t llen[286], dlen[2], clen[19];
    uint16_t lcode[286], dcode[2], ccode[19];
    uint8_t rle[320], rle_extra[320];
    size_t nrle;
    int hlit, hclen;
    bool stored;
    size_t bytes;     /* of the zlib stream */
} zplan;

static void zlib_plan(zplan *z, const uint8_t *raw, size_t n)
{
    uint32_t lfreq[286] = { 0 }, cfreq[19] = { 0 };
    uint8_t seq[288 + 2];
    uint64_t bits;
    size_t i;
    int nseq;

    z->dlen[0] = z->dlen[1] = 1;
    z->nrle = 0;
    for (int c = 0; c < 29; c++) {
        int hi = c < 28 ? len_base[c + 1] - 1 : 258;
        if (c == 27)
            hi = 257;
        for (int l = len_base[c]; l <= hi; l++)
            z->lencode[l - 3] = (uint8_t)c;
    }
    for (i = 0; i < n;) {
        unsigned len;
        i += next_token(raw, n, i, &len);
        lfreq[len ? 257 + z->lencode[len - 3] : raw[i - 1]]++;
    }
    lfreq[256] = 1;
    huff_lengths(lfreq, 286, 15, z->llen);
    huff_codes(z->llen, 286, z->lcode);
    huff_codes(z->dlen, 2, z->dcode);

    /* The code lengths, run-length coded with symbols 16, 17, 18. */
    for (z->hlit = 286; z->hlit > 257 && !z->llen[z->hlit - 1]; z->hlit--)
        ;
    memcpy(seq, z->llen, (size_t)z->hlit);
    seq[z->hlit] = z->dlen[0];
    seq[z->hlit + 1] = z->dlen[1];
    nseq = z->hlit + 2;
    for (int k = 0; k < nseq;) {
        int l = seq[k], run = 1, r;
        while (k + run < nseq && seq[k + run] == l)
            run++;
        k += run;
        if (l == 0) {
            while (run >= 11) {
                r = run < 138 ? run : 138;
                z->rle[z->nrle] = 18;
                z->rle_extra[z->nrle++] = (uint8_t)(r - 11);
                run -= r;
            }
            if (run >= 3) {
                z->rle[z->nrle] = 17;
                z->rle_extra[z->nrle++] = (uint8_t)(run - 3);
                run = 0;
            }
        } else {
            z->rle[z->nrle] = (uint8_t)l;
            z->rle_extra[z->nrle++] = 0;
            run--;
            while (run >= 3) {
                r = run < 6 ? run : 6;
                z->rle[z->nrle] = 16;
                z->rle_extra[z->nrle++] = (uint8_t)(r - 3);
                run -= r;
            }
        }
        while (run-- > 0) {
            z->rle[z->nrle] = (uint8_t)l;
            z->rle_extra[z->nrle++] = 0;
        }
    }
    for (i = 0; i < z->nrle; i++)
        cfreq[z->rle[i]]++;
    huff_lengths(cfreq, 19, 7, z->clen);
    huff_codes(z->clen, 19, z->ccode);
    for (z->hclen = 19; z->hclen > 4 && !z->clen[cl_order[z->hclen - 1]]; z->hclen--)
        ;

    /* The size: header, code lengths, data, end of block. */
    bits = 3 + 5 + 5 + 4 + 3u * (unsigned)z->hclen;
    for (i = 0; i < z->nrle; i++)
        bits += z->clen[z->rle[i]] + (z->rle[i] == 16 ? 2 : z->rle[i] == 17 ? 3
                                      : z->rle[i] == 18 ? 7 : 0);
    for (i = 0; i < 286; i++) {
        uint64_t per = z->llen[i];
        if (i >= 257)
            per += len_extra[i - 257] + z->dlen[0];
        bits += (uint64_t)lfreq[i] * per;
    }
    z->bytes = (size_t)((bits + 7) / 8);
    /* Not smaller than stored blocks (noise): store. */
    z->stored = z->bytes >= n + 5 * (n / 65535 + 1);
    if (z->stored)
        z->bytes = n + 5 * (n / 65535 + 1);
    z->bytes += 2 + 4;  /* zlib header, Adler-32 */
}

/* Write the planned zlib stream of raw into out (z->bytes + 8 bytes of
 * room); returns its length. */
static size_t zlib_write(const zplan *z, uint8_t *out, const uint8_t *raw,
                         size_t n)
{
    uint32_t adler = adler32(raw, n);
    bitw b = { out, 0, 0, 0 };
    size_t i;

    out[b.n++] = 0x78;   /* deflate, 32 KiB window */
    out[b.n++] = 0x01;   /* fastest; (0x7801 % 31) == 0 */
    if (z->stored) {
        for (i = 0; i < n;) {
            size_t k = n - i < 65535 ? n - i : 65535;
            out[b.n++] = i + k >= n;   /* BFINAL, BTYPE 00 */
            out[b.n++] = (uint8_t)k;
            out[b.n++] = (uint8_t)(k >> 8);
            out[b.n++] = (uint8_t)~k;
            out[b.n++] = (uint8_t)(~k >> 8);
            memcpy(out + b.n, raw + i, k);
            b.n += k;
            i += k;
        }
    } else {
        put_bits(&b, 1, 1);                      /* final block */
        put_bits(&b, 2, 2);                      /* dynamic Huffman */
        put_bits(&b, (uint32_t)(z->hlit - 257), 5);
        put_bits(&b, 1, 5);                      /* two distance codes */
        put_bits(&b, (uint32_t)(z->hclen - 4), 4);
        for (int k = 0; k < z->hclen; k++)
            put_bits(&b, z->clen[cl_order[k]], 3);
        for (i = 0; i < z->nrle; i++) {
            uint8_t r = z->rle[i];
            put_bits(&b, z->ccode[r], z->clen[r]);
            if (r == 16)
                put_bits(&b, z->rle_extra[i], 2);
            else if (r == 17)
                put_bits(&b, z->rle_extra[i], 3);
            else if (r == 18)
                put_bits(&b, z->rle_extra[i], 7);
        }
        for (i = 0; i < n;) {
            unsigned len;
            i += next_token(raw, n, i, &len);
            if (!len) {
                uint8_t t = raw[i - 1];
                put_bits(&b, z->lcode[t], z->llen[t]);
            } else {
                unsigned c = z->lencode[len - 3];
                put_bits(&b, z->lcode[257 + c], z->llen[257 + c]);
                if (len_extra[c])
                    put_bits(&b, len - len_base[c], len_extra[c]);
                put_bits(&b, z->dcode[0], z->dlen[0]);
            }
        }
        put_bits(&b, z->lcode[256], z->llen[256]);
        flush_bits(&b);
    }
    out[b.n++] = (uint8_t)(adler >> 24);
    out[b.n++] = (uint8_t)(adler >> 16);
    out[b.n++] = (uint8_t)(adler >> 8);
    out[b.n++] = (uint8_t)adler;
    return b.n;
}

/* ---------------------------------------------------------------------- */
/* Filters                                                                 */

static inline uint8_t paeth(int a, int b, int c)
{
    int p = a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc)
        return (uint8_t)a;
    return (uint8_t)(pb <= pc ? b : c);
}

static inline unsigned cost(uint8_t v)
{
    return v < 128 ? v : 256u - v;
}

/* Filter one row of `n` bytes (4 per pixel) into dst[0] (the type) and
 * dst[1..n]; `prev` is the row above or NULL. */
static void filter_row(uint8_t *dst, const uint8_t *row, const uint8_t *prev,
                       size_t n, uint8_t *tmp)
{
    uint8_t *cand[4] = { tmp, tmp + n, tmp + 2 * n, tmp + 3 * n };
    static const uint8_t type[4] = { 0, 1, 2, 4 };
    unsigned sum[4] = { 0, 0, 0, 0 };
    int best = 0, ncand = prev ? 4 : 2;
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t a = i >= 4 ? row[i - 4] : 0;
        uint8_t b = prev ? prev[i] : 0;
        uint8_t c = prev && i >= 4 ? prev[i - 4] : 0;
        uint8_t v0 = row[i], v1 = (uint8_t)(row[i] - a);
        cand[0][i] = v0;
        cand[1][i] = v1;
        sum[0] += cost(v0);
        sum[1] += cost(v1);
        if (prev) {
            uint8_t v2 = (uint8_t)(row[i] - b);
            uint8_t v3 = (uint8_t)(row[i] - paeth(a, b, c));
            cand[2][i] = v2;
            cand[3][i] = v3;
            sum[2] += cost(v2);
            sum[3] += cost(v3);
        }
    }
    for (int k = 1; k < ncand; k++)
        if (sum[k] < sum[best])
            best = k;
    dst[0] = type[best];
    memcpy(dst + 1, cand[best], n);
}

static bool zero_row(const uint8_t *p, size_t n)
{
    uint64_t acc = 0, v;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        memcpy(&v, p + i, 8);
        acc |= v;
    }
    for (; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* ---------------------------------------------------------------------- */
/* The file                                                                */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

mi_status mi_png_encode_rgba(uint8_t **out, size_t *out_len,
                             const uint8_t *px, int w, int h, size_t stride)
{
    uint32_t table[256];
    size_t row = (size_t)w * 4, raw_len, zlen, pos;
    uint8_t *raw = NULL, *tmp = NULL, *png = NULL;
    mi_status s = MI_ENOMEM;
    zplan *z = NULL;

    *out = NULL;
    *out_len = 0;
    if (!px || w <= 0 || h <= 0 || w > 16384 || h > 16384)
        return MI_EINVAL;
    raw_len = (row + 1) * (size_t)h;
    raw = malloc(raw_len);
    tmp = malloc(4 * row);
    z = malloc(sizeof(*z));
    if (!raw || !tmp || !z)
        goto out;

    for (int y = 0; y < h; y++) {
        const uint8_t *r = px + (size_t)y * stride;
        uint8_t *d = raw + (size_t)y * (row + 1);
        if (zero_row(r, row) && (y == 0 || zero_row(r - stride, row))) {
            /* The transparent margins of a thumbnail: filter None (what
             * any filter would give), without trying them. */
            memset(d, 0, row + 1);
            continue;
        }
        filter_row(d, r, y ? r - stride : NULL, row, tmp);
    }
    zlib_plan(z, raw, raw_len);
    /* + 8: put_bits stores 4 bytes at a time. */
    png = malloc(8 + 25 + 12 + z->bytes + 12 + 8);
    if (!png)
        goto out;

    crc32_table(table);
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    put32(png + 8, 13);
    memcpy(png + 12, "IHDR", 4);
    put32(png + 16, (uint32_t)w);
    put32(png + 20, (uint32_t)h);
    png[24] = 8;    /* bit depth */
    png[25] = 6;    /* RGBA */
    png[26] = 0;    /* deflate */
    png[27] = 0;    /* adaptive filters */
    png[28] = 0;    /* not interlaced */
    put32(png + 29, crc32_update(table, 0, png + 12, 17));
    pos = 33;
    zlen = zlib_write(z, png + pos + 8, raw, raw_len);
    if (zlen != z->bytes) {     /* the plan and the stream disagree: a bug */
        s = MI_ERROR;
        goto out;
    }
    put32(png + pos, (uint32_t)zlen);
    memcpy(png + pos + 4, "IDAT", 4);
    put32(png + pos + 8 + zlen, crc32_update(table, 0, png + pos + 4, zlen + 4));
    pos += 12 + zlen;
    put32(png + pos, 0);
    memcpy(png + pos + 4, "IEND", 4);
    put32(png + pos + 8, crc32_update(table, 0, png + pos + 4, 4));
    pos += 12;

    *out = png;
    *out_len = pos;
    png = NULL;
    s = MI_OK;
out:
    free(raw);
    free(tmp);
    free(z);
    free(png);
    return s;
}
