/*
 * test-hash.c - unit tests of lib/hash.c (SHA-256), for either engine.
 */
#include "config.h"
#include "mi-private.h"
#include "mi-test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* FIPS 180-2 / NIST test vectors. */
#define HEX_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HEX_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define MSG_448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define HEX_448 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define HEX_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static char tmpdir[256];

/* A small deterministic PRNG, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static void fill_random(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(rng_next() >> 56);
}

static int is_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

static void check_hex(const uint8_t hash[MI_HASH_SIZE], const char *want)
{
    char hex[MI_HASH_HEX_LEN + 1];

    mi_hash_to_hex(hex, hash);
    CHECK_EQ_STR(hex, want);
}

static void tmp_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", tmpdir, name);
}

static int write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return -1;
    ok = fwrite(buf, 1, len, f) == len;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------------- */

static void test_engine(void)
{
    const char *e = mi_hash_engine();

    CHECK(e != NULL);
#if defined(MI_HAVE_OPENSSL) && MI_HAVE_OPENSSL
    CHECK_EQ_STR(e, "openssl");
#else
    CHECK_EQ_STR(e, "libsodium");
#endif
    printf("# engine: %s\n", e ? e : "(null)");
}

static void test_vectors_oneshot(void)
{
    uint8_t h[MI_HASH_SIZE];

    CHECK_OK(mi_hash_buffer(h, "", 0));
    check_hex(h, HEX_EMPTY);
    CHECK_OK(mi_hash_buffer(h, NULL, 0));
    check_hex(h, HEX_EMPTY);
    CHECK_OK(mi_hash_buffer(h, "abc", 3));
    check_hex(h, HEX_ABC);
    CHECK_OK(mi_hash_buffer(h, MSG_448, strlen(MSG_448)));
    check_hex(h, HEX_448);
}

static void test_vectors_streaming(void)
{
    mi_hasher *hs = NULL;
    uint8_t h[MI_HASH_SIZE];

    CHECK_OK(mi_hasher_new(&hs));
    CHECK(hs != NULL);
    if (!hs)
        return;
    CHECK_OK(mi_hasher_final(hs, h));
    check_hex(h, HEX_EMPTY);
    /* One byte at a time crosses every block boundary. */
    for (const char *p = MSG_448; *p; p++)
        CHECK_OK(mi_hasher_update(hs, p, 1));
    CHECK_OK(mi_hasher_final(hs, h));
    check_hex(h, HEX_448);
    CHECK_OK(mi_hasher_update(hs, "ab", 2));
    CHECK_OK(mi_hasher_update(hs, NULL, 0));
    CHECK_OK(mi_hasher_update(hs, "c", 1));
    CHECK_OK(mi_hasher_final(hs, h));
    check_hex(h, HEX_ABC);
    mi_hasher_free(hs);
}

static void test_million_a(void)
{
    /* Odd, prime-ish chunk sizes, never aligned to the 64-byte block. */
    static const size_t chunks[] = { 1, 7, 63, 65, 997, 4099, 65537 };
    static char a[65537];
    mi_hasher *hs = NULL;
    uint8_t h[MI_HASH_SIZE];
    size_t done = 0, i = 0;

    memset(a, 'a', sizeof(a));
    CHECK_OK(mi_hasher_new(&hs));
    if (!hs)
        return;
    while (done < 1000000) {
        size_t n = chunks[i++ % MI_ARRAY_LEN(chunks)];
        if (n > 1000000 - done)
            n = 1000000 - done;
        CHECK_OK(mi_hasher_update(hs, a, n));
        done += n;
    }
    CHECK_OK(mi_hasher_final(hs, h));
    check_hex(h, HEX_MILLION_A);
    mi_hasher_free(hs);
}

