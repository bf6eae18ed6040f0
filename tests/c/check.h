/* check.h - what the C test drivers of tests/c share: CHECK(cond) counts a check and, when cond
 * is false, prints "FAIL <file>:<line>: <cond>"; check_report(name) prints "<name>: N checks,
 * F failed" (the line the Python tests look for) and returns the driver's exit code, 0 iff
 * no check failed. The counters are static: one driver per program.
 */
#ifndef FLT_TEST_CHECK_H
#define FLT_TEST_CHECK_H

#include <stdio.h>

static int g_checks;
static int g_failed;

#define CHECK(cond)                                                \
    do {                                                           \
        ++g_checks;                                                \
        if (!(cond)) {                                             \
            ++g_failed;                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                          \
    } while (0)

static inline int check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, g_checks, g_failed);
    return g_failed == 0 ? 0 : 1;
}

#endif /* FLT_TEST_CHECK_H */
