/*
 * media.c - which files are photos and videos, by name and by content.
 *
 * The name table follows Python 3.11's mimetypes: every image/ and video/
 * type it knows without reading system files (jpg, png, heic, mov, ...),
 * with its MIME string, plus the camera and web formats that a Debian
 * /etc/mime.types adds (webp, mkv, wmv, flv, m4v, ...) and a few that
 * cameras write but neither lists (3gp, m2ts/mts).  A scanner written in
 * Python with mimetypes.guess_type() would index the same files.
 */
#include "mi-private.h"

#include <string.h>

/*
 * One static table: mi_media_from_name() and mi_media_sniff() both return
 * pointers into it, so a caller can compare the two results directly.
 * It is small enough that a linear scan costs nothing next to a stat().
 */
static const mi_media_type media_types[] = {
    /* Images */
    { "jpg", "image/jpeg", MI_KIND_IMAGE, "jpeg" , false },
    { "jpeg", "image/jpeg", MI_KIND_IMAGE, "jpeg" , false },
    { "jpe", "image/jpeg", MI_KIND_IMAGE, "jpeg" , false },
    { "jfif", "image/jpeg", MI_KIND_IMAGE, "jpeg" , false },
    { "png", "image/png", MI_KIND_IMAGE, "png" , false },
    { "apng", "image/apng", MI_KIND_IMAGE, NULL , false },
    { "gif", "image/gif", MI_KIND_IMAGE, "gif" , false },
    { "bmp", "image/bmp", MI_KIND_IMAGE, "bmp" , false },
    { "tif", "image/tiff", MI_KIND_IMAGE, "tiff" , false },
    { "tiff", "image/tiff", MI_KIND_IMAGE, "tiff" , false },
    { "webp", "image/webp", MI_KIND_IMAGE, "webp" , false },
    { "heic", "image/heic", MI_KIND_IMAGE, "heif" , false },
    { "heif", "image/heif", MI_KIND_IMAGE, "heif" , false },
    { "heics", "image/heic-sequence", MI_KIND_IMAGE, "heif" , false },
    { "heifs", "image/heif-sequence", MI_KIND_IMAGE, "heif" , false },
    { "avif", "image/avif", MI_KIND_IMAGE, "heif" , false },
    /* Canon's and Fujifilm's in-camera HEIF: HEVC, not AV1. */
    { "hif", "image/heif", MI_KIND_IMAGE, "heif" , false },
    { "jxl", "image/jxl", MI_KIND_IMAGE, NULL , false },
    { "ico", "image/vnd.microsoft.icon", MI_KIND_IMAGE, NULL , false },
    { "svg", "image/svg+xml", MI_KIND_IMAGE, NULL , false },
    { "svgz", "image/svg+xml", MI_KIND_IMAGE, NULL , false },
    /* Camera raw.  The TIFF-based ones upload as the TIFF family (their
     * bytes are TIFF's); the others have magic bytes of their own. */
    { "dng", "image/x-adobe-dng", MI_KIND_IMAGE, "tiff", true },
    { "cr2", "image/x-canon-cr2", MI_KIND_IMAGE, "tiff", true },
    { "nef", "image/x-nikon-nef", MI_KIND_IMAGE, "tiff", true },
    { "nrw", "image/x-nikon-nrw", MI_KIND_IMAGE, "tiff", true },
    { "arw", "image/x-sony-arw", MI_KIND_IMAGE, "tiff", true },
    { "pef", "image/x-pentax-pef", MI_KIND_IMAGE, "tiff", true },
    { "srw", "image/x-samsung-srw", MI_KIND_IMAGE, "tiff", true },
    { "cr3", "image/x-canon-cr3", MI_KIND_IMAGE, "cr3", true },
    { "orf", "image/x-olympus-orf", MI_KIND_IMAGE, "orf", true },
    { "rw2", "image/x-panasonic-rw2", MI_KIND_IMAGE, "rw2", true },
    { "raf", "image/x-fuji-raf", MI_KIND_IMAGE, "raf", true },
    { "ief", "image/ief", MI_KIND_IMAGE, NULL , false },
    { "pbm", "image/x-portable-bitmap", MI_KIND_IMAGE, NULL , false },
    { "pgm", "image/x-portable-graymap", MI_KIND_IMAGE, NULL , false },
    { "ppm", "image/x-portable-pixmap", MI_KIND_IMAGE, NULL , false },
    { "pnm", "image/x-portable-anymap", MI_KIND_IMAGE, NULL , false },
    { "ras", "image/x-cmu-raster", MI_KIND_IMAGE, NULL , false },
    { "rgb", "image/x-rgb", MI_KIND_IMAGE, NULL , false },
    { "xbm", "image/x-xbitmap", MI_KIND_IMAGE, NULL , false },
    { "xpm", "image/x-xpixmap", MI_KIND_IMAGE, NULL , false },
    { "xwd", "image/x-xwindowdump", MI_KIND_IMAGE, NULL , false },
    /* Videos */
    { "mp4", "video/mp4", MI_KIND_VIDEO, "isobmff" , false },
    { "m4v", "video/mp4", MI_KIND_VIDEO, "isobmff" , false },
    { "mpg4", "video/mp4", MI_KIND_VIDEO, NULL , false },
    { "mov", "video/quicktime", MI_KIND_VIDEO, "isobmff" , false },
    { "qt", "video/quicktime", MI_KIND_VIDEO, "isobmff" , false },
    { "avi", "video/x-msvideo", MI_KIND_VIDEO, "avi" , false },
    { "mkv", "video/x-matroska", MI_KIND_VIDEO, "matroska" , false },
    { "webm", "video/webm", MI_KIND_VIDEO, "matroska" , false },
    { "3gp", "video/3gpp", MI_KIND_VIDEO, "isobmff" , false },
    { "3g2", "video/3gpp2", MI_KIND_VIDEO, "isobmff" , false },
    { "mpg", "video/mpeg", MI_KIND_VIDEO, "mpeg" , false },
    { "mpeg", "video/mpeg", MI_KIND_VIDEO, "mpeg" , false },
    { "mpe", "video/mpeg", MI_KIND_VIDEO, NULL , false },
    { "m1v", "video/mpeg", MI_KIND_VIDEO, NULL , false },
    { "m2v", "video/mpeg", MI_KIND_VIDEO, NULL , false },
    { "wmv", "video/x-ms-wmv", MI_KIND_VIDEO, "asf" , false },
    { "asf", "video/x-ms-asf", MI_KIND_VIDEO, "asf" , false },
    { "flv", "video/x-flv", MI_KIND_VIDEO, "flv" , false },
    { "ts", "video/mp2t", MI_KIND_VIDEO, "mpegts" , false },
    { "m2ts", "video/mp2t", MI_KIND_VIDEO, "mpegts" , false },
    { "mts", "video/mp2t", MI_KIND_VIDEO, "mpegts" , false },
    { "ogv", "video/ogg", MI_KIND_VIDEO, NULL , false },
    { "dv", "video/dv", MI_KIND_VIDEO, NULL , false },
    { "movie", "video/x-sgi-movie", MI_KIND_VIDEO, NULL , false },
};

