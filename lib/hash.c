/*
 * hash.c - SHA-256 of buffers, streams and files.
 *
 * Two engines, chosen at configure time (-Dopenssl=...):
 *  - OpenSSL libcrypto through EVP, which uses the CPU's SHA extensions
 *    (about 5x faster than libsodium on the machines we run on);
 *  - libsodium's portable crypto_hash_sha256, for builds without OpenSSL.
 * Neither engine's headers leak out of this file.
 */
#include "config.h"
#include "mi-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(MI_HAVE_OPENSSL) && MI_HAVE_OPENSSL
#define MI_HASH_OPENSSL 1
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#else
#define MI_HASH_OPENSSL 0
#include <sodium.h>
#endif

/*
 * MI_HASH_CHUNK (mi-private.h), bytes per read() when hashing.  Measured
 * with bench/hash-1g.sh on a warm 1 GiB file (2-core x86-64 with SHA-NI, OpenSSL 3.0, hyperfine, 10-15
 * runs): 64 KiB 739-765 ms, 128 KiB 719-741 ms, 256 KiB 738-763 ms,
 * 1 MiB 713-755 ms, all within noise of each other and of the compute-only
 * speed (~1.45 GB/s); `openssl dgst` took 944-965 ms with its 8 KiB reads.
 * Past 64 KiB the syscall cost is gone, so we take 128 KiB: tied for best,
 * the kernel's default readahead window (so cold reads stay streaming), and
 * small enough to stay in L2 between read()'s copy and the hash.
 */

/* Files smaller than this are not worth a posix_fadvise() call. */
#define MI_HASH_FADVISE_MIN (4u * MI_HASH_CHUNK)

struct mi_hasher {
#if MI_HASH_OPENSSL
    EVP_MD_CTX *ctx;
    /*
     * In OpenSSL 3 an explicitly fetched EVP_MD spares every
     * EVP_DigestInit (one per file, since mi_hasher_final re-inits) the
     * implicit fetch that EVP_sha256() implies: a lookup in the library
     * context's method store under a lock that all worker threads share.
     * Measured (OpenSSL 3.0): creating a hasher costs the same either way
     * (~265 ns fetched, ~255 ns with EVP_sha256()), but a reuse cycle
     * (update 32 bytes, final, re-init) takes ~83 ns with the fetched
     * EVP_MD against ~290 ns with EVP_sha256() - it matters for tiny files.
     */
    EVP_MD *md;
#else
    crypto_hash_sha256_state state;
#endif
};

#if MI_HASH_OPENSSL && OPENSSL_VERSION_NUMBER >= 0x30000000L
#define MI_HAVE_EVP_FETCH 1
#else
#define MI_HAVE_EVP_FETCH 0
#endif

const char *mi_hash_engine(void)
{
    return MI_HASH_OPENSSL ? "openssl" : "libsodium";
}

/* ---------------------------------------------------------------------- */
/* The engines                                                             */

#if MI_HASH_OPENSSL

static const EVP_MD *hasher_md(const mi_hasher *h)
{
#if MI_HAVE_EVP_FETCH
    return h->md;
#else
    (void)h;
    return EVP_sha256();
#endif
}

static mi_status engine_reset(mi_hasher *h)
{
    return EVP_DigestInit_ex(h->ctx, hasher_md(h), NULL) == 1 ? MI_OK
                                                               : MI_ERROR;
}

static mi_status engine_update(mi_hasher *h, const void *buf, size_t len)
{
    return EVP_DigestUpdate(h->ctx, buf, len) == 1 ? MI_OK : MI_ERROR;
}

static mi_status engine_final(mi_hasher *h, uint8_t out[MI_HASH_SIZE])
{
    unsigned int n = 0;

    if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != MI_HASH_SIZE)
        return MI_ERROR;
    return MI_OK;
}

static mi_status engine_open(mi_hasher *h)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx)
        return MI_ENOMEM;
#if MI_HAVE_EVP_FETCH
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!h->md)
        return MI_EUNSUPPORTED;  /* e.g. a provider config without SHA-256 */
#endif
    return engine_reset(h);
}

static void engine_close(mi_hasher *h)
{
    EVP_MD_CTX_free(h->ctx);
#if MI_HAVE_EVP_FETCH
    EVP_MD_free(h->md);
#endif
}

static mi_status engine_oneshot(uint8_t out[MI_HASH_SIZE], const void *buf,
                                size_t len)
{
    unsigned int n = 0;

    /* One call; EVP_Digest makes and frees its own context. */
    if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != MI_HASH_SIZE)
        return MI_ERROR;
    return MI_OK;
}

#else /* libsodium */

