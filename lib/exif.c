/*
 * exif.c - photo metadata: EXIF date, orientation, GPS, camera, and the
 * pixel dimensions from the image header, without decoding any pixels.
 *
 * Everything here reads untrusted bytes, so:
 *  - every read goes through src_read(), which is bounds-checked against
 *    the file size and a total budget (READ_BUDGET), so a hostile file
 *    cannot make us read more than a few MB or loop for long;
 *  - every loop over markers, chunks or boxes has a fixed iteration cap;
 *  - libexif only ever sees an EXIF block (<= 64 KiB) that our own parsers
 *    cut out of the file (SECURITY.md), we read only the tags we need from
 *    the IFD they belong in, and we check each entry's format, component
 *    count and size before decoding it.  We never call any *_get_value()
 *    function nor touch the MakerNote API.
 */
#include "mi-private.h"

#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define READ_BUDGET (4u << 20)    /* bytes read from one file, at most */
#define EXIF_MAX 65536u           /* bytes of EXIF handed to libexif */
#define JPEG_MAX_MARKERS 4096     /* markers walked before giving up */
#define JPEG_RESYNC 4096u         /* garbage bytes skipped between markers */
#define CHUNK_MAX 4096            /* PNG / RIFF chunks walked */
#define BOX_MAX 1024              /* ISO-BMFF boxes walked per level */
#define META_MAX (1u << 20)       /* bytes of a HEIF 'meta' box read */

static const unsigned char exif_header[6] = { 'E', 'x', 'i', 'f', 0, 0 };

/* ---------------------------------------------------------------------- */
/* Bounded reading from a file descriptor or a buffer                     */

typedef struct src {
    int fd;
    const unsigned char *buf;  /* when not NULL, read from here */
    uint64_t size;
    uint64_t budget;           /* bytes we may still read */
    bool io_error;
} src;

/* Read up to n bytes at off; fewer at the end of the file or the budget. */
static size_t src_read(src *s, uint64_t off, void *dst, size_t n)
{
    size_t got = 0;

    if (off >= s->size)
        return 0;
    if (n > s->size - off)
        n = (size_t)(s->size - off);
    if (n > s->budget)
        n = (size_t)s->budget;
    if (s->buf) {
        memcpy(dst, s->buf + off, n);
        got = n;
    } else {
        while (got < n) {
            ssize_t r = pread(s->fd, (char *)dst + got, n - got,
                              (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                s->io_error = true;
                break;
            }
            if (r == 0)  /* the file shrank: treat as its end */
                break;
            got += (size_t)r;
        }
    }
    s->budget -= got;
    return got;
}

static bool src_get(src *s, uint64_t off, void *dst, size_t n)
{
    return src_read(s, off, dst, n) == n;
}

static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le24(const unsigned char *p)
{
    return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
           (uint32_t)p[1] << 8 | p[0];
}

/* ---------------------------------------------------------------------- */
/* Dates                                                                  */

static bool two_digits(const char *s, int *out)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return false;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil): what timegm() computes, without its
 * dependence on the width of time_t. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Only blanks may follow a date or an offset (some writers pad). */
static bool blank_tail(const char *s)
{
    for (; *s; s++)
        if (*s != ' ')
            return false;
    return true;
}

/* "+HH:MM" / "-HH:MM" (also "+HHMM") into seconds east of UTC. */
static bool parse_offset(int *secs, const char *s)
{
    int sign, hh, mm;

    if (s[0] != '+' && s[0] != '-')
        return false;
    sign = s[0] == '-' ? -1 : 1;
    if (!two_digits(s + 1, &hh))
        return false;
    s += 3;
    if (*s == ':')
        s++;
    if (!two_digits(s, &mm) || !blank_tail(s + 2))
        return false;
    if (hh > 18 || mm > 59)  /* ISO 8601's widest zones */
        return false;
    *secs = sign * (hh * 3600 + mm * 60);
    return true;
}

