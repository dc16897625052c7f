#include "vas.h"

#include <stdio.h>
#include <stdlib.h>

void vas_fail(const char *func, const char *file, int line, const char *cond)
{
    fprintf(stderr, "s3edge: assertion failed in %s() at %s:%d: %s\n", func, file,
            line, cond);
    abort();
}