/*
 * sodium_init() is the one library-global initialisation we cannot avoid
 * with libsodium: its documentation requires it before any other call.  It
 * is idempotent and thread-safe (guarded by libsodium's own lock), so we
 * call it wherever a hashing entry point may be the first use, and the
 * caller never has to remember a global init function.
 */
static mi_status engine_init_library(void)
{
    return sodium_init() < 0 ? MI_ERROR : MI_OK;
}

static mi_status engine_reset(mi_hasher *h)
{
    return crypto_hash_sha256_init(&h->state) == 0 ? MI_OK : MI_ERROR;
}

static mi_status engine_update(mi_hasher *h, const void *buf, size_t len)
{
    return crypto_hash_sha256_update(&h->state, buf, len) == 0 ? MI_OK
                                                               : MI_ERROR;
}

static mi_status engine_final(mi_hasher *h, uint8_t out[MI_HASH_SIZE])
{
    return crypto_hash_sha256_final(&h->state, out) == 0 ? MI_OK : MI_ERROR;
}

static mi_status engine_open(mi_hasher *h)
{
    mi_status st = engine_init_library();

    if (st != MI_OK)
        return st;
    return engine_reset(h);
}

static void engine_close(mi_hasher *h)
{
    (void)h;
}

static mi_status engine_oneshot(uint8_t out[MI_HASH_SIZE], const void *buf,
                                size_t len)
{
    mi_status st = engine_init_library();

    if (st != MI_OK)
        return st;
    return crypto_hash_sha256(out, buf, len) == 0 ? MI_OK : MI_ERROR;
}

#endif

/* ---------------------------------------------------------------------- */
/* Hashers                                                                 */

mi_status mi_hasher_new(mi_hasher **out)
{
    mi_hasher *h;
    mi_status st;

    if (!out)
        return MI_EINVAL;
    *out = NULL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return MI_ENOMEM;
    st = engine_open(h);
    if (st != MI_OK) {
        mi_hasher_free(h);
        return st;
    }
    *out = h;
    return MI_OK;
}

void mi_hasher_free(mi_hasher *h)
{
    if (!h)
        return;
    engine_close(h);
    free(h);
}

mi_status mi_hasher_update(mi_hasher *h, const void *buf, size_t len)
{
    if (!h || (!buf && len > 0))
        return MI_EINVAL;
    if (len == 0)
        return MI_OK;  /* engines need not see (and may dislike) NULL, 0 */
    return engine_update(h, buf, len);
}

mi_status mi_hasher_final(mi_hasher *h, uint8_t out[MI_HASH_SIZE])
{
    mi_status st, rst;

    if (!out)
        return MI_EINVAL;
    if (!h) {
        memset(out, 0, MI_HASH_SIZE);
        return MI_EINVAL;
    }
    st = engine_final(h, out);
    /* Reset even after a failure, so the hasher stays usable. */
    rst = engine_reset(h);
    if (st == MI_OK)
        st = rst;
    if (st != MI_OK)
        memset(out, 0, MI_HASH_SIZE);
    return st;
}

mi_status mi_hash_buffer(uint8_t out[MI_HASH_SIZE], const void *buf,
                         size_t len)
{
    static const unsigned char empty[1];
    mi_status st;

    if (!out)
        return MI_EINVAL;
    if (!buf && len > 0) {
        memset(out, 0, MI_HASH_SIZE);
        return MI_EINVAL;
    }
    st = engine_oneshot(out, buf ? buf : empty, len);
    if (st != MI_OK)
        memset(out, 0, MI_HASH_SIZE);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

/* A read() failure: MI_EINVAL for a directory, otherwise an I/O error. */
static mi_status status_from_read_errno(int err)
{
    switch (err) {
    case EISDIR:
        return MI_EINVAL;
    case ENOMEM:
        return MI_ENOMEM;
    default:
        return MI_EIO;
    }
}

mi_status mi_hash_fd(uint8_t out[MI_HASH_SIZE], int fd, mi_hasher *h,
                     void *buf, size_t buflen, uint64_t *bytes)
{
    mi_status st;

    if (!out)
        return MI_EINVAL;
    memset(out, 0, MI_HASH_SIZE);
    if (fd < 0 || !h || !buf || buflen == 0)
        return MI_EINVAL;
    /* read() may not be asked for more than SSIZE_MAX bytes. */
    if (buflen > (size_t)SSIZE_MAX)
        buflen = (size_t)SSIZE_MAX;

    /* Start from a clean state whatever the caller left in the hasher. */
    st = engine_reset(h);
    if (st != MI_OK)
        return st;

    for (;;) {
        ssize_t n = read(fd, buf, buflen);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            st = status_from_read_errno(errno);
            break;
        }
        if (n == 0)
            break;  /* EOF; a short read before it just loops */
        if (bytes)
            *bytes += (uint64_t)n;
        st = engine_update(h, buf, (size_t)n);
        if (st != MI_OK)
            break;
    }

    if (st == MI_OK)
        return mi_hasher_final(h, out);
    /* Leave the hasher reusable, and out zeroed, after a failure. */
    (void)engine_reset(h);
    return st;
}