bool mi_exif_parse_date(int64_t *out, const char *date, const char *offset)
{
    int year, c1, c2, mon, day, hour, min, sec, off = 0;
    bool has_off = offset && offset[0];

    if (out)
        *out = 0;
    if (!out || !date || strnlen(date, 20) < 19)
        return false;
    /* Date separators are ':' by the standard; '-' and '/' are common
     * enough in the wild to accept. */
    if (!two_digits(date, &c1) || !two_digits(date + 2, &c2))
        return false;
    year = c1 * 100 + c2;
    if ((date[4] != ':' && date[4] != '-' && date[4] != '/') ||
        date[7] != date[4] || (date[10] != ' ' && date[10] != 'T') ||
        date[13] != ':' || date[16] != ':')
        return false;
    if (!two_digits(date + 5, &mon) || !two_digits(date + 8, &day) ||
        !two_digits(date + 11, &hour) || !two_digits(date + 14, &min) ||
        !two_digits(date + 17, &sec) || !blank_tail(date + 19))
        return false;
    /* Years outside this window are placeholder or corrupt values, not
     * photographs. */
    if (year < 1800 || year > 2200 || mon < 1 || mon > 12 || day < 1 ||
        day > month_days(year, mon) || hour > 23 || min > 59 || sec > 60)
        return false;
    if (has_off && !parse_offset(&off, offset))
        return false;

    if (has_off) {
        *out = days_from_civil(year, mon, day) * 86400 + hour * 3600 +
               min * 60 + sec - off;
    } else {
        /* mktime() is thread-safe (unlike localtime()); tm_isdst = -1 lets
         * it decide whether DST was in force at that date.  Its error value
         * (time_t)-1 is also 1969-12-31 23:59:59 UTC: that one second is
         * given up. */
        struct tm tm;
        time_t t;

        memset(&tm, 0, sizeof tm);
        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        tm.tm_isdst = -1;
        t = mktime(&tm);
        if (t == (time_t)-1)
            return false;
        *out = (int64_t)t;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* EXIF through libexif                                                   */

static ExifEntry *tag_in(ExifData *ed, ExifIfd ifd, ExifTag tag)
{
    /* Never exif_data_get_entry(): it searches every IFD, and GPS tag
     * numbers collide with others (GPSLatitude == InteroperabilityVersion). */
    return ed->ifd[ifd] ? exif_content_get_entry(ed->ifd[ifd], tag) : NULL;
}

/* Copy an ASCII entry's bytes up to its NUL, at most outlen - 1 of them. */
static bool entry_text(const ExifEntry *e, char *out, size_t outlen)
{
    size_t n = 0;

    out[0] = '\0';
    if (!e || !e->data || e->size == 0 ||
        (e->format != EXIF_FORMAT_ASCII && e->format != EXIF_FORMAT_UNDEFINED))
        return false;
    while (n < e->size && n + 1 < outlen && e->data[n] != '\0') {
        out[n] = (char)e->data[n];
        n++;
    }
    out[n] = '\0';
    return n > 0;
}

/* Make/Model: printable ASCII, trimmed.  Control bytes become spaces (and
 * may then be trimmed); bytes >= 0x80 are not ASCII, so they become '?'
 * rather than risk invalid UTF-8 reaching JSON or a terminal. */
static void entry_label(const ExifEntry *e, char *out, size_t outlen)
{
    size_t start = 0, end;

    if (!entry_text(e, out, outlen))
        return;
    for (char *p = out; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            *p = ' ';
        else if (c >= 0x80)
            *p = '?';
    }
    end = strlen(out);
    while (end > 0 && out[end - 1] == ' ')
        end--;
    while (start < end && out[start] == ' ')
        start++;
    memmove(out, out + start, end - start);
    out[end - start] = '\0';
}

static bool entry_uint(const ExifEntry *e, ExifByteOrder bo, uint32_t *out)
{
    if (!e || !e->data || e->components < 1)
        return false;
    if (e->format == EXIF_FORMAT_SHORT && e->size >= 2) {
        *out = exif_get_short(e->data, bo);
        return true;
    }
    if (e->format == EXIF_FORMAT_LONG && e->size >= 4) {
        *out = exif_get_long(e->data, bo);
        return true;
    }
    return false;
}

/* Degrees, minutes, seconds as three RATIONALs, or SRATIONALs as some
 * phones write them (a Nokia 8.3's camera); a zero denominator, a negative
 * part or any other irregularity means "no position", not 0: the sign is
 * the reference letter's. */
static bool gps_coord(double *out, const ExifEntry *val, const ExifEntry *ref,
                      ExifByteOrder bo, char pos, char neg, double max)
{
    double v = 0.0, scale = 1.0;
    char r;

    if (!val || !val->data || val->components != 3 || val->size < 24 ||
        (val->format != EXIF_FORMAT_RATIONAL &&
         val->format != EXIF_FORMAT_SRATIONAL))
        return false;
    if (!ref || !ref->data || ref->size < 1 || ref->format != EXIF_FORMAT_ASCII)
        return false;
    r = (char)ref->data[0];
    if (r >= 'a' && r <= 'z')
        r = (char)(r - 'a' + 'A');
    if (r != pos && r != neg)
        return false;
    for (int i = 0; i < 3; i++) {
        double num, den;
        if (val->format == EXIF_FORMAT_SRATIONAL) {
            ExifSRational q = exif_get_srational(val->data + 8 * i, bo);
            if (q.numerator < 0 || q.denominator <= 0)
                return false;
            num = q.numerator;
            den = q.denominator;
        } else {
            ExifRational q = exif_get_rational(val->data + 8 * i, bo);
            if (q.denominator == 0)
                return false;
            num = q.numerator;
            den = q.denominator;
        }
        v += num / den / scale;
        scale *= 60.0;
    }
    if (!(v <= max))
        return false;
    *out = r == neg ? -v : v;
    return true;
}

typedef struct exif_dims {
    uint32_t width, height;
} exif_dims;

static const struct date_tag {
    ExifTag tag, offset_tag;
    ExifIfd ifd;
    mi_date_source source;
} date_tags[] = {
    { EXIF_TAG_DATE_TIME_ORIGINAL, EXIF_TAG_OFFSET_TIME_ORIGINAL,
      EXIF_IFD_EXIF, MI_DATE_EXIF_ORIGINAL },
    { EXIF_TAG_DATE_TIME_DIGITIZED, EXIF_TAG_OFFSET_TIME_DIGITIZED,
      EXIF_IFD_EXIF, MI_DATE_EXIF_DIGITIZED },
    { EXIF_TAG_DATE_TIME, EXIF_TAG_OFFSET_TIME, EXIF_IFD_0,
      MI_DATE_EXIF_DATETIME },
};

static void read_dates(mi_meta *m, ExifData *ed)
{
    for (size_t i = 0; i < MI_ARRAY_LEN(date_tags); i++) {
        const struct date_tag *dt = &date_tags[i];
        char date[32], offset[16];
        int secs;
        int64_t t;

        /* Only in its own IFD: with IGNORE_UNKNOWN_TAGS libexif drops a
         * tag found in an IFD where the standard does not record it. */
        if (!entry_text(tag_in(ed, dt->ifd, dt->tag), date, sizeof date))
            continue;
        /* The offset tags live in the Exif IFD.  A blank or malformed one
         * ("   :  ") means "unknown zone": use local time. */
        if (!entry_text(tag_in(ed, EXIF_IFD_EXIF, dt->offset_tag), offset,
                        sizeof offset) ||
            !parse_offset(&secs, offset))
            offset[0] = '\0';
        if (mi_exif_parse_date(&t, date, offset)) {
            m->has_date = true;
            m->date = t;
            m->date_source = dt->source;
            return;
        }
    }
}

/*
 * Apple's maker note: "Apple iOS\0", a version, "MM", then a big-endian
 * IFD whose offsets count from the note's start.  Its tag 0x0011 is the
 * id an iPhone gives both halves of a Live Photo (the video's
 * com.apple.quicktime.content.identifier): a UUID in ASCII.
 */
static void apple_live_id(mi_meta *m, const ExifEntry *e)
{
    const unsigned char *d;
    size_t n, count;

    if (!e || !e->data || e->size < 16 || e->size > 65536 ||
        memcmp(e->data, "Apple iOS\0", 10) != 0 || memcmp(e->data + 12, "MM", 2) != 0)
        return;
    d = e->data;
    n = e->size;
    count = (size_t)d[14] << 8 | d[15];
    for (size_t i = 0; i < count && 16 + 12 * (i + 1) <= n; i++) {
        const unsigned char *t = d + 16 + 12 * i;
        unsigned tag = (unsigned)t[0] << 8 | t[1], type = (unsigned)t[2] << 8 | t[3];
        size_t len = (size_t)t[4] << 24 | (size_t)t[5] << 16 | (size_t)t[6] << 8 | t[7];
        size_t off = (size_t)t[8] << 24 | (size_t)t[9] << 16 | (size_t)t[10] << 8 | t[11];
        const unsigned char *v = len <= 4 ? t + 8 : d + off;
        size_t k = 0;

        if (tag != 0x0011 || type != 2 || len < 2 || len >= sizeof m->live_id ||
            (len > 4 && (off > n || len > n - off)))
            continue;
        /* A UUID: hex digits and dashes only. */
        for (k = 0; k < len && v[k]; k++) {
            unsigned char c = v[k];
            if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
                  (c >= 'a' && c <= 'f') || c == '-'))
                break;
            m->live_id[k] = (char)c;
        }
        m->live_id[(k < len && v[k]) ? 0 : k] = '\0';
        return;
    }
}