/* The longest extension in the table, plus room: longer ones cannot match. */
#define MAX_EXT 8

static const mi_media_type *find_ext(const char *ext)
{
    for (size_t i = 0; i < MI_ARRAY_LEN(media_types); i++)
        if (strcmp(media_types[i].ext, ext) == 0)
            return &media_types[i];
    return NULL;
}

/* Lower-case ASCII only: file names are bytes, and the C locale's tolower()
 * would be the same but locale-dependent in general. */
static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

const mi_media_type *mi_media_from_name(const char *name)
{
    const char *base, *dot;
    char ext[MAX_EXT + 1];
    size_t n;

    if (!name)
        return NULL;
    base = strrchr(name, '/');
    base = base ? base + 1 : name;
    dot = strrchr(base, '.');
    /*
     * Like Python's os.path.splitext(), leading dots do not start an
     * extension: ".jpg" is a hidden file named "jpg" with no extension,
     * and mimetypes.guess_type(".jpg") is (None, None).
     */
    if (!dot)
        return NULL;
    {
        const char *p = base;
        while (*p == '.')
            p++;
        if (dot < p)
            return NULL;
    }
    n = strlen(dot + 1);
    if (n == 0 || n > MAX_EXT)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ext[i] = ascii_lower(dot[1 + i]);
    ext[n] = '\0';
    return find_ext(ext);
}