/*
 * Open `path` for hashing without ever blocking or acquiring a terminal:
 * O_NONBLOCK keeps a FIFO's open() from waiting for a writer, O_NOCTTY
 * keeps a tty from becoming our controlling terminal.  Non-regular files
 * are refused after fstat() on the descriptor itself (no race with a
 * rename), then O_NONBLOCK is cleared so that reads of a regular file on
 * any file system (FUSE, network, mandatory locks) behave normally.
 */
static mi_status open_regular(int *out_fd, struct stat *sb, const char *path)
{
    int fd, flags;

    *out_fd = -1;
    /*
     * Look before opening, too: opening a device node can have side
     * effects (a tape rewinds, a modem line is raised) even when we
     * refuse it right after.  The fstat() below is what makes it safe.
     */
    if (stat(path, sb) != 0)
        return mi_status_from_errno(errno);
    if (!S_ISREG(sb->st_mode))
        return MI_EINVAL;

    do
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno == ENXIO ? MI_EINVAL  /* a socket or absent device */
                              : mi_status_from_errno(errno);

    if (fstat(fd, sb) != 0) {
        int err = errno;
        close(fd);
        return mi_status_from_errno(err);
    }
    if (!S_ISREG(sb->st_mode)) {
        close(fd);
        return MI_EINVAL;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int err = errno;
        close(fd);
        return mi_status_from_errno(err);
    }
    *out_fd = fd;
    return MI_OK;
}

mi_status mi_hash_file(uint8_t out[MI_HASH_SIZE], const char *path)
{
    struct stat sb;
    mi_hasher *h = NULL;
    void *buf = NULL;
    size_t buflen;
    int fd = -1;
    mi_status st;

    if (!out)
        return MI_EINVAL;
    memset(out, 0, MI_HASH_SIZE);
    if (!path || !*path)
        return MI_EINVAL;

    st = open_regular(&fd, &sb, path);
    if (st != MI_OK)
        return st;

    /*
     * A small file gets a buffer just big enough to be read in one go plus
     * the read() that sees EOF: a full-size buffer would cost an mmap and
     * page faults per file, which dominates when hashing many tiny files.
     */
    buflen = MI_HASH_CHUNK;
    if (sb.st_size >= 0 && (uint64_t)sb.st_size < buflen) {
        buflen = (size_t)sb.st_size + 1;
        if (buflen < 4096)
            buflen = 4096;
    } else if ((uint64_t)sb.st_size >= MI_HASH_FADVISE_MIN) {
        /* Advice only: a failure changes nothing. */
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }

    buf = malloc(buflen);
    if (!buf) {
        st = MI_ENOMEM;
        goto out;
    }
    st = mi_hasher_new(&h);
    if (st != MI_OK)
        goto out;
    st = mi_hash_fd(out, fd, h, buf, buflen, NULL);

out:
    mi_hasher_free(h);
    free(buf);
    close(fd);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Hex                                                                     */

void mi_hash_to_hex(char out[MI_HASH_HEX_LEN + 1],
                    const uint8_t hash[MI_HASH_SIZE])
{
    static const char digits[] = "0123456789abcdef";

    if (!out)
        return;
    if (!hash) {
        out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < MI_HASH_SIZE; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 0xf];
    }
    out[MI_HASH_HEX_LEN] = '\0';
}

/* The value of one hex digit, or -1.  Locale-independent, unlike isxdigit. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

mi_status mi_hash_from_hex(uint8_t out[MI_HASH_SIZE], const char *hex)
{
    uint8_t tmp[MI_HASH_SIZE];

    if (!out)
        return MI_EINVAL;
    memset(out, 0, MI_HASH_SIZE);
    if (!hex)
        return MI_EINVAL;
    /* Never read past a NUL: a short string stops at its first bad digit. */
    for (size_t i = 0; i < MI_HASH_SIZE; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hi < 0 ? -1 : hex_value(hex[2 * i + 1]);

        if (lo < 0)
            return MI_EINVAL;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[MI_HASH_HEX_LEN] != '\0')
        return MI_EINVAL;
    memcpy(out, tmp, MI_HASH_SIZE);
    return MI_OK;
}