/*
 * Parse an EXIF block: "Exif\0\0" and a TIFF structure, as in a JPEG APP1
 * segment.  Fills the EXIF fields of m and, from IFD0 or the Exif IFD,
 * the dimensions a TIFF file records.
 */
static void parse_exif(mi_meta *m, exif_dims *dims, const unsigned char *p,
                       size_t len)
{
    ExifData *ed;
    ExifByteOrder bo;
    ExifEntry *e;
    uint32_t v;

    if (len < sizeof exif_header + 8 || len > EXIF_MAX)
        return;
    ed = exif_data_new();
    if (!ed)
        return;
    /*
     * FOLLOW_SPECIFICATION (on by default) makes exif_data_load_data() run
     * exif_data_fix(), which adds "mandatory" tags with made-up values: a
     * DateTime of *now*, an Orientation of 1, and so on.  We want what the
     * file says, or nothing.  IGNORE_UNKNOWN_TAGS stays on: we need no tag
     * libexif does not know, and it keeps less of a hostile block in memory.
     * libexif logs only through an ExifLog, and we set none: it prints
     * nothing.
     */
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, p, (unsigned int)len);
    bo = exif_data_get_byte_order(ed);

    read_dates(m, ed);

    /* Orientation is a SHORT; anything else is not trusted. */
    e = tag_in(ed, EXIF_IFD_0, EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && entry_uint(e, bo, &v) &&
        v >= 1 && v <= 8)
        m->orientation = (int)v;

    {
        double lat, lon;
        if (gps_coord(&lat, tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE),
                      tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_LATITUDE_REF), bo,
                      'N', 'S', 90.0) &&
            gps_coord(&lon, tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE),
                      tag_in(ed, EXIF_IFD_GPS, EXIF_TAG_GPS_LONGITUDE_REF), bo,
                      'E', 'W', 180.0)) {
            m->has_gps = true;
            m->lat = lat;
            m->lon = lon;
        }
    }

    entry_label(tag_in(ed, EXIF_IFD_0, EXIF_TAG_MAKE), m->make, sizeof m->make);
    entry_label(tag_in(ed, EXIF_IFD_0, EXIF_TAG_MODEL), m->model,
                sizeof m->model);
    apple_live_id(m, tag_in(ed, EXIF_IFD_EXIF, EXIF_TAG_MAKER_NOTE));

    if (dims) {
        uint32_t w = 0, h = 0;
        if (!entry_uint(tag_in(ed, EXIF_IFD_0, EXIF_TAG_IMAGE_WIDTH), bo, &w) ||
            !entry_uint(tag_in(ed, EXIF_IFD_0, EXIF_TAG_IMAGE_LENGTH), bo, &h) ||
            w == 0 || h == 0) {
            w = h = 0;
            if (!entry_uint(tag_in(ed, EXIF_IFD_EXIF, EXIF_TAG_PIXEL_X_DIMENSION),
                            bo, &w) ||
                !entry_uint(tag_in(ed, EXIF_IFD_EXIF, EXIF_TAG_PIXEL_Y_DIMENSION),
                            bo, &h))
                w = h = 0;
        }
        dims->width = w;
        dims->height = h;
    }
    exif_data_unref(ed);
}