/* ---------------------------------------------------------------------- */
/* Sniffing                                                               */

static bool has(const unsigned char *b, size_t len, size_t off,
                const void *magic, size_t n)
{
    return off <= len && n <= len - off && memcmp(b + off, magic, n) == 0;
}

/* The type an ISO-BMFF brand names, or NULL.  3GPP brands come in many
 * versions (3gp4, 3gp5, 3ge6, 3gs7...), so match their prefix. */
static const mi_media_type *brand_type(const unsigned char *brand)
{
    static const struct {
        const char *brand;
        const char *ext;
    } brands[] = {
        { "heic", "heic" }, { "heix", "heic" }, { "heim", "heic" },
        { "heis", "heic" }, { "hevc", "heic" }, { "hevx", "heic" },
        { "avif", "avif" }, { "avis", "avif" }, { "crx ", "cr3" },
        { "qt  ", "mov" },
        { "M4V ", "m4v" }, { "M4VH", "m4v" }, { "M4VP", "m4v" },
        { "isom", "mp4" }, { "iso2", "mp4" }, { "iso3", "mp4" },
        { "iso4", "mp4" }, { "iso5", "mp4" }, { "iso6", "mp4" },
        { "mp41", "mp4" }, { "mp42", "mp4" }, { "avc1", "mp4" },
        { "mmp4", "mp4" }, { "dash", "mp4" }, { "f4v ", "mp4" },
        { "MSNV", "mp4" }, { "XAVC", "mp4" },
    };

    if (memcmp(brand, "3g2", 3) == 0)
        return find_ext("3g2");
    if (memcmp(brand, "3gp", 3) == 0 || memcmp(brand, "3ge", 3) == 0 ||
        memcmp(brand, "3gg", 3) == 0 || memcmp(brand, "3gs", 3) == 0)
        return find_ext("3gp");
    for (size_t i = 0; i < MI_ARRAY_LEN(brands); i++)
        if (memcmp(brand, brands[i].brand, 4) == 0)
            return find_ext(brands[i].ext);
    return NULL;
}

/*
 * ISO base media file format: "ftyp" at offset 4, a major brand at 8, a
 * minor version at 12, then compatible brands up to the box's end.  The
 * generic HEIF brands (mif1, msf1) say only "some HEIF": the compatible
 * brands tell AVIF from HEIC.
 */
static const mi_media_type *sniff_ftyp(const unsigned char *b, size_t len)
{
    uint32_t box = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                   (uint32_t)b[2] << 8 | b[3];
    size_t end = len;
    const mi_media_type *t;
    bool heif = false;

    if (box >= 16 && box < end)
        end = box;
    if (memcmp(b + 8, "mif1", 4) == 0 || memcmp(b + 8, "msf1", 4) == 0)
        heif = true;
    else if ((t = brand_type(b + 8)) != NULL)
        return t;
    for (size_t off = 16; off + 4 <= end; off += 4) {
        if (heif && (memcmp(b + off, "avif", 4) == 0 ||
                     memcmp(b + off, "avis", 4) == 0))
            return find_ext("avif");
        if (!heif && (t = brand_type(b + off)) != NULL)
            return t;
    }
    return heif ? find_ext("heic") : NULL;
}

/*
 * EBML: Matroska and WebM share the container; the DocType element
 * (ID 0x4282) in the header says which.  When it is not in the buffer,
 * call it Matroska, the general case.
 */
