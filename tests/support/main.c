/* The main() of every suite: runs the suite that the test file defines with
 * gr_test_suite(), in Check's default fork mode, and prints Check's
 * summary. CK_RUN_CASE / CK_RUN_SUITE select tests and CK_VERBOSITY=verbose
 * lists every test as it ends, as usual with Check. */
#include <stdlib.h>

#include "support/support.h"

int main(void)
{
    SRunner *sr = srunner_create(gr_test_suite());
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY, default: CK_NORMAL */
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
