/* check.h: the unit tests' assertions.
 *
 * Each CHECK records a pass or a failure (with file:line and what was compared) and carries on, so one
 * run reports every broken expectation, not just the first. check_done() prints one closing line,
 * "N passed, M failed", and returns the process exit code: 0 only when nothing failed.
 * Header-only: every test_<module>.c is its own program and includes it once. */
#ifndef SB_TEST_CHECK_H
#define SB_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static unsigned check_passed, check_failed;

static inline int check_record(int ok, const char *file, int line, const char *what) {
    if (ok) check_passed++;
    else {
        check_failed++;
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
    }
    return ok;
}

static inline int check_str(const char *a, const char *b, const char *file, int line, const char *ea,
                            const char *eb) {
    int ok = a && b ? strcmp(a, b) == 0 : a == b;
    if (!check_record(ok, file, line, "strings differ")) {
        fprintf(stderr, "    %s = \"%s\"\n    %s = \"%s\"\n", ea, a ? a : "(null)", eb, b ? b : "(null)");
    }
    return ok;
}

static inline int check_int(long long a, long long b, const char *file, int line, const char *ea, const char *eb) {
    int ok = a == b;
    if (!check_record(ok, file, line, "integers differ")) fprintf(stderr, "    %s = %lld\n    %s = %lld\n", ea, a, eb, b);
    return ok;
}

/* Each evaluates to 1 when the check passed, so a test can skip what depends on it. */
#define CHECK(cond) check_record((cond) != 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ_STR(a, b) check_str((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_INT(a, b) check_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)

static inline int check_done(void) {
    fflush(stdout);
    printf("%u passed, %u failed\n", check_passed, check_failed);
    fflush(stdout);
    return check_failed ? 1 : 0;
}

#endif
