/*
 * timeutil.h: clocks and HTTP dates (RFC 9110 5.6.7). Pure functions.
 */
#ifndef S3EDGE_TIMEUTIL_H
#define S3EDGE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* monotonic milliseconds / microseconds */
uint64_t time_mono_ms(void);
uint64_t time_mono_us(void);

/* IMF-fixdate of t into out[HTTP_DATE_LEN + 1]. */
void http_date_format(time_t t, char *out);

/* Parse an HTTP date: IMF-fixdate, plus the obsolete RFC 850 and asctime
 * forms recipients must accept (RFC 9110 5.6.7). Returns 0 or EDGE_EINVAL. */
int http_date_parse(const char *s, size_t len, time_t *out);

/* ISO 8601 UTC with milliseconds for logs: "2026-11-25T22:00:00.123Z",
 * into out[25]. */
void time_iso8601_ms(char *out, size_t cap);

#endif