/*
 * Read `len` bytes of a TIFF structure at `off` (capped so that with the
 * "Exif\0\0" header they fit EXIF_MAX) and parse them as EXIF.  Offsets
 * beyond the cap simply fail inside libexif's own bounds checks.
 */
static void exif_from_tiff(mi_meta *m, exif_dims *dims, src *s, uint64_t off,
                           uint64_t len)
{
    unsigned char *p;
    size_t n;

    if (len > EXIF_MAX - sizeof exif_header)
        len = EXIF_MAX - sizeof exif_header;
    if (len < 8)
        return;
    p = malloc(sizeof exif_header + (size_t)len);
    if (!p)
        return;
    memcpy(p, exif_header, sizeof exif_header);
    n = src_read(s, off, p + sizeof exif_header, (size_t)len);
    parse_exif(m, dims, p, sizeof exif_header + n);
    free(p);
}

/* An EXIF payload from a PNG eXIf or WebP EXIF chunk: a bare TIFF
 * structure, though some writers keep JPEG's "Exif\0\0" in front. */
static void exif_from_chunk(mi_meta *m, src *s, uint64_t off, uint64_t len)
{
    unsigned char head[6];

    if (len >= 6 && src_get(s, off, head, 6) && memcmp(head, "Exif", 4) == 0) {
        off += 6;
        len -= 6;
    }
    exif_from_tiff(m, NULL, s, off, len);
}

/* ---------------------------------------------------------------------- */
/* JPEG                                                                   */

static bool is_sof(unsigned marker)
{
    /* SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC). */
    return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 &&
           marker != 0xC8 && marker != 0xCC;
}

/* After garbage where a marker should be, find the next 0xFF (as libjpeg
 * does, with a warning).  0 when there is none within JPEG_RESYNC bytes. */
static uint64_t jpeg_resync(src *s, uint64_t pos)
{
    unsigned char buf[JPEG_RESYNC];
    size_t n = src_read(s, pos, buf, sizeof buf);

    for (size_t i = 0; i + 1 < n; i++)
        if (buf[i] == 0xFF && buf[i + 1] != 0x00 && buf[i + 1] != 0xFF)
            return pos + i;
    return 0;
}

