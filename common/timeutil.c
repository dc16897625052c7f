#include "timeutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "err.h"

static const char wday[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

uint64_t time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t time_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void http_date_format(time_t t, char *out)
{
    struct tm tm;
    char buf[64]; /* room for any int, so the compiler sees no truncation */

    gmtime_r(&t, &tm);
    snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT",
             wday[tm.tm_wday % 7], tm.tm_mday % 100, mon[tm.tm_mon % 12],
             (tm.tm_year + 1900) % 10000, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100);
    memcpy(out, buf, HTTP_DATE_LEN);
    out[HTTP_DATE_LEN] = '\0';
}

static int month_index(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, mon[i], 3) == 0)
            return i;
    return -1;
}

int http_date_parse(const char *s, size_t len, time_t *out)
{
    char buf[64], m[4] = {0};
    struct tm tm;
    int day, year, hh, mm, ss, n = 0;

    if (len == 0 || len >= sizeof(buf))
        return EDGE_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&tm, 0, sizeof(tm));
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    if (sscanf(buf, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT%n", &day, m, &year, &hh,
               &mm, &ss, &n) == 6 && n == (int)len) {
        /* ok */
    } else if (n = 0, sscanf(buf, "%*[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", &day,
                             m, &year, &hh, &mm, &ss, &n) == 6 && n == (int)len) {
        /* RFC 850: two-digit year, 50 or more is 19xx (RFC 9110 5.6.7) */
        year += year >= 50 ? 1900 : 2000;
    } else if (n = 0, sscanf(buf, "%*3s %3s %2d %2d:%2d:%2d %4d%n", m, &day, &hh,
                             &mm, &ss, &year, &n) == 6 && n == (int)len) {
        /* asctime */
    } else {
        return EDGE_EINVAL;
    }
    int mi = month_index(m);
    if (mi < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 ||
        year < 1970 || year > 9999 || hh < 0 || mm < 0 || ss < 0)
        return EDGE_EINVAL;
    tm.tm_mday = day;
    tm.tm_mon = mi;
    tm.tm_year = year - 1900;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    *out = timegm(&tm);
    return 0;
}

void time_iso8601_ms(char *out, size_t cap)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));
}