static void test_streaming_random_splits(void)
{
    enum { LEN = 300000 };
    unsigned char *data = malloc(LEN);
    uint8_t want[MI_HASH_SIZE], got[MI_HASH_SIZE];
    mi_hasher *hs = NULL;

    CHECK(data != NULL);
    if (!data)
        return;
    fill_random(data, LEN);
    CHECK_OK(mi_hasher_new(&hs));
    if (!hs) {
        free(data);
        return;
    }
    for (int round = 0; round < 50; round++) {
        size_t len = (size_t)(rng_next() % LEN);
        size_t off = 0;

        CHECK_OK(mi_hash_buffer(want, data, len));
        while (off < len) {
            /* Mostly small pieces, sometimes big ones, sometimes empty. */
            size_t max = (rng_next() & 1) ? 200 : 70000;
            size_t n = (size_t)(rng_next() % (max + 1));
            if (n > len - off)
                n = len - off;
            CHECK_OK(mi_hasher_update(hs, data + off, n));
            off += n;
        }
        /* The same hasher, reused after each final. */
        CHECK_OK(mi_hasher_final(hs, got));
        CHECK(memcmp(want, got, MI_HASH_SIZE) == 0);
    }
    mi_hasher_free(hs);
    free(data);
}

static void test_hasher_reuse(void)
{
    mi_hasher *hs = NULL;
    uint8_t h[MI_HASH_SIZE];

    CHECK_OK(mi_hasher_new(&hs));
    if (!hs)
        return;
    /* final forgets what was fed: the next digest is of the new data only. */
    CHECK_OK(mi_hasher_update(hs, "garbage", 7));
    CHECK_OK(mi_hasher_final(hs, h));
    CHECK_OK(mi_hasher_update(hs, "abc", 3));
    CHECK_OK(mi_hasher_final(hs, h));
    check_hex(h, HEX_ABC);
    CHECK_OK(mi_hasher_final(hs, h));
    check_hex(h, HEX_EMPTY);
    mi_hasher_free(hs);
}

static void test_null_arguments(void)
{
    mi_hasher *hs = NULL;
    uint8_t h[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];
    char buf[16];

    CHECK_EQ_INT(mi_hasher_new(NULL), MI_EINVAL);
    CHECK_EQ_INT(mi_hasher_update(NULL, "a", 1), MI_EINVAL);
    CHECK_EQ_INT(mi_hasher_final(NULL, NULL), MI_EINVAL);
    memset(h, 0xaa, sizeof(h));
    CHECK_EQ_INT(mi_hasher_final(NULL, h), MI_EINVAL);
    CHECK(is_zero(h, sizeof(h)));
    mi_hasher_free(NULL);

    CHECK_OK(mi_hasher_new(&hs));
    if (hs) {
        CHECK_EQ_INT(mi_hasher_update(hs, NULL, 5), MI_EINVAL);
        CHECK_EQ_INT(mi_hasher_final(hs, NULL), MI_EINVAL);
        /* The failed calls left the hasher usable. */
        CHECK_OK(mi_hasher_update(hs, "abc", 3));
        CHECK_OK(mi_hasher_final(hs, h));
        check_hex(h, HEX_ABC);
        mi_hasher_free(hs);
    }

    CHECK_EQ_INT(mi_hash_buffer(NULL, "abc", 3), MI_EINVAL);
    memset(h, 0xaa, sizeof(h));
    CHECK_EQ_INT(mi_hash_buffer(h, NULL, 3), MI_EINVAL);
    CHECK(is_zero(h, sizeof(h)));

    CHECK_EQ_INT(mi_hash_file(NULL, "/etc/hostname"), MI_EINVAL);
    memset(h, 0xaa, sizeof(h));
    CHECK_EQ_INT(mi_hash_file(h, NULL), MI_EINVAL);
    CHECK(is_zero(h, sizeof(h)));
    CHECK_EQ_INT(mi_hash_file(h, ""), MI_EINVAL);

    CHECK_EQ_INT(mi_hash_fd(NULL, 0, NULL, buf, sizeof(buf), NULL), MI_EINVAL);
    CHECK_EQ_INT(mi_hash_fd(h, 0, NULL, buf, sizeof(buf), NULL), MI_EINVAL);
    CHECK_OK(mi_hasher_new(&hs));
    if (hs) {
        CHECK_EQ_INT(mi_hash_fd(h, -1, hs, buf, sizeof(buf), NULL), MI_EINVAL);
        CHECK_EQ_INT(mi_hash_fd(h, 0, hs, NULL, sizeof(buf), NULL), MI_EINVAL);
        CHECK_EQ_INT(mi_hash_fd(h, 0, hs, buf, 0, NULL), MI_EINVAL);
        mi_hasher_free(hs);
    }

    /* Writers with a NULL output do nothing; a NULL hash gives "". */
    mi_hash_to_hex(NULL, h);
    memset(hex, 'x', sizeof(hex));
    mi_hash_to_hex(hex, NULL);
    CHECK_EQ_STR(hex, "");
    CHECK_EQ_INT(mi_hash_from_hex(NULL, HEX_ABC), MI_EINVAL);
}

