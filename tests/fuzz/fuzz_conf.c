/*
 * fuzz_conf.c: libFuzzer target for the configuration loader.
 *
 * Any input either loads into a configuration that holds together (every
 * distribution points at one of the origins, every origin has its derived
 * fields, finishing it again succeeds) or is refused with a message; it
 * never crashes, hangs or leaks.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon \
 *       tests/fuzz/fuzz_conf.c common/conf.c common/err.c common/vas.c -lyaml \
 *       -o fuzz_conf
 *   ./fuzz_conf -max_total_time=60 tests/fuzz/corpus/fuzz_conf
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loaded(struct conf *c)
{
    char err[CONF_ERR_MAX];
    size_t i;

    if (c->nlistens == 0 || c->ndists == 0)
        abort();
    for (i = 0; i < c->norigins; i++) {
        const struct conf_origin *o = &c->origins[i];
        if (o->name == NULL || o->host == NULL || o->vhost == NULL || o->authority == NULL ||
            o->region == NULL || o->port == 0)
            abort();
    }
    for (i = 0; i < c->ndists; i++) {
        const struct conf_distribution *d = &c->dists[i];
        if (d->origin < c->origins || d->origin >= c->origins + c->norigins ||
            strcmp(d->origin->name, d->origin_name) != 0 || d->nhosts == 0 ||
            d->path_prefix == NULL || d->key_prefix == NULL)
            abort();
    }
    if (conf_finish(c, err) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CONF_ERR_MAX];
    struct conf *c = conf_new();

    if (c == NULL)
        return 0;
    err[0] = '\0';
    if (conf_load_string(c, "fuzz.yaml", (const char *)data, size, err) == 0)
        check_loaded(c);
    else if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
        abort(); /* a refusal always says why */
    conf_free(c);
    return 0;
}
