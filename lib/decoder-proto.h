/*
 * decoder-proto.h - the messages between the library and mi-decode, its
 * decoder process (decoder/mi-decode.c; the library's side is decoder.c).
 *
 * One request at a time over a Unix stream socket:
 *   library -> helper: an mi_dreq, with the file's descriptor attached
 *                      (SCM_RIGHTS); the helper reads it with pread only.
 *   helper -> library: an mi_dres, then res.w * res.h * 4 bytes of RGBA.
 * Both sides are one build of one source tree, so the structs are sent as
 * they are.  The library trusts nothing in an answer: every size is
 * checked against the request before anything is allocated or read.
 */
#ifndef MI_DECODER_PROTO_H
#define MI_DECODER_PROTO_H

#include <stdint.h>

#define MI_DPROTO_MAGIC 0x6d694431u  /* "miD1" */

enum mi_dop {
    MI_DOP_META = 1,     /* metadata only */
    MI_DOP_PIXELS = 2,   /* metadata and pixels that cover `box` */
};

enum mi_dformat {
    MI_DFMT_HEIF = 1,    /* HEIC, HEIF, AVIF: libheif */
    MI_DFMT_WEBP = 2,    /* libwebp */
    MI_DFMT_TIFF = 3,    /* libtiff */
    MI_DFMT_RAW = 4,     /* camera raw, DNG: libraw's embedded preview */
    MI_DFMT_VIDEO = 5,   /* libavformat + libavcodec */
};

#define MI_DREQ_MAX_BOX 4096u

/* mi-decode's CPU time over its whole life (RLIMIT_CPU).  The library
 * replaces a helper that has used half of it, so that the limit only
 * ever ends a runaway decode, never a healthy helper in the middle of a
 * file that is not to blame. */
#define MI_DECODER_CPU_SECONDS 3600

typedef struct mi_dreq {
    uint32_t magic;
    uint32_t op;          /* mi_dop */
    uint32_t box;         /* 1..MI_DREQ_MAX_BOX: the pixels must cover
                             box x box once shrunk to fit it; no side
                             over 2 * box (mi-decode answers with the
                             image fitted to 2 * box, never enlarged) */
    uint32_t format;      /* mi_dformat: what the name and bytes say;
                             the helper checks the bytes again */
    uint64_t max_pixels;  /* decoders refuse images over this */
} mi_dreq;

/* mi_dres.flags */
#define MI_DRES_ALPHA 0x1u      /* the pixels may be non-opaque */
#define MI_DRES_DATE 0x2u       /* date is set */
#define MI_DRES_ZONE 0x4u       /* date came with its zone (tz_offset) */
#define MI_DRES_GPS 0x8u        /* lat, lon are set */
#define MI_DRES_VIDEO 0x10u     /* the file is a video the helper opened */

#define MI_DRES_TEXT 64

typedef struct mi_dres {
    uint32_t magic;
    int32_t status;          /* mi_status */
    uint32_t w, h;           /* pixels that follow, RGBA; 0 x 0: none */
    uint32_t full_w, full_h; /* the image as stored (before orientation) */
    uint32_t orientation;    /* 1..8: apply this EXIF orientation to the
                                pixels; 0: the pixels are as displayed */
    uint32_t flags;
    int64_t date;            /* seconds since the epoch, UTC */
    int32_t tz_offset;       /* seconds east of UTC, with MI_DRES_ZONE */
    uint32_t duration_ms;
    double lat, lon;
    char codec[MI_DRES_TEXT];        /* "hevc", "h264", "heic", "dng"... */
    char make[MI_DRES_TEXT];
    char model[MI_DRES_TEXT];
    char content_id[MI_DRES_TEXT];   /* Apple's Live Photo pairing id */
    char reason[128];                /* why status is not MI_OK */
} mi_dres;

#endif