static void test_file_matches_buffer(void)
{
    /* Sizes around the read chunk and the small-file buffer choices. */
    static const size_t sizes[] = { 1, 55, 64, 4095, 4096, 4097, 65536,
                                    131071, 131072, 131073, 3u << 20 | 17 };
    char path[512];

    tmp_path(path, sizeof(path), "data.bin");
    for (size_t i = 0; i < MI_ARRAY_LEN(sizes); i++) {
        size_t len = sizes[i];
        unsigned char *data = malloc(len);
        uint8_t want[MI_HASH_SIZE], got[MI_HASH_SIZE];

        CHECK(data != NULL);
        if (!data)
            return;
        fill_random(data, len);
        CHECK_OK(write_file(path, data, len));
        CHECK_OK(mi_hash_buffer(want, data, len));
        CHECK_OK(mi_hash_file(got, path));
        if (memcmp(want, got, MI_HASH_SIZE) != 0)
            printf("# size %zu differs\n", len);
        CHECK(memcmp(want, got, MI_HASH_SIZE) == 0);
        free(data);
    }
    unlink(path);
}

static void test_file_empty(void)
{
    char path[512];
    uint8_t h[MI_HASH_SIZE];

    tmp_path(path, sizeof(path), "empty");
    CHECK_OK(write_file(path, "", 0));
    CHECK_OK(mi_hash_file(h, path));
    check_hex(h, HEX_EMPTY);
    unlink(path);
}

static void test_file_missing(void)
{
    char path[512];
    uint8_t h[MI_HASH_SIZE];

    tmp_path(path, sizeof(path), "no-such-file");
    memset(h, 0xaa, sizeof(h));
    CHECK_EQ_INT(mi_hash_file(h, path), MI_ENOTFOUND);
    CHECK(is_zero(h, sizeof(h)));
}

static void test_file_directory(void)
{
    uint8_t h[MI_HASH_SIZE];

    memset(h, 0xaa, sizeof(h));
    CHECK_EQ_INT(mi_hash_file(h, tmpdir), MI_EINVAL);
    CHECK(is_zero(h, sizeof(h)));
}

static void test_file_fifo(void)
{
    char path[512];
    uint8_t h[MI_HASH_SIZE];

    tmp_path(path, sizeof(path), "fifo");
    if (mkfifo(path, 0600) != 0) {
        SKIP("mkfifo failed");
        return;
    }
    /* A FIFO with no writer would block a plain open(); the alarm turns a
     * hang into a visible failure (the default action kills us). */
    alarm(10);
    CHECK_EQ_INT(mi_hash_file(h, path), MI_EINVAL);
    alarm(0);
    CHECK(is_zero(h, sizeof(h)));
    unlink(path);
}

static void test_file_unreadable(void)
{
    char path[512];
    uint8_t h[MI_HASH_SIZE];

    if (geteuid() == 0) {
        SKIP("root reads everything");
        return;
    }
    tmp_path(path, sizeof(path), "secret");
    CHECK_OK(write_file(path, "abc", 3));
    CHECK_OK(chmod(path, 0));
    CHECK_EQ_INT(mi_hash_file(h, path), MI_EACCES);
    unlink(path);
}