static const mi_media_type *sniff_ebml(const unsigned char *b, size_t len)
{
    for (size_t i = 4; i + 3 < len; i++) {
        if (b[i] != 0x42 || b[i + 1] != 0x82)
            continue;
        /* A one-byte EBML size (high bit set), then the string. */
        if ((b[i + 2] & 0x80) && has(b, len, i + 3, "webm", 4))
            return find_ext("webm");
        break;
    }
    return find_ext("mkv");
}

/* An EBML variable-length integer at b[*pos]: its value without the
 * length marker (all ones, "unknown", is UINT64_MAX); false when it does
 * not fit in len. */
static bool ebml_vint(const unsigned char *b, size_t len, size_t *pos,
                      uint64_t *out)
{
    size_t n = 1;
    uint64_t v, ones;

    if (*pos >= len || b[*pos] == 0)
        return false;
    while (!(b[*pos] & (0x80u >> (n - 1))))
        n++;
    if (*pos + n > len)
        return false;
    v = b[*pos] & (0xffu >> n);
    for (size_t i = 1; i < n; i++)
        v = v << 8 | b[*pos + i];
    ones = (UINT64_C(1) << (7 * n)) - 1;
    *out = v == ones ? UINT64_MAX : v;
    *pos += n;
    return true;
}

const char *mi_media_cut_short(const void *buf, size_t len, uint64_t size)
{
    const unsigned char *b = buf;
    size_t pos = 4;
    uint64_t n;

    if (!b || len < 4)
        return NULL;
    /* Matroska/WebM: the EBML header, then the Segment with its length
     * (unknown in a live recording: nothing to tell then). */
    if (has(b, len, 0, "\x1a\x45\xdf\xa3", 4)) {
        if (!ebml_vint(b, len, &pos, &n) || n == UINT64_MAX || n > len - pos)
            return NULL;
        pos += (size_t)n;
        if (!has(b, len, pos, "\x18\x53\x80\x67", 4))
            return NULL;
        pos += 4;
        if (!ebml_vint(b, len, &pos, &n) || n == UINT64_MAX)
            return NULL;
        return n > size || pos > size - n
                   ? "the file is shorter than its Matroska segment says"
                   : NULL;
    }
    /* An MPEG transport stream is whole packets (188 bytes, 192 in
     * .m2ts): one that ends inside a packet of every layout its first
     * bytes allow was cut (an .m2ts may begin 0x47 by chance too). */
    {
        bool ts = len > 188 && b[0] == 0x47 && b[188] == 0x47;
        bool m2ts = len > 196 && b[4] == 0x47 && b[196] == 0x47;
        if ((ts || m2ts) && !(ts && size % 188 == 0) && !(m2ts && size % 192 == 0))
            return "the transport stream ends inside a packet";
    }
    return NULL;
}

