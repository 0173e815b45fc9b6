/*
 * mi-test.h - a tiny TAP test harness shared by the test programs.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *   int main(void) { RUN(test_something); return mi_test_done(); }
 *
 * Each RUN prints "ok N - name" or "not ok N - name" (TAP), so meson counts
 * every test function.  A failed CHECK prints the file, line and expression
 * as a TAP comment and marks the current test failed; the test goes on.
 */
#ifndef MI_TEST_H
#define MI_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MI_ARRAY_LEN_T(a) (sizeof(a) / sizeof((a)[0]))

static int mi_test_count;
static int mi_test_failed_total;
static int mi_test_failed_now;
static const char *mi_test_skip_reason;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            printf("# %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            mi_test_failed_now = 1;                                         \
        }                                                                   \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
    do {                                                                    \
        long long mi_a_ = (long long)(a), mi_b_ = (long long)(b);           \
        if (mi_a_ != mi_b_) {                                               \
            printf("# %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,    \
                   __LINE__, #a, #b, mi_a_, mi_b_);                         \
            mi_test_failed_now = 1;                                         \
        }                                                                   \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                  \
    do {                                                                    \
        const char *mi_a_ = (a), *mi_b_ = (b);                              \
        if (!mi_a_ || !mi_b_ || strcmp(mi_a_, mi_b_) != 0) {                \
            printf("# %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
                   __LINE__, #a, #b, mi_a_ ? mi_a_ : "(null)",              \
                   mi_b_ ? mi_b_ : "(null)");                               \
            mi_test_failed_now = 1;                                         \
        }                                                                   \
    } while (0)

#define CHECK_OK(expr)                                                      \
    do {                                                                    \
        int mi_s_ = (int)(expr);                                            \
        if (mi_s_ != 0) {                                                   \
            printf("# %s:%d: %s returned %d\n", __FILE__, __LINE__, #expr,  \
                   mi_s_);                                                  \
            mi_test_failed_now = 1;                                         \
        }                                                                   \
    } while (0)

/* Skip the current test (call, then return from the test function). */
#define SKIP(reason) (mi_test_skip_reason = (reason))

#define RUN(fn)                                                             \
    do {                                                                    \
        mi_test_failed_now = 0;                                             \
        mi_test_skip_reason = NULL;                                         \
        fflush(stdout);                                                     \
        fn();                                                               \
        mi_test_count++;                                                    \
        if (mi_test_skip_reason)                                            \
            printf("ok %d - %s # SKIP %s\n", mi_test_count, #fn,            \
                   mi_test_skip_reason);                                    \
        else                                                                \
            printf("%sok %d - %s\n", mi_test_failed_now ? "not " : "",      \
                   mi_test_count, #fn);                                     \
        mi_test_failed_total += mi_test_failed_now;                         \
        fflush(stdout);                                                     \
    } while (0)

static inline int mi_test_done(void)
{
    printf("1..%d\n", mi_test_count);
    return mi_test_failed_total ? 1 : 0;
}

#endif