static void read_jpeg(mi_meta *m, src *s)
{
    uint64_t pos = 2;
    bool have_exif = false;

    for (int i = 0; i < JPEG_MAX_MARKERS; i++) {
        unsigned char h[4];
        unsigned marker;
        uint64_t data, dlen;

        if (!src_get(s, pos, h, 2))
            return;
        if (h[0] != 0xFF || h[1] == 0x00) {
            pos = jpeg_resync(s, pos + 1);
            if (pos == 0)
                return;
            continue;
        }
        marker = h[1];
        if (marker == 0xFF) {  /* fill byte before a marker */
            pos++;
            continue;
        }
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            pos += 2;          /* standalone markers: no length */
            continue;
        }
        if (marker == 0xD9 || marker == 0xDA)
            return;            /* EOI, or SOS: entropy-coded data follows */
        if (!src_get(s, pos + 2, h + 2, 2))
            return;
        if (be16(h + 2) < 2)
            return;
        data = pos + 4;
        dlen = be16(h + 2) - 2;

        if (marker == 0xE1 && !have_exif && dlen >= sizeof exif_header + 8) {
            unsigned char head[6];
            if (src_get(s, data, head, sizeof head) &&
                memcmp(head, "Exif\0", 5) == 0) {
                have_exif = true;
                exif_from_tiff(m, NULL, s, data + sizeof exif_header,
                               dlen - sizeof exif_header);
            }
        } else if (is_sof(marker)) {
            unsigned char sof[5];
            /* precision, height, width; a height of 0 (defined later by a
             * DNL marker) stays unknown. */
            if (dlen >= 5 && src_get(s, data, sof, 5) && be16(sof + 1) &&
                be16(sof + 3)) {
                m->height = be16(sof + 1);
                m->width = be16(sof + 3);
            }
            /* EXIF belongs before the frame header; stop reading here. */
            return;
        }
        pos = data + dlen;
    }
}

/* ---------------------------------------------------------------------- */
/* PNG, GIF, BMP, WebP                                                    */

static void read_png(mi_meta *m, src *s)
{
    unsigned char h[24];
    uint64_t pos;

    if (!src_get(s, 0, h, sizeof h) || memcmp(h + 12, "IHDR", 4) != 0)
        return;
    /* PNG limits both to 2^31 - 1. */
    if (be32(h + 16) && be32(h + 20) && be32(h + 16) <= INT32_MAX &&
        be32(h + 20) <= INT32_MAX) {
        m->width = be32(h + 16);
        m->height = be32(h + 20);
    }
    /* An eXIf chunk may come anywhere before IEND: walk the chunk headers
     * (skipping data costs no reads). */
    pos = 8;
    for (int i = 0; i < CHUNK_MAX; i++) {
        unsigned char c[8];
        uint64_t len;

        if (!src_get(s, pos, c, 8))
            return;
        len = be32(c);
        if (len > INT32_MAX || memcmp(c + 4, "IEND", 4) == 0)
            return;
        if (memcmp(c + 4, "eXIf", 4) == 0) {
            exif_from_chunk(m, s, pos + 8, len);
            return;
        }
        pos += 12 + len;  /* length, type, data, CRC */
    }
}

static void read_gif(mi_meta *m, src *s)
{
    unsigned char h[10];

    if (!src_get(s, 0, h, sizeof h) || !le16(h + 6) || !le16(h + 8))
        return;
    m->width = le16(h + 6);
    m->height = le16(h + 8);
}

static void read_bmp(mi_meta *m, src *s)
{
    unsigned char h[26];
    uint32_t dib;

    if (!src_get(s, 0, h, 18))
        return;
    dib = le32(h + 14);
    if (dib == 12) {  /* OS/2 BITMAPCOREHEADER: unsigned 16-bit */
        if (!src_get(s, 18, h + 18, 4) || !le16(h + 18) || !le16(h + 20))
            return;
        m->width = le16(h + 18);
        m->height = le16(h + 20);
    } else if (dib >= 40 && dib <= 4096) {
        int64_t w, hgt;
        if (!src_get(s, 18, h + 18, 8))
            return;
        /* Signed 32-bit; a negative height means top-down rows. */
        w = (int32_t)le32(h + 18);
        hgt = (int32_t)le32(h + 22);
        if (hgt < 0)
            hgt = -hgt;
        if (w <= 0 || hgt == 0)
            return;
        m->width = (uint32_t)w;
        m->height = (uint32_t)hgt;
    }
}