const mi_media_type *mi_media_sniff(const void *buf, size_t len)
{
    static const unsigned char png[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
                                          0x1a, '\n' };
    static const unsigned char asf[16] = { 0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66,
                                           0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA,
                                           0x00, 0x62, 0xCE, 0x6C };
    const unsigned char *b = buf;

    if (!b || len < 4)
        return NULL;
    if (b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return find_ext("jpg");
    if (has(b, len, 0, png, sizeof png))
        return find_ext("png");
    if (has(b, len, 0, "GIF87a", 6) || has(b, len, 0, "GIF89a", 6))
        return find_ext("gif");
    if (has(b, len, 0, "II*\0", 4) || has(b, len, 0, "MM\0*", 4))
        return find_ext("tif");
    /* Raw formats with a TIFF-like header of their own. */
    if (has(b, len, 0, "IIRO", 4) || has(b, len, 0, "IIRS", 4) ||
        has(b, len, 0, "MMOR", 4))
        return find_ext("orf");
    if (has(b, len, 0, "IIU\0", 4))
        return find_ext("rw2");
    if (has(b, len, 0, "FUJIFILMCCD-RAW", 15))
        return find_ext("raf");
    if (has(b, len, 0, "RIFF", 4) && has(b, len, 8, "WEBP", 4))
        return find_ext("webp");
    if (has(b, len, 0, "RIFF", 4) && has(b, len, 8, "AVI ", 4))
        return find_ext("avi");
    if (len >= 16 && has(b, len, 4, "ftyp", 4))
        return sniff_ftyp(b, len);
    /* QuickTime files older than ftyp start with one of these atoms. */
    if (len >= 8 && (has(b, len, 4, "moov", 4) || has(b, len, 4, "mdat", 4) ||
                     has(b, len, 4, "wide", 4) || has(b, len, 4, "pnot", 4)))
        return find_ext("mov");
    if (has(b, len, 0, "\x1a\x45\xdf\xa3", 4))
        return sniff_ebml(b, len);
    /* MPEG program stream pack header, or an MPEG-1/2 video sequence. */
    if (has(b, len, 0, "\0\0\1\xba", 4) || has(b, len, 0, "\0\0\1\xb3", 4))
        return find_ext("mpg");
    /* MPEG transport stream: sync bytes 188 bytes apart (or 192, for the
     * timestamped packets of Blu-ray/AVCHD .m2ts). */
    if (len > 188 && b[0] == 0x47 && b[188] == 0x47)
        return find_ext("ts");
    if (len > 196 && b[4] == 0x47 && b[196] == 0x47)
        return find_ext("m2ts");
    if (has(b, len, 0, asf, sizeof asf))
        return find_ext("wmv");
    if (has(b, len, 0, "FLV\x01", 4))
        return find_ext("flv");
    if (has(b, len, 0, "OggS", 4) && has(b, len, 28, "\x80theora", 7))
        return find_ext("ogv");
    /* BMP last among the short magics: "BM" is two bytes; require a
     * plausible DIB header size too. */
    if (len >= 18 && b[0] == 'B' && b[1] == 'M') {
        uint32_t dib = (uint32_t)b[14] | (uint32_t)b[15] << 8 |
                       (uint32_t)b[16] << 16 | (uint32_t)b[17] << 24;
        if (dib == 12 || dib == 16 || dib == 40 || dib == 52 || dib == 56 ||
            dib == 64 || dib == 108 || dib == 124)
            return find_ext("bmp");
    }
    /* ICO: reserved 0, type 1, a non-zero image count, and a zero
     * reserved byte in the first directory entry. */
    if (len >= 22 && has(b, len, 0, "\0\0\1\0", 4) && (b[4] | b[5]) &&
        b[9] == 0)
        return find_ext("ico");
    /* SVG: XML text naming an svg element early on. */
    if (has(b, len, 0, "<svg", 4) ||
        ((has(b, len, 0, "<?xml", 5) || has(b, len, 0, "\xef\xbb\xbf<?xml", 8)) &&
         memmem(b, len, "<svg", 4) != NULL))
        return find_ext("svg");
    return NULL;
}

bool mi_media_browser_shows(const mi_media_type *t)
{
    /* What every current browser decodes in an <img>. */
    static const char *const mimes[] = { "image/jpeg", "image/png",
                                         "image/apng", "image/gif",
                                         "image/bmp", "image/webp",
                                         "image/avif", "image/svg+xml",
                                         "image/vnd.microsoft.icon" };
    if (!t)
        return false;
    for (size_t i = 0; i < MI_ARRAY_LEN(mimes); i++)
        if (strcmp(t->mime, mimes[i]) == 0)
            return true;
    return false;
}

const char *mi_media_type_at(size_t i, const char **mime, unsigned int *flags)
{
    const mi_media_type *t;

    if (i >= MI_ARRAY_LEN(media_types))
        return NULL;
    t = &media_types[i];
    if (mime)
        *mime = t->mime;
    if (flags) {
        *flags = 0;
        if (t->kind == MI_KIND_VIDEO)
            *flags |= MI_MEDIA_VIDEO;
        if (t->upload)
            *flags |= MI_MEDIA_UPLOAD;
        if (t->kind == MI_KIND_IMAGE && t->upload && !mi_media_browser_shows(t))
            *flags |= MI_MEDIA_PREVIEW;
    }
    return t->ext;
}