static void test_fd_pipe_short_reads(void)
{
    int p[2];
    unsigned char data[10000];
    uint8_t want[MI_HASH_SIZE], got[MI_HASH_SIZE];
    unsigned char buf[7];  /* tiny and odd: many short, unaligned reads */
    uint64_t bytes = 5;
    mi_hasher *hs = NULL;

    fill_random(data, sizeof(data));
    CHECK_OK(mi_hash_buffer(want, data, sizeof(data)));
    CHECK_OK(pipe(p));
    /* 10000 bytes fit in a pipe's buffer; no writer process is needed. */
    CHECK(write(p[1], data, sizeof(data)) == (ssize_t)sizeof(data));
    close(p[1]);
    CHECK_OK(mi_hasher_new(&hs));
    /* Whatever the hasher held before is discarded. */
    CHECK_OK(mi_hasher_update(hs, "stale", 5));
    CHECK_OK(mi_hash_fd(got, p[0], hs, buf, sizeof(buf), &bytes));
    CHECK(memcmp(want, got, MI_HASH_SIZE) == 0);
    CHECK_EQ_INT(bytes, 5 + sizeof(data));
    close(p[0]);

    /* A bad descriptor is an I/O error, the hasher stays usable. */
    memset(got, 0xaa, sizeof(got));
    CHECK_EQ_INT(mi_hash_fd(got, p[0], hs, buf, sizeof(buf), NULL), MI_EIO);
    CHECK(is_zero(got, sizeof(got)));
    CHECK_OK(mi_hasher_update(hs, "abc", 3));
    CHECK_OK(mi_hasher_final(hs, got));
    check_hex(got, HEX_ABC);
    mi_hasher_free(hs);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_fd_eintr(void)
{
    enum { PIECES = 20, PIECE = 1000 };
    struct sigaction sa, old;
    struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    unsigned char data[PIECES * PIECE];
    uint8_t want[MI_HASH_SIZE], got[MI_HASH_SIZE];
    unsigned char buf[4096];
    uint64_t bytes = 0;
    mi_hasher *hs = NULL;
    pid_t pid;
    int p[2], status = 0;

    fill_random(data, sizeof(data));
    CHECK_OK(mi_hash_buffer(want, data, sizeof(data)));
    CHECK_OK(pipe(p));
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        /* A slow writer, so the reader blocks and signals interrupt it. */
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        close(p[0]);
        for (int i = 0; i < PIECES; i++) {
            if (write(p[1], data + i * PIECE, PIECE) != PIECE)
                _exit(1);
            nanosleep(&ts, NULL);
        }
        _exit(0);
    }
    CHECK(pid > 0);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return;
    }

    /* No SA_RESTART: a blocked read() fails with EINTR. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    setitimer(ITIMER_REAL, &it, NULL);

    CHECK_OK(mi_hasher_new(&hs));
    CHECK_OK(mi_hash_fd(got, p[0], hs, buf, sizeof(buf), &bytes));

    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    CHECK(memcmp(want, got, MI_HASH_SIZE) == 0);
    CHECK_EQ_INT(bytes, sizeof(data));
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p[0]);
    mi_hasher_free(hs);
}

static void test_hex_round_trip(void)
{
    uint8_t h[MI_HASH_SIZE], back[MI_HASH_SIZE];
    char hex[MI_HASH_HEX_LEN + 1];

    for (int i = 0; i < 100; i++) {
        fill_random(h, sizeof(h));
        mi_hash_to_hex(hex, h);
        CHECK_EQ_INT(strlen(hex), MI_HASH_HEX_LEN);
        for (size_t j = 0; j < MI_HASH_HEX_LEN; j++)
            CHECK((hex[j] >= '0' && hex[j] <= '9') ||
                  (hex[j] >= 'a' && hex[j] <= 'f'));
        CHECK_OK(mi_hash_from_hex(back, hex));
        CHECK(memcmp(h, back, MI_HASH_SIZE) == 0);
    }
    memset(h, 0, sizeof(h));
    h[0] = 0x01;
    h[31] = 0xfe;
    mi_hash_to_hex(hex, h);
    CHECK_EQ_STR(hex, "01000000000000000000000000000000"
                      "000000000000000000000000000000fe");
}

static void test_hex_upper_case(void)
{
    uint8_t h[MI_HASH_SIZE], want[MI_HASH_SIZE];
    char upper[MI_HASH_HEX_LEN + 1], mixed[MI_HASH_HEX_LEN + 1];

    CHECK_OK(mi_hash_buffer(want, "abc", 3));
    strcpy(upper, HEX_ABC);
    strcpy(mixed, HEX_ABC);
    for (size_t i = 0; i < MI_HASH_HEX_LEN; i++) {
        if (upper[i] >= 'a' && upper[i] <= 'f')
            upper[i] = (char)(upper[i] - 'a' + 'A');
        if ((i & 1) && mixed[i] >= 'a' && mixed[i] <= 'f')
            mixed[i] = (char)(mixed[i] - 'a' + 'A');
    }
    CHECK_OK(mi_hash_from_hex(h, upper));
    CHECK(memcmp(h, want, MI_HASH_SIZE) == 0);
    CHECK_OK(mi_hash_from_hex(h, mixed));
    CHECK(memcmp(h, want, MI_HASH_SIZE) == 0);
}

static void expect_bad_hex(const char *hex, int line)
{
    uint8_t h[MI_HASH_SIZE];
    int st;

    memset(h, 0xaa, sizeof(h));
    st = mi_hash_from_hex(h, hex);
    if (st != MI_EINVAL || !is_zero(h, sizeof(h)))
        printf("# line %d: accepted or left output (status %d)\n", line, st);
    CHECK_EQ_INT(st, MI_EINVAL);
    CHECK(is_zero(h, sizeof(h)));
}

static void test_hex_rejects(void)
{
    char buf[80];

    /* 63 and 65 characters. */
    snprintf(buf, sizeof(buf), "%.63s", HEX_ABC);
    expect_bad_hex(buf, __LINE__);
    snprintf(buf, sizeof(buf), "%s0", HEX_ABC);
    expect_bad_hex(buf, __LINE__);
    snprintf(buf, sizeof(buf), "%s ", HEX_ABC);
    expect_bad_hex(buf, __LINE__);
    expect_bad_hex("", __LINE__);
    expect_bad_hex(NULL, __LINE__);

    /* A non-hex character at the start, middle and end. */
    static const char bad[] = "gGxz -+.\n\xff";
    for (const char *c = bad; *c; c++) {
        static const size_t where[] = { 0, 1, 31, 62, 63 };
        for (size_t w = 0; w < MI_ARRAY_LEN(where); w++) {
            strcpy(buf, HEX_ABC);
            buf[where[w]] = *c;
            expect_bad_hex(buf, __LINE__);
        }
    }
    /* "0x" prefixes and signs are not hex digits either. */
    snprintf(buf, sizeof(buf), "0x%.62s", HEX_ABC);
    expect_bad_hex(buf, __LINE__);

    /* An embedded NUL: 64 characters in memory, but a short string. */
    {
        char emb[MI_HASH_HEX_LEN + 1];
        memcpy(emb, HEX_ABC, sizeof(emb));
        emb[40] = '\0';
        expect_bad_hex(emb, __LINE__);
        emb[40] = 'a';
        emb[63] = '\0';
        expect_bad_hex(emb, __LINE__);
    }
}

int main(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/mi-test-hash-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }

    RUN(test_engine);
    RUN(test_vectors_oneshot);
    RUN(test_vectors_streaming);
    RUN(test_million_a);
    RUN(test_streaming_random_splits);
    RUN(test_hasher_reuse);
    RUN(test_null_arguments);
    RUN(test_file_matches_buffer);
    RUN(test_file_empty);
    RUN(test_file_missing);
    RUN(test_file_directory);
    RUN(test_file_fifo);
    RUN(test_file_unreadable);
    RUN(test_fd_pipe_short_reads);
    RUN(test_fd_eintr);
    RUN(test_hex_round_trip);
    RUN(test_hex_upper_case);
    RUN(test_hex_rejects);

    rmdir(tmpdir);
    return mi_test_done();
}