static void read_webp(mi_meta *m, src *s)
{
    uint64_t pos = 12, end;
    unsigned char riff[12];

    if (!src_get(s, 0, riff, sizeof riff))
        return;
    /* The RIFF size bounds the chunks; trust the smaller of it and the file. */
    end = (uint64_t)le32(riff + 4) + 8;
    if (end > s->size)
        end = s->size;
    for (int i = 0; i < CHUNK_MAX && pos + 8 <= end; i++) {
        unsigned char c[8], d[10];
        uint64_t len;

        if (!src_get(s, pos, c, 8))
            return;
        len = le32(c + 4);
        if (memcmp(c, "VP8 ", 4) == 0 && !m->width) {
            /* Frame tag (3 bytes), start code 9d 01 2a, 14-bit sizes. */
            if (len >= 10 && src_get(s, pos + 8, d, 10) &&
                d[3] == 0x9d && d[4] == 0x01 && d[5] == 0x2a &&
                (le16(d + 6) & 0x3fff) && (le16(d + 8) & 0x3fff)) {
                m->width = le16(d + 6) & 0x3fff;
                m->height = le16(d + 8) & 0x3fff;
            }
        } else if (memcmp(c, "VP8L", 4) == 0 && !m->width) {
            /* Signature 0x2f, then 14 bits width - 1, 14 bits height - 1. */
            if (len >= 5 && src_get(s, pos + 8, d, 5) && d[0] == 0x2f) {
                uint32_t bits = le32(d + 1);
                m->width = (bits & 0x3fff) + 1;
                m->height = ((bits >> 14) & 0x3fff) + 1;
            }
        } else if (memcmp(c, "VP8X", 4) == 0) {
            /* Flags, 3 reserved bytes, 24-bit canvas width - 1, height - 1.
             * The canvas is the displayed size, so it wins. */
            if (len >= 10 && src_get(s, pos + 8, d, 10)) {
                m->width = le24(d + 4) + 1;
                m->height = le24(d + 7) + 1;
            }
        } else if (memcmp(c, "EXIF", 4) == 0) {
            exif_from_chunk(m, s, pos + 8, len);
            return;
        }
        pos += 8 + len + (len & 1);  /* chunks are padded to even sizes */
    }
}

static void read_tiff(mi_meta *m, src *s)
{
    exif_dims dims = { 0, 0 };

    exif_from_tiff(m, &dims, s, 0, s->size);
    m->width = dims.width;
    m->height = dims.height;
}

/* ---------------------------------------------------------------------- */
/* HEIF / HEIC: ISO base media file format                                */

/* A box inside a buffer: header at *pos, body in [body, body + blen). */
static bool box_next(const unsigned char *p, size_t len, size_t *pos,
                     const unsigned char **type, size_t *body, size_t *blen)
{
    size_t hdr = 8;
    uint64_t size;

    if (*pos > len || len - *pos < 8)
        return false;
    size = be32(p + *pos);
    if (size == 1) {
        if (len - *pos < 16)
            return false;
        size = be64(p + *pos + 8);
        hdr = 16;
    } else if (size == 0) {
        size = len - *pos;  /* to the end of the parent */
    }
    if (size < hdr || size > len - *pos)
        return false;
    *type = p + *pos + 4;
    *body = *pos + hdr;
    *blen = (size_t)size - hdr;
    *pos += (size_t)size;
    return true;
}

/* Find the first child box of this type in [p, p + len). */
static bool box_find(const unsigned char *p, size_t len, const char *want,
                     size_t *body, size_t *blen)
{
    size_t pos = 0;
    const unsigned char *type;

    for (int i = 0; i < BOX_MAX && box_next(p, len, &pos, &type, body, blen); i++)
        if (memcmp(type, want, 4) == 0)
            return true;
    return false;
}

/* A cursor over a box body: reads past the end fail and stick. */
typedef struct rd {
    const unsigned char *p;
    size_t len, pos;
    bool bad;
} rd;

