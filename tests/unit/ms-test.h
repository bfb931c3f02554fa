#ifndef MS_TEST_H
#define MS_TEST_H

#include <check.h>
#include <stddef.h>

/* Runs every test of the suite; returns the process's exit status. */
int ms_test_run(Suite *s);

/* Makes a fresh /tmp/ms-test-NAME.XXXXXX into dir, failing the test if it cannot. */
void ms_test_mkdtemp(char *dir, size_t size, const char *name);

/* Removes dir and all below it, failing the test if anything stays. */
void ms_test_rmtree(const char *dir);

#endif
