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
 * Deterministic: same pixels, same bytes.  Written for the compiler's
 * vectorizer (the four filters' sums in one branch-free pass) and for few
 * mispredicted branches (runs found eight bytes at a time, one table entry
 * and one store per token); zlib computes the checksums.  256 x 256 from a
 * 12 MP photo: 0.78 ms against stb_image_write's 8.4 ms, 27% fewer bytes
 * (bench/thumb-profile).
 */
#include "config.h"
#include "mi-private.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* ---------------------------------------------------------------------- */
/* Bits                                                                    */

typedef struct bitw {
    uint8_t *p;
    size_t n;
    uint64_t acc;
    int bits;
} bitw;

/* Up to 32 bits at a time; LSB first.  The whole bytes of the
 * accumulator go out after every call, written as eight (the buffer has
 * 8 bytes of slack past the stream), so there is no branch to mispredict:
 * what stays behind is under 8 bits. */
static inline void put_bits(bitw *b, uint32_t v, int n)
{
    uint64_t a = b->acc | (uint64_t)v << b->bits, le = a;
    int whole = (b->bits + n) >> 3;

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    le = __builtin_bswap64(le);
#endif
    memcpy(b->p + b->n, &le, 8);
    b->n += (size_t)whole;
    b->acc = a >> (8 * whole);         /* whole <= 4: under 40 bits */
    b->bits = (b->bits + n) & 7;
}

static void flush_bits(bitw *b)
{
    if (b->bits > 0)
        b->p[b->n++] = (uint8_t)b->acc;
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

/* Eight bytes as a little-endian word: one load. */
static inline uint64_t load64le(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/*
 * The tokens of `d`: each a literal byte (0..255) or, at 256 + len - 3, a
 * run of len (3..258) copies of the byte before (a match at distance 1).
 * Returns how many; `tok` has room for n.
 *
 * Filtered photographs are mostly literals, and a byte equal to the one
 * before is common without making a run: so eight bytes are compared
 * with the eight before at once, and the first six of them go out as
 * literals together unless a run of three starts among them.
 */
static size_t tokenize(uint16_t *tok, const uint8_t *d, size_t n)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;
    size_t i = 0, k = 0;

    if (n)
        tok[k++] = d[i++];
    while (i < n) {
        uint8_t v;
        size_t r, max;

        if (i + 8 <= n) {
            /* 0x80 in each byte equal to the one before it (exact). */
            uint64_t x = load64le(d + i) ^ load64le(d + i - 1);
            uint64_t z = ~(((x & lo7) + lo7) | x | lo7);
            uint64_t run3 = z & z >> 8 & z >> 16 & 0x0000808080808080ull;

            if (!run3) {
                for (int j = 0; j < 6; j++)
                    tok[k + (size_t)j] = d[i + (size_t)j];
                k += 6;
                i += 6;
                continue;
            }
            /* The literals before the first run, then the run. */
            for (int j = __builtin_ctzll(run3) / 8; j > 0; j--)
                tok[k++] = d[i++];
        }
        v = d[i - 1];
        r = 0;
        max = n - i < 258 ? n - i : 258;
        /* Eight at a time first: the margins are runs of 258 zeros. */
        while (r + 8 <= max && load64le(d + i + r) == v * 0x0101010101010101ull)
            r += 8;
        while (r < max && d[i + r] == v)
            r++;
        if (r >= 3) {
            tok[k++] = (uint16_t)(256 + r - 3);
            i += r;
        } else {
            tok[k++] = d[i++];
        }
    }
    return k;
}

/* A planned deflate stream: codes built from the tokens' frequencies, and
 * the exact size, so the output is allocated once, to the byte. */
typedef struct zplan {
    uint8_t llen[286], dlen[2], clen[19];
    uint16_t lcode[286], dcode[2], ccode[19];
    uint32_t tbits[512];   /* each token's whole code: bits, */
    uint8_t tlen[512];     /* and how many */
    uint8_t rle[320], rle_extra[320];
    size_t nrle;
    int hlit, hclen;
    bool stored;
    size_t bytes;     /* of the zlib stream */
} zplan;

/* The length symbol (0..28, of 257..285) of a run of len 3..258. */
static int len_symbol(unsigned len)
{
    int c = 27;

    if (len >= 258)
        return 28;
    while (len_base[c] > len)
        c--;
    return c;
}

static void zlib_plan(zplan *z, const uint16_t *tok, size_t ntok, size_t n)
{
    uint32_t tfreq[4][512], lfreq[286] = { 0 }, cfreq[19] = { 0 };
    uint8_t seq[288 + 2];
    uint64_t bits;
    size_t i;
    int nseq;

    /* Four tables in turn: a byte that repeats does not wait on its own
     * last increment. */
    memset(tfreq, 0, sizeof(tfreq));
    for (i = 0; i + 4 <= ntok; i += 4) {
        tfreq[0][tok[i]]++;
        tfreq[1][tok[i + 1]]++;
        tfreq[2][tok[i + 2]]++;
        tfreq[3][tok[i + 3]]++;
    }
    for (; i < ntok; i++)
        tfreq[0][tok[i]]++;
    for (i = 0; i < 512; i++)
        tfreq[0][i] += tfreq[1][i] + tfreq[2][i] + tfreq[3][i];
    for (i = 0; i < 256; i++)
        lfreq[i] = tfreq[0][i];
    for (i = 256; i < 512; i++)
        lfreq[257 + len_symbol((unsigned)(i - 256 + 3))] += tfreq[0][i];

    z->dlen[0] = z->dlen[1] = 1;
    z->nrle = 0;
    lfreq[256] = 1;
    huff_lengths(lfreq, 286, 15, z->llen);
    huff_codes(z->llen, 286, z->lcode);
    huff_codes(z->dlen, 2, z->dcode);
    for (i = 0; i < 512; i++) {
        if (i < 256) {
            z->tbits[i] = z->lcode[i];
            z->tlen[i] = z->llen[i];
        } else {
            unsigned len = (unsigned)(i - 256 + 3);
            int c = len_symbol(len), l = z->llen[257 + c];
            z->tbits[i] = z->lcode[257 + c] |
                          (uint32_t)(len - len_base[c]) << l |
                          (uint32_t)z->dcode[0] << (l + len_extra[c]);
            z->tlen[i] = (uint8_t)(l + len_extra[c] + z->dlen[0]);
        }
    }

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
    for (i = 0; i < 512; i++)
        bits += (uint64_t)tfreq[0][i] * z->tlen[i];
    bits += z->llen[256];
    z->bytes = (size_t)((bits + 7) / 8);
    /* Not smaller than stored blocks (noise): store. */
    z->stored = z->bytes >= n + 5 * (n / 65535 + 1);
    if (z->stored)
        z->bytes = n + 5 * (n / 65535 + 1);
    z->bytes += 2 + 4;  /* zlib header, Adler-32 */
}

/* The Adler-32 of the h filtered rows of `rowlen` bytes in raw; those
 * `blank` (all zeros: the margins) without reading them, by zlib's
 * adler32_combine with the checksum of so many zeros (a = 1, b = count). */
static uint32_t adler_rows(const uint8_t *raw, size_t rowlen, int h,
                           const uint8_t *blank)
{
    uLong ad = adler32(0, Z_NULL, 0);
    uLong zeros = (uLong)(rowlen % 65521) << 16 | 1;

    for (int y = 0; y < h; y++)
        ad = blank[y] ? adler32_combine(ad, zeros, (z_off_t)rowlen)
                      : adler32(ad, raw + (size_t)y * rowlen, (uInt)rowlen);
    return (uint32_t)ad;
}

/* Write the planned zlib stream of raw (its tokens `tok`, its checksum
 * `adler`) into out (z->bytes + 8 bytes of room); returns its length. */
static size_t zlib_write(const zplan *z, uint8_t *out, const uint8_t *raw,
                         size_t n, const uint16_t *tok, size_t ntok,
                         uint32_t adler)
{
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
        for (i = 0; i < ntok; i++)
            put_bits(&b, z->tbits[tok[i]], z->tlen[tok[i]]);
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

/* Paeth's predictor with p = a + b - c folded in: |p - a| = |b - c| and
 * so on.  Branch-free, so that the loops below vectorize. */
static inline uint8_t paeth(uint8_t a, uint8_t b, uint8_t c)
{
    int pa = abs((int)b - c), pb = abs((int)a - c), pc = abs((int)a + b - 2 * c);
    uint8_t bc = pb <= pc ? b : c;

    return pa <= pb && pa <= pc ? a : bc;
}

/* The filter's cost of a byte: its distance from 0 as a signed byte. */
static inline unsigned cost(uint8_t v)
{
    return (unsigned)abs((int)(int8_t)v);
}

/* Filter one row of `n` bytes (4 per pixel) into dst[0] (the type) and
 * dst[1..n]; `prev` is the row above or NULL.  The four sums are taken
 * first, without storing (one pass the compiler vectorizes), then the
 * chosen filter alone is written. */
static void filter_row(uint8_t *dst, const uint8_t *row, const uint8_t *prev,
                       size_t n)
{
    static const uint8_t type[4] = { 0, 1, 2, 4 };
    uint8_t *d = dst + 1;
    int best = 0;
    size_t i, lead = n < 4 ? n : 4;

    if (!prev) {
        unsigned s0 = 0, s1 = 0;
        for (i = 0; i < lead; i++)
            s0 += cost(row[i]);
        s1 = s0;
        for (i = lead; i < n; i++) {
            s0 += cost(row[i]);
            s1 += cost((uint8_t)(row[i] - row[i - 4]));
        }
        best = s1 < s0;
    } else {
        unsigned s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        /* The first pixel: a = c = 0, so Sub is None and Paeth is Up. */
        for (i = 0; i < lead; i++) {
            s0 += cost(row[i]);
            s2 += cost((uint8_t)(row[i] - prev[i]));
        }
        s1 = s0;
        s3 = s2;
        for (i = lead; i < n; i++) {
            uint8_t a = row[i - 4], b = prev[i], c = prev[i - 4];
            s0 += cost(row[i]);
            s1 += cost((uint8_t)(row[i] - a));
            s2 += cost((uint8_t)(row[i] - b));
            s3 += cost((uint8_t)(row[i] - paeth(a, b, c)));
        }
        unsigned sum[4] = { s0, s1, s2, s3 };

        for (int k = 1; k < 4; k++)
            if (sum[k] < sum[best])
                best = k;
    }
    dst[0] = type[best];
    switch (best) {
    case 0:
        memcpy(d, row, n);
        break;
    case 1:
        memcpy(d, row, lead);
        for (i = lead; i < n; i++)
            d[i] = (uint8_t)(row[i] - row[i - 4]);
        break;
    case 2:
        for (i = 0; i < n; i++)
            d[i] = (uint8_t)(row[i] - prev[i]);
        break;
    default:
        for (i = 0; i < lead; i++)
            d[i] = (uint8_t)(row[i] - prev[i]);
        for (i = lead; i < n; i++)
            d[i] = (uint8_t)(row[i] - paeth(row[i - 4], prev[i], prev[i - 4]));
        break;
    }
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

/* A chunk's CRC: of its type and data. */
static uint32_t chunk_crc(const uint8_t *type_and_data, size_t n)
{
    return (uint32_t)crc32(crc32(0, Z_NULL, 0), type_and_data, (uInt)n);
}

mi_status mi_png_encode_rgba(uint8_t **out, size_t *out_len,
                             const uint8_t *px, int w, int h, size_t stride)
{
    size_t row = (size_t)w * 4, raw_len, zlen, pos, ntok;
    uint8_t *raw = NULL, *png = NULL, *blank = NULL;
    uint16_t *tok = NULL;
    mi_status s = MI_ENOMEM;
    zplan *z = NULL;

    *out = NULL;
    *out_len = 0;
    if (!px || w <= 0 || h <= 0 || w > 16384 || h > 16384)
        return MI_EINVAL;
    raw_len = (row + 1) * (size_t)h;
    raw = malloc(raw_len);
    tok = malloc(raw_len * sizeof(*tok));
    z = malloc(sizeof(*z));
    blank = malloc((size_t)h);
    if (!raw || !tok || !z || !blank)
        goto out;

    for (int y = 0, above = 1; y < h; y++) {
        const uint8_t *r = px + (size_t)y * stride;
        uint8_t *d = raw + (size_t)y * (row + 1);
        int zero = zero_row(r, row);

        blank[y] = (uint8_t)(zero && above);   /* the row above: zero too */
        above = zero;
        if (blank[y]) {
            /* The transparent margins of a thumbnail: filter None (what
             * any filter would give), without trying them. */
            memset(d, 0, row + 1);
            continue;
        }
        filter_row(d, r, y ? r - stride : NULL, row);
    }
    ntok = tokenize(tok, raw, raw_len);
    zlib_plan(z, tok, ntok, raw_len);
    /* + 8: put_bits stores 8 bytes at a time. */
    png = malloc(8 + 25 + 12 + z->bytes + 12 + 8);
    if (!png)
        goto out;

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
    put32(png + 29, chunk_crc(png + 12, 17));
    pos = 33;
    zlen = zlib_write(z, png + pos + 8, raw, raw_len, tok, ntok,
                      adler_rows(raw, row + 1, h, blank));
    if (zlen != z->bytes) {     /* the plan and the stream disagree: a bug */
        s = MI_ERROR;
        goto out;
    }
    put32(png + pos, (uint32_t)zlen);
    memcpy(png + pos + 4, "IDAT", 4);
    put32(png + pos + 8 + zlen, chunk_crc(png + pos + 4, zlen + 4));
    pos += 12 + zlen;
    put32(png + pos, 0);
    memcpy(png + pos + 4, "IEND", 4);
    put32(png + pos + 8, chunk_crc(png + pos + 4, 4));
    pos += 12;

    *out = png;
    *out_len = pos;
    png = NULL;
    s = MI_OK;
out:
    free(raw);
    free(blank);
    free(tok);
    free(z);
    free(png);
    return s;
}