static uint64_t rd_uint(rd *r, size_t n)
{
    uint64_t v = 0;

    if (r->bad || n > 8 || r->len - r->pos < n) {
        r->bad = true;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v = v << 8 | r->p[r->pos + i];
    r->pos += n;
    return v;
}

typedef struct heif_info {
    uint32_t primary, exif_item;
    bool have_exif_item;
    uint64_t exif_off, exif_len;
    bool have_exif_loc;
    uint32_t width, height;
    int rotation;   /* irot angle / 90, anticlockwise */
} heif_info;

static void heif_iinf(heif_info *hi, const unsigned char *p, size_t len)
{
    size_t pos, body, blen;
    const unsigned char *type;

    if (len < 6)
        return;
    pos = p[0] == 0 ? 6 : 8;  /* version, flags, entry_count (16 or 32) */
    for (int i = 0; i < BOX_MAX && box_next(p, len, &pos, &type, &body, &blen); i++) {
        rd r = { p + body, blen, 0, false };
        unsigned version;
        uint32_t id;

        if (memcmp(type, "infe", 4) != 0)
            continue;
        version = (unsigned)rd_uint(&r, 1);
        rd_uint(&r, 3);
        if (version < 2)
            continue;  /* versions 0 and 1 have no item_type */
        id = (uint32_t)rd_uint(&r, version == 2 ? 2 : 4);
        rd_uint(&r, 2);  /* item_protection_index */
        if (!r.bad && r.len - r.pos >= 4 && memcmp(r.p + r.pos, "Exif", 4) == 0) {
            hi->exif_item = id;
            hi->have_exif_item = true;
            return;
        }
    }
}

static void heif_iloc(heif_info *hi, const unsigned char *p, size_t len)
{
    rd r = { p, len, 0, false };
    unsigned version, off_size, len_size, base_size, idx_size;
    uint32_t count;

    version = (unsigned)rd_uint(&r, 1);
    rd_uint(&r, 3);
    off_size = (unsigned)rd_uint(&r, 1);
    len_size = off_size & 15;
    off_size >>= 4;
    base_size = (unsigned)rd_uint(&r, 1);
    idx_size = (version == 1 || version == 2) ? (base_size & 15) : 0;
    base_size >>= 4;
    if (version > 2)
        return;
    count = (uint32_t)rd_uint(&r, version < 2 ? 2 : 4);
    for (uint32_t i = 0; i < count && i < 65536 && !r.bad; i++) {
        uint32_t id = (uint32_t)rd_uint(&r, version < 2 ? 2 : 4);
        unsigned method = 0;
        uint64_t base;
        uint32_t extents;

        if (version == 1 || version == 2)
            method = (unsigned)rd_uint(&r, 2) & 15;
        rd_uint(&r, 2);  /* data_reference_index */
        base = rd_uint(&r, base_size);
        extents = (uint32_t)rd_uint(&r, 2);
        for (uint32_t e = 0; e < extents && !r.bad; e++) {
            uint64_t off, elen;
            rd_uint(&r, idx_size);
            off = rd_uint(&r, off_size);
            elen = rd_uint(&r, len_size);
            /* Only a single extent in the file itself (method 0): the
             * way every camera we know stores its Exif item. */
            if (!r.bad && id == hi->exif_item && e == 0 && extents == 1 &&
                method == 0 && base <= UINT64_MAX - off) {
                hi->exif_off = base + off;
                hi->exif_len = elen;
                hi->have_exif_loc = true;
                return;
            }
        }
    }
}

static void heif_iprp(heif_info *hi, const unsigned char *p, size_t len)
{
    size_t ipco, ipco_len, ipma, ipma_len;
    struct { size_t body, len; const unsigned char *type; } props[256];
    size_t nprops = 0, pos = 0, body, blen;
    const unsigned char *type;

    if (!box_find(p, len, "ipco", &ipco, &ipco_len) ||
        !box_find(p, len, "ipma", &ipma, &ipma_len))
        return;
    while (nprops < MI_ARRAY_LEN(props) &&
           box_next(p + ipco, ipco_len, &pos, &type, &body, &blen)) {
        props[nprops].body = ipco + body;
        props[nprops].len = blen;
        props[nprops].type = type;
        nprops++;
    }
    {
        rd r = { p + ipma, ipma_len, 0, false };
        unsigned version = (unsigned)rd_uint(&r, 1);
        uint32_t flags = (uint32_t)rd_uint(&r, 3);
        uint32_t count = (uint32_t)rd_uint(&r, 4);

        for (uint32_t i = 0; i < count && i < 65536 && !r.bad; i++) {
            uint32_t id = (uint32_t)rd_uint(&r, version < 1 ? 2 : 4);
            unsigned n = (unsigned)rd_uint(&r, 1);
            for (unsigned a = 0; a < n && !r.bad; a++) {
                size_t index = (flags & 1) ? (size_t)(rd_uint(&r, 2) & 0x7fff)
                                           : (size_t)(rd_uint(&r, 1) & 0x7f);
                const unsigned char *q;
                if (r.bad || id != hi->primary || index == 0 || index > nprops)
                    continue;
                q = p + props[index - 1].body;
                if (memcmp(props[index - 1].type, "ispe", 4) == 0 &&
                    props[index - 1].len >= 12) {
                    hi->width = be32(q + 4);
                    hi->height = be32(q + 8);
                } else if (memcmp(props[index - 1].type, "irot", 4) == 0 &&
                           props[index - 1].len >= 1) {
                    hi->rotation = q[0] & 3;
                }
            }
            if (id == hi->primary)
                return;
        }
    }
}

static void read_heif(mi_meta *m, src *s)
{
    uint64_t pos = 0;
    heif_info hi;

    memset(&hi, 0, sizeof hi);
    for (int i = 0; i < BOX_MAX; i++) {
        unsigned char h[16];
        uint64_t size, hdr = 8;

        if (!src_get(s, pos, h, 8))
            return;
        size = be32(h);
        if (size == 1) {
            if (!src_get(s, pos + 8, h + 8, 8))
                return;
            size = be64(h + 8);
            hdr = 16;
        } else if (size == 0) {
            size = s->size - pos;
        }
        if (size < hdr || size > s->size - pos)
            return;
        if (memcmp(h + 4, "meta", 4) == 0) {
            uint64_t blen = size - hdr;
            unsigned char *meta;
            size_t b, bl;

            if (blen < 4 || blen > META_MAX)
                return;
            meta = malloc((size_t)blen);
            if (!meta)
                return;
            if (src_get(s, pos + hdr, meta, (size_t)blen)) {
                /* 'meta' is a full box: skip version and flags. */
                const unsigned char *c = meta + 4;
                size_t clen = (size_t)blen - 4;

                /* pitm: version 0 has a 16-bit item ID, later 32-bit. */
                if (box_find(c, clen, "pitm", &b, &bl) && bl >= 6) {
                    if (c[b] == 0)
                        hi.primary = be16(c + b + 4);
                    else if (bl >= 8)
                        hi.primary = be32(c + b + 4);
                }
                if (box_find(c, clen, "iinf", &b, &bl))
                    heif_iinf(&hi, c + b, bl);
                if (hi.have_exif_item && box_find(c, clen, "iloc", &b, &bl))
                    heif_iloc(&hi, c + b, bl);
                if (box_find(c, clen, "iprp", &b, &bl))
                    heif_iprp(&hi, c + b, bl);
            }
            free(meta);
            break;
        }
        pos += size;
    }

    /* The Exif item: a 32-bit offset to the TIFF header, usually 6 to
     * skip "Exif\0\0", then the TIFF structure. */
    if (hi.have_exif_loc && hi.exif_len >= 4 + 8 && hi.exif_off < s->size) {
        unsigned char h[4];
        if (src_get(s, hi.exif_off, h, 4) && be32(h) <= hi.exif_len - 4 - 8)
            exif_from_tiff(m, NULL, s, hi.exif_off + 4 + be32(h),
                           hi.exif_len - 4 - be32(h));
    }
    if (hi.width && hi.height) {
        /* HEIF displays the image rotated by 'irot'; the EXIF orientation
         * is informative only, so irot decides the displayed size. */
        bool swap = hi.rotation == 1 || hi.rotation == 3;
        m->width = swap ? hi.height : hi.width;
        m->height = swap ? hi.width : hi.height;
    }
}

/* ---------------------------------------------------------------------- */
/* Entry points                                                           */

static bool ext_is(const mi_media_type *t, const char *ext)
{
    return t && strcmp(t->ext, ext) == 0;
}

static mi_status read_meta(mi_meta *out, src *s, const mi_media_type *type)
{
    unsigned char head[MI_SNIFF_LEN];
    size_t n = src_read(s, 0, head, sizeof head);
    const mi_media_type *sniffed = mi_media_sniff(head, n);
    const mi_media_type *t = sniffed ? sniffed : type;
    bool heif = false;

    /* The bytes decide the format when they can: a PNG named .jpg is still
     * a PNG.  When they match nothing, trust the name. */
    if (s->io_error)
        return MI_EIO;
    if (t && (ext_is(t, "heic") || ext_is(t, "heif") || ext_is(t, "avif") ||
              ext_is(t, "heics") || ext_is(t, "heifs")))
        heif = true;

    if (t && t->kind == MI_KIND_IMAGE) {
        if (ext_is(t, "jpg") || ext_is(t, "jpeg") || ext_is(t, "jpe") ||
            ext_is(t, "jfif")) {
            if (n >= 3 && head[0] == 0xFF && head[1] == 0xD8)
                read_jpeg(out, s);
        } else if (ext_is(t, "png") || ext_is(t, "apng")) {
            read_png(out, s);
        } else if (ext_is(t, "gif")) {
            read_gif(out, s);
        } else if (ext_is(t, "bmp")) {
            read_bmp(out, s);
        } else if (ext_is(t, "webp")) {
            read_webp(out, s);
        } else if (ext_is(t, "tif") || ext_is(t, "tiff") || ext_is(t, "cr2") ||
                   ext_is(t, "nef") || ext_is(t, "orf")) {
            read_tiff(out, s);
        } else if (heif) {
            read_heif(out, s);
        }
    }

    /* Width and height as displayed: orientations 5-8 turn the image by a
     * quarter.  (HEIF's own rotation is already applied above.) */
    if (!heif && out->orientation >= 5 && out->orientation <= 8) {
        uint32_t w = out->width;
        out->width = out->height;
        out->height = w;
    }
    if (s->io_error)
        return MI_EIO;
    if (out->has_date || out->orientation || out->width || out->height ||
        out->has_gps || out->make[0] || out->model[0])
        return MI_OK;
    return MI_EFORMAT;
}

mi_status mi_meta_read_fd(mi_meta *out, int fd, uint64_t size,
                          const mi_media_type *type)
{
    src s;

    if (!out)
        return MI_EINVAL;
    memset(out, 0, sizeof *out);
    if (fd < 0)
        return MI_EINVAL;
    memset(&s, 0, sizeof s);
    s.fd = fd;
    /* pread() takes an off_t: keep every offset representable. */
    s.size = size > INT64_MAX ? INT64_MAX : size;
    s.budget = READ_BUDGET;
    return read_meta(out, &s, type);
}

mi_status mi_meta_read_buffer(mi_meta *out, const void *buf, size_t len,
                              const mi_media_type *type)
{
    src s;

    if (!out)
        return MI_EINVAL;
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return MI_EINVAL;
    memset(&s, 0, sizeof s);
    s.fd = -1;
    s.buf = buf;
    s.size = len;
    s.budget = READ_BUDGET;
    if (!buf)
        return MI_EFORMAT;
    return read_meta(out, &s, type);
}
