/*
 * tls.c: server-side TLS for one listener.
 *
 * Lifecycle:
 *   A snapshot (struct tls_snap) is what the listener's files held when
 *   they were read: one SSL_CTX per certificate, the first being the
 *   default through which every connection starts, plus the table of the
 *   names in the certificates and their OCSP responses. The default
 *   SSL_CTX owns its snapshot (ex_data with a free callback). OpenSSL
 *   counts references to an SSL_CTX: SSL_new() takes two on the default
 *   (ctx and session_ctx), SSL_set_SSL_CTX() one on the certificate's.
 *   So a snapshot lives exactly as long as the listener points at it or a
 *   connection uses it; a reload builds a new one and drops the
 *   listener's reference to the old one, and open connections go on with
 *   what they started with. A reload that fails changes nothing.
 *
 *   The ticket keys (struct tls_keyring) belong to the listener and are
 *   shared by its snapshots, so tickets stay valid across reloads. They
 *   are generated in memory and rotated every ticket_key_rotation, or read
 *   from ticket_key_file at start, on reload and every
 *   ticket_key_rotation (the nodes of a PoP share the file and resume
 *   each other's sessions). keys[0] encrypts new tickets; every key
 *   decrypts, and a ticket under an older key is renewed.
 *
 *   Each accepted socket becomes a struct tls_hs: a bufferevent over an
 *   SSL in accept state, and a timer bounding the whole handshake (a read
 *   timeout would be reset by every byte of a slow ClientHello). On
 *   BEV_EVENT_CONNECTED the bufferevent goes to HTTP/2 when ALPN chose h2,
 *   else to HTTP/1.1, and the tls_hs is freed. Handshakes still running
 *   when the listener is freed are ended with it.
 *
 * Threads: one event loop. With several, keyring rotation would need a
 * lock against ticket_cb; snapshots are read-only once built.
 */
#include "config.h"

#include "tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "h1.h"
#include "h2.h"
#include "log.h"
#include "server.h"
#include "vas.h"

/* Generated keys kept: the current one and the one before it, so a ticket
 * (valid for one rotation period) outlives the rotation that follows it. */
#define GENERATED_KEYS 2

/* Same bytes for every snapshot of a listener: a session made under one
 * snapshot may resume under the next (RFC 5246 7.4.1.2 session id). */
static const unsigned char SID_CTX[] = "s3edge";

/* ------------------------------------------------------------ ticket keys */

struct tls_ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};
_Static_assert(sizeof(struct tls_ticket_key) == CONF_TICKET_KEY_LEN, "ticket key layout");

struct tls_keyring {
    unsigned magic;
#define TLS_KEYRING_MAGIC 0x746b7972U
    unsigned refcnt; /* the listener and each snapshot */
    size_t nkeys;    /* keys[0] encrypts, all decrypt */
    struct tls_ticket_key keys[CONF_TICKET_KEYS_MAX];
};

static struct tls_keyring *keyring_ref(struct tls_keyring *kr)
{
    CHECK_OBJ_NOTNULL(kr, TLS_KEYRING_MAGIC);
    kr->refcnt++;
    return kr;
}

static void keyring_unref(struct tls_keyring *kr)
{
    if (kr == NULL)
        return;
    CHECK_OBJ(kr, TLS_KEYRING_MAGIC);
    AN(kr->refcnt);
    if (--kr->refcnt > 0)
        return;
    OPENSSL_cleanse(kr, sizeof(*kr));
    free(kr);
}

/* A fresh random key in front; the oldest beyond GENERATED_KEYS goes. */
static int keyring_generate(struct tls_keyring *kr)
{
    struct tls_ticket_key k;

    if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1)
        return -1;
    if (kr->nkeys == GENERATED_KEYS)
        kr->nkeys--;
    memmove(&kr->keys[1], &kr->keys[0], kr->nkeys * sizeof(kr->keys[0]));
    kr->keys[0] = k;
    kr->nkeys++;
    OPENSSL_cleanse(&k, sizeof(k));
    return 0;
}

/* ------------------------------------------------------------ snapshots */

struct tls_name {
    char *name; /* lowercase; "*.example.com" for a wildcard */
    size_t cert;
};

struct tls_cert {
    unsigned char *ocsp; /* DER, or NULL */
    size_t ocsp_len;
    time_t ocsp_next_update; /* 0: none given */
    bool ocsp_stale_logged;
    char *label; /* file name, for messages */
};

struct tls_snap {
    unsigned magic;
#define TLS_SNAP_MAGIC 0x746c736eU
    SSL_CTX **ctx; /* per certificate; ctx[0] is the default and owns the snapshot */
    struct tls_cert *certs;
    size_t ncerts;
    struct tls_name *names; /* sorted by name, then certificate */
    size_t nnames;
    struct tls_keyring *keys;
    unsigned char alpn[32]; /* wire format, in order of preference */
    size_t alpn_len;
    bool ktls;
    bool ktls_logged;
    char *listen; /* address, for messages */
};

struct tls_listener {
    unsigned magic;
#define TLS_LISTENER_MAGIC 0x746c736cU
    struct server *srv;
    size_t idx; /* in srv->conf->listens */
    const struct conf_tls *conf;
    SSL_CTX *current; /* one reference; the default context of the current snapshot */
    struct tls_keyring *keys;
    struct event *rotate;
    struct tls_hs *pending; /* handshakes in progress */
    struct tls_stats stats;
};

/* ex_data slots on SSL_CTX: the snapshot (every context of it), and its
 * owner (the default context only, freeing it with the context). On SSL:
 * set once the handshake is done. */
static int snap_idx = -1, owner_idx = -1, ssl_done_idx = -1;

static void snap_free(struct tls_snap *sn)
{
    size_t i;

    CHECK_OBJ_NOTNULL(sn, TLS_SNAP_MAGIC);
    /* ctx[0] is being freed: it is the one calling us */
    for (i = 1; i < sn->ncerts; i++)
        SSL_CTX_free(sn->ctx[i]);
    for (i = 0; i < sn->ncerts; i++) {
        free(sn->certs[i].ocsp);
        free(sn->certs[i].label);
    }
    for (i = 0; i < sn->nnames; i++)
        free(sn->names[i].name);
    free(sn->names);
    free(sn->certs);
    free(sn->ctx);
    free(sn->listen);
    keyring_unref(sn->keys);
    sn->magic = 0;
    free(sn);
}

static void owner_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr != NULL)
        snap_free(ptr);
}

/*
 * SSL_free() takes a session out of the cache when the connection did not
 * send close_notify (OpenSSL's ssl_clear_bad_session()), and HTTP/1.1 and
 * HTTP/2 close without one. A connection that finished its handshake says
 * nothing bad about its session, so, as nginx does, it is marked shut down
 * before that check: SSL_free() frees the ex_data first. Without this, a
 * TLS 1.2 client without tickets, or TLS 1.3 with session_tickets off,
 * could never resume.
 */
static void ssl_done_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)ad, (void)idx, (void)argl, (void)argp;
    if (parent != NULL && ptr != NULL)
        SSL_set_shutdown(parent, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

static int ex_indexes(void)
{
    if (snap_idx < 0)
        snap_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (owner_idx < 0)
        owner_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, owner_free_cb);
    if (ssl_done_idx < 0)
        ssl_done_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_done_free_cb);
    return snap_idx < 0 || owner_idx < 0 || ssl_done_idx < 0 ? -1 : 0;
}

static struct tls_snap *ssl_snap(SSL *ssl)
{
    struct tls_snap *sn;

    CAST_OBJ_NOTNULL(sn, SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), snap_idx), TLS_SNAP_MAGIC);
    return sn;
}

static int name_cmp(const void *pa, const void *pb)
{
    const struct tls_name *a = pa, *b = pb;
    int r = strcmp(a->name, b->name);

    if (r != 0)
        return r;
    return a->cert < b->cert ? -1 : a->cert > b->cert;
}

static int name_key_cmp(const void *pa, const void *pb)
{
    const struct tls_name *a = pa, *b = pb;

    return strcmp(a->name, b->name);
}

/* The certificate serving a name; ties go to the certificate listed first. */
static const struct tls_name *snap_find(const struct tls_snap *sn, const char *name)
{
    const struct tls_name key = {(char *)(uintptr_t)name, 0}, *hit;

    if (sn->nnames == 0)
        return NULL;
    hit = bsearch(&key, sn->names, sn->nnames, sizeof(*sn->names), name_key_cmp);
    while (hit != NULL && hit > sn->names && strcmp(hit[-1].name, name) == 0)
        hit--;
    return hit;
}

/*
 * SNI (RFC 6066 3) to certificate: the exact name first, then a wildcard
 * for the whole first label (RFC 6125 6.4.3: "*.example.com" covers
 * "a.example.com", not "example.com" nor "a.b.example.com"). Returns the
 * index, 0 (the default) when nothing matches.
 */
static size_t snap_select(const struct tls_snap *sn, const char *host)
{
    char name[256];
    const struct tls_name *hit;
    const char *dot;
    size_t i, n = strlen(host);

    if (n > 0 && host[n - 1] == '.')
        n--; /* an absolute name is the same name */
    if (n == 0 || n + 2 > sizeof(name))
        return 0;
    for (i = 0; i < n; i++) {
        char ch = host[i];
        name[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
    }
    name[n] = '\0';
    if ((hit = snap_find(sn, name)) != NULL)
        return hit->cert;
    dot = strchr(name, '.');
    if (dot == NULL || dot == name || dot[1] == '\0')
        return 0;
    /* "*" + ".rest", in place of the first label */
    i = (size_t)(dot - name);
    memmove(name + 1, dot, n - i + 1);
    name[0] = '*';
    if ((hit = snap_find(sn, name)) != NULL)
        return hit->cert;
    return 0;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    struct tls_snap *sn;
    const char *host;
    size_t i;

    (void)alert;
    CAST_OBJ_NOTNULL(sn, arg, TLS_SNAP_MAGIC);
    host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (host == NULL)
        return SSL_TLSEXT_ERR_NOACK; /* no SNI: the default certificate */
    i = snap_select(sn, host);
    if (i != 0 && SSL_set_SSL_CTX(ssl, sn->ctx[i]) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* Server preference among what the client offers (RFC 7301 3.2). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    struct tls_snap *sn;
    unsigned char *sel = NULL;

    (void)ssl;
    CAST_OBJ_NOTNULL(sn, arg, TLS_SNAP_MAGIC);
    if (SSL_select_next_proto(&sel, outlen, sn->alpn, (unsigned)sn->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        /* RFC 7301 3.2: no protocol in common is a fatal
         * no_application_protocol alert */
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* OCSP stapling (RFC 6066 8): the response from the file while it is
 * current; a stale one is left out rather than sent. */
static int status_cb(SSL *ssl, void *arg)
{
    struct tls_cert *tc = arg;
    unsigned char *der;

    (void)ssl;
    if (tc->ocsp == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    if (tc->ocsp_next_update != 0 && time(NULL) > tc->ocsp_next_update) {
        if (!tc->ocsp_stale_logged)
            LOG_W("OCSP response for %s is past its next update: not stapled", tc->label);
        tc->ocsp_stale_logged = true;
        return SSL_TLSEXT_ERR_NOACK;
    }
    der = OPENSSL_memdup(tc->ocsp, tc->ocsp_len);
    if (der == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    /* OpenSSL takes the copy and frees it */
    if (!SSL_set_tlsext_status_ocsp_resp(ssl, der, (long)tc->ocsp_len)) {
        OPENSSL_free(der);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Session tickets (RFC 5077 4, RFC 8446 4.6.1) under the keyring's keys:
 * AES-256-CBC and HMAC-SHA256, the keys named by their first 16 bytes. */
static int ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct tls_keyring *kr;
    const struct tls_ticket_key *k;
    OSSL_PARAM params[3];
    size_t i;

    CAST_OBJ_NOTNULL(kr, ssl_snap(ssl)->keys, TLS_KEYRING_MAGIC);
    if (enc) {
        if (kr->nkeys == 0)
            return 0; /* no ticket */
        k = &kr->keys[0];
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
            return -1;
        memcpy(name, k->name, sizeof(k->name));
        if (!EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
            return -1;
        i = 0;
    } else {
        for (i = 0; i < kr->nkeys; i++)
            if (memcmp(name, kr->keys[i].name, sizeof(kr->keys[i].name)) == 0)
                break;
        if (i == kr->nkeys)
            return 0; /* unknown key (rotated out, or another PoP): full handshake */
        k = &kr->keys[i];
        if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
            return -1;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(uintptr_t)k->hmac,
                                                  sizeof(k->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(hctx, params))
        return -1;
    /* 2: valid, but issue a new ticket under the current key */
    return i == 0 ? 1 : 2;
}

/* Is the kernel's TLS ULP loaded (or built in)? */
static bool kernel_has_tls(void)
{
    char buf[256], *tok, *save = NULL;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");
    bool found = false;

    if (f == NULL)
        return false;
    if (fgets(buf, sizeof(buf), f) != NULL)
        for (tok = strtok_r(buf, " \n", &save); tok != NULL; tok = strtok_r(NULL, " \n", &save))
            if (strcmp(tok, "tls") == 0)
                found = true;
    fclose(f);
    return found;
}

/* The settings every context of a listener shares. */
static int ctx_configure(SSL_CTX *ctx, const struct conf_tls *t, struct tls_snap *sn)
{
    uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                    /* a client closing without close_notify ends its
                     * connection, it is not an error: requests carry
                     * their own framing */
                    SSL_OP_IGNORE_UNEXPECTED_EOF;

    if (!t->session_tickets)
        opts |= SSL_OP_NO_TICKET;
    if (sn->ktls)
        opts |= SSL_OP_ENABLE_KTLS;
    SSL_CTX_set_options(ctx, opts);
    /* idle connections give their read and write buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_min_proto_version(ctx, (t->protocols & CONF_TLS_V12) ? TLS1_2_VERSION
                                                                          : TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, (t->protocols & CONF_TLS_V13) ? TLS1_3_VERSION
                                                                          : TLS1_2_VERSION))
        return -1;
    if (!SSL_CTX_set_cipher_list(ctx, t->ciphers ? t->ciphers : CONF_TLS_CIPHERS) ||
        !SSL_CTX_set_ciphersuites(ctx, t->ciphersuites ? t->ciphersuites : CONF_TLS_CIPHERSUITES))
        return -1;
    if (!SSL_CTX_set_session_id_context(ctx, SID_CTX, sizeof(SID_CTX) - 1))
        return -1;
    /* sessions and tickets live as long as a ticket key encrypts */
    SSL_CTX_set_timeout(ctx, (long)t->ticket_key_rotation_s);
    if (t->session_cache > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, (long)t->session_cache);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (t->session_tickets && !SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb))
        return -1;
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, sn);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, sn);
    if (!SSL_CTX_set_ex_data(ctx, snap_idx, sn))
        return -1;
    return 0;
}

/* lowercase copy of an ASN.1 name, or NULL when it holds odd bytes */
static char *dns_name(const unsigned char *p, int len)
{
    char *s;
    int i;

    if (len <= 0 || len > 253)
        return NULL;
    s = malloc((size_t)len + 1);
    if (s == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        unsigned char ch = p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch + ('a' - 'A'));
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
              ch == '_' || (ch == '*' && i == 0))) {
            free(s);
            return NULL;
        }
        s[i] = (char)ch;
    }
    s[len] = '\0';
    return s;
}

static int names_add(struct tls_snap *sn, size_t *cap, char *name, size_t cert)
{
    if (sn->nnames == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct tls_name *p = realloc(sn->names, ncap * sizeof(*p));
        if (p == NULL) {
            free(name);
            return -1;
        }
        sn->names = p;
        *cap = ncap;
    }
    sn->names[sn->nnames].name = name;
    sn->names[sn->nnames].cert = cert;
    sn->nnames++;
    return 0;
}

/* The DNS names of the certificate's subjectAltName (RFC 6125 6.4.4);
 * the subject's common name only when there is none. */
static int names_collect(struct tls_snap *sn, size_t *cap, X509 *leaf, size_t cert)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    size_t before = sn->nnames;
    int i, rc = 0;

    for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char *n;

        if (g->type != GEN_DNS)
            continue;
        n = dns_name(ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName));
        if (n != NULL)
            rc = names_add(sn, cap, n, cert);
    }
    GENERAL_NAMES_free(gens);
    if (rc == 0 && sn->nnames == before) {
        X509_NAME *subj = X509_get_subject_name(leaf);
        int at = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        if (at >= 0) {
            ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at));
            char *n = dns_name(ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
            if (n != NULL)
                rc = names_add(sn, cap, n, cert);
        }
    }
    ERR_clear_error();
    return rc;
}

static void ocsp_note(struct tls_cert *tc)
{
    const unsigned char *p = tc->ocsp;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)tc->ocsp_len);
    OCSP_BASICRESP *basic = resp ? OCSP_response_get1_basic(resp) : NULL;
    OCSP_SINGLERESP *single = basic ? OCSP_resp_get0(basic, 0) : NULL;
    ASN1_GENERALIZEDTIME *next = NULL;
    struct tm tm;

    if (single != NULL && OCSP_single_get0_status(single, NULL, NULL, NULL, &next) >= 0 &&
        next != NULL && ASN1_TIME_to_tm(next, &tm) == 1)
        tc->ocsp_next_update = timegm(&tm);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

static void cert_warn_expiry(const char *label, X509 *leaf)
{
    time_t soon = time(NULL) + 7 * 86400;

    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0)
        LOG_W("certificate %s has expired", label);
    else if (X509_cmp_time(X509_get0_notAfter(leaf), &soon) <= 0)
        LOG_W("certificate %s expires within 7 days", label);
    else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0)
        LOG_W("certificate %s is not valid yet", label);
}

static void openssl_reason(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    snprintf(err, errlen, "%s: %s", what, r ? r : "out of memory");
    ERR_clear_error();
}

/* A snapshot of the listener's files: its default SSL_CTX (one reference,
 * the caller's), or NULL with err. */
static SSL_CTX *snap_build(struct tls_listener *tl, char *err, size_t errlen)
{
    const struct conf *c = tl->srv->conf;
    const struct conf_tls *t = tl->conf;
    struct conf_tls_material m;
    struct tls_snap *sn;
    SSL_CTX *ctx0 = NULL;
    char cerr[CONF_ERR_MAX];
    size_t i, cap = 0;
    unsigned char *a;

    if (ex_indexes() < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sn = calloc(1, sizeof(*sn));
    if (sn == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sn->magic = TLS_SNAP_MAGIC;
    sn->ctx = calloc(t->ncerts, sizeof(*sn->ctx));
    sn->certs = calloc(t->ncerts, sizeof(*sn->certs));
    sn->listen = strdup(c->listens[tl->idx].address);
    ctx0 = SSL_CTX_new(TLS_server_method());
    if (sn->ctx == NULL || sn->certs == NULL || sn->listen == NULL || ctx0 == NULL ||
        !SSL_CTX_set_ex_data(ctx0, owner_idx, sn)) {
        SSL_CTX_free(ctx0);
        snap_free(sn);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* from here on, freeing ctx0 frees the snapshot and what it holds */
    sn->ctx[0] = ctx0;
    sn->ncerts = t->ncerts;
    sn->ktls = t->ktls == CONF_KTLS_ON || (t->ktls == CONF_KTLS_AUTO && kernel_has_tls());
    a = sn->alpn;
    for (i = 0; i < t->nalpn; i++) {
        if (t->alpn[i] == CONF_ALPN_H2) {
            memcpy(a, "\x02h2", 3);
            a += 3;
        } else if (t->alpn[i] == CONF_ALPN_HTTP11) {
            memcpy(a, "\x08http/1.1", 9);
            a += 9;
        }
    }
    sn->alpn_len = (size_t)(a - sn->alpn);

    for (i = 0; i < t->ncerts; i++) {
        SSL_CTX *ctx = i == 0 ? ctx0 : SSL_CTX_new(TLS_server_method());
        struct tls_cert *tc = &sn->certs[i];

        if (ctx == NULL) {
            openssl_reason(err, errlen, "cannot create a TLS context");
            goto fail;
        }
        if (i > 0)
            sn->ctx[i] = ctx;
        if (conf_tls_cert_load(c, tl->idx, i, &m, cerr) != 0) {
            snprintf(err, errlen, "%s", cerr);
            goto fail;
        }
        tc->label = strdup(t->certs[i].cert);
        if (tc->label == NULL || ctx_configure(ctx, t, sn) != 0 ||
            SSL_CTX_use_certificate(ctx, m.leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, m.key) != 1 ||
            SSL_CTX_set1_chain(ctx, m.chain) != 1 || SSL_CTX_check_private_key(ctx) != 1 ||
            names_collect(sn, &cap, m.leaf, i) != 0) {
            conf_tls_material_fini(&m);
            openssl_reason(err, errlen, t->certs[i].cert);
            goto fail;
        }
        cert_warn_expiry(tc->label, m.leaf);
        if (m.ocsp != NULL) {
            tc->ocsp = m.ocsp;
            tc->ocsp_len = m.ocsp_len;
            m.ocsp = NULL;
            ocsp_note(tc);
            SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
            SSL_CTX_set_tlsext_status_arg(ctx, tc);
        }
        conf_tls_material_fini(&m);
    }
    if (sn->nnames > 1)
        qsort(sn->names, sn->nnames, sizeof(*sn->names), name_cmp);
    for (i = 0; i < sn->nnames; i++)
        LOG_D("listen %s: TLS name %s -> certificate %s", sn->listen, sn->names[i].name,
              sn->certs[sn->names[i].cert].label);
    /* last: a snapshot that failed to build never held the keys */
    sn->keys = keyring_ref(tl->keys);
    return ctx0;
fail:
    SSL_CTX_free(ctx0);
    return NULL;
}

/* ------------------------------------------------------------ keys */

/* The ticket_key_file into the keyring: 0, or -1 with err (keys unchanged). */
static int keys_read(struct tls_listener *tl, char *err, size_t errlen)
{
    char cerr[CONF_ERR_MAX];
    unsigned char *buf;
    size_t n;

    if (conf_tls_ticket_keys_load(tl->srv->conf, tl->idx, &buf, &n, cerr) != 0) {
        snprintf(err, errlen, "%s", cerr);
        return -1;
    }
    AN(n <= CONF_TICKET_KEYS_MAX);
    memcpy(tl->keys->keys, buf, n * CONF_TICKET_KEY_LEN);
    if (n < tl->keys->nkeys)
        OPENSSL_cleanse(&tl->keys->keys[n], (tl->keys->nkeys - n) * CONF_TICKET_KEY_LEN);
    tl->keys->nkeys = n;
    OPENSSL_cleanse(buf, n * CONF_TICKET_KEY_LEN);
    free(buf);
    return 0;
}

static void rotate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tls_listener *tl;
    char err[CONF_ERR_MAX];

    (void)fd, (void)what;
    CAST_OBJ_NOTNULL(tl, arg, TLS_LISTENER_MAGIC);
    if (tl->conf->ticket_key_file != NULL) {
        if (keys_read(tl, err, sizeof(err)) != 0)
            LOG_E("%s; keeping the ticket keys in use", err);
        else
            LOG_D("ticket keys read again from %s", tl->conf->ticket_key_file);
    } else if (keyring_generate(tl->keys) != 0) {
        LOG_E("cannot make a new ticket key; the current one stays in use");
    } else {
        LOG_D("listen %s: new ticket key", tl->srv->conf->listens[tl->idx].address);
    }
}

/* ------------------------------------------------------------ listener */

struct tls_listener *tls_listener_new(struct server *s, size_t idx, char *err, size_t errlen)
{
    struct tls_listener *tl;
    struct timeval tv;

    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    AN(idx < s->conf->nlistens);
    AN(s->conf->listens[idx].tls);
    tl = calloc(1, sizeof(*tl));
    if (tl == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tl->magic = TLS_LISTENER_MAGIC;
    tl->srv = s;
    tl->idx = idx;
    tl->conf = s->conf->listens[idx].tls;
    tl->keys = calloc(1, sizeof(*tl->keys));
    if (tl->keys == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    tl->keys->magic = TLS_KEYRING_MAGIC;
    tl->keys->refcnt = 1;
    if (tl->conf->session_tickets) {
        if (tl->conf->ticket_key_file != NULL) {
            if (keys_read(tl, err, errlen) != 0)
                goto fail;
        } else if (keyring_generate(tl->keys) != 0) {
            snprintf(err, errlen, "cannot make a ticket key (no randomness)");
            goto fail;
        }
        tl->rotate = event_new(s->base, -1, EV_PERSIST, rotate_cb, tl);
        tv.tv_sec = tl->conf->ticket_key_rotation_s;
        tv.tv_usec = 0;
        if (tl->rotate == NULL || event_add(tl->rotate, &tv) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    tl->current = snap_build(tl, err, errlen);
    if (tl->current == NULL)
        goto fail;
    return tl;
fail:
    tls_listener_free(tl);
    return NULL;
}

const struct tls_stats *tls_listener_stats(const struct tls_listener *tl)
{
    CHECK_OBJ_NOTNULL(tl, TLS_LISTENER_MAGIC);
    return &tl->stats;
}

int tls_listener_reload(struct tls_listener *tl, char *err, size_t errlen)
{
    struct tls_keyring saved;
    SSL_CTX *ctx;

    CHECK_OBJ_NOTNULL(tl, TLS_LISTENER_MAGIC);
    /* keys first, so that a failure of either leaves both as they were */
    if (tl->conf->session_tickets && tl->conf->ticket_key_file != NULL) {
        saved = *tl->keys;
        if (keys_read(tl, err, errlen) != 0) {
            OPENSSL_cleanse(&saved, sizeof(saved));
            tl->stats.reload_failures++;
            return -1;
        }
        ctx = snap_build(tl, err, errlen);
        if (ctx == NULL) {
            saved.refcnt = tl->keys->refcnt;
            *tl->keys = saved;
        }
        OPENSSL_cleanse(&saved, sizeof(saved));
    } else {
        ctx = snap_build(tl, err, errlen);
    }
    if (ctx == NULL) {
        tl->stats.reload_failures++;
        return -1;
    }
    /* connections on the old snapshot hold their own references */
    SSL_CTX_free(tl->current);
    tl->current = ctx;
    tl->stats.reloads++;
    return 0;
}

/* ------------------------------------------------------------ handshakes */

struct tls_hs {
    unsigned magic;
#define TLS_HS_MAGIC 0x746c7368U
    struct tls_listener *tl;
    struct bufferevent *bev;
    struct event *timer;
    struct tls_hs *prev, *next; /* in tl->pending */
    char peer[64];
};

static void hs_free(struct tls_hs *h, bool close_conn)
{
    struct tls_listener *tl = h->tl;

    CHECK_OBJ_NOTNULL(h, TLS_HS_MAGIC);
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        tl->pending = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    if (h->timer != NULL)
        event_free(h->timer);
    if (close_conn) {
        bufferevent_free(h->bev); /* frees the SSL and closes the socket */
        server_conn_closed(tl->srv);
    }
    h->magic = 0;
    free(h);
}

static void hs_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tls_hs *h;

    (void)fd, (void)what;
    CAST_OBJ_NOTNULL(h, arg, TLS_HS_MAGIC);
    h->tl->stats.timeouts++;
    LOG_D("client %s: TLS handshake not done within %ums", h->peer,
          h->tl->conf->handshake_timeout_ms);
    hs_free(h, true);
}

/* The first connection of a snapshot that asked for kTLS says whether the
 * kernel took it. */
static void note_ktls(SSL *ssl)
{
    struct tls_snap *sn = ssl_snap(ssl);

    if (!sn->ktls || sn->ktls_logged)
        return;
    sn->ktls_logged = true;
    if (BIO_get_ktls_send(SSL_get_wbio(ssl)))
        LOG_I("listen %s: kernel TLS in use for sending", sn->listen);
    else
        LOG_W("listen %s: kernel TLS was asked for, but the kernel or the cipher did not "
              "take it; TLS stays in user space",
              sn->listen);
}

static void hs_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct tls_hs *h;
    struct server *s;
    const unsigned char *proto = NULL;
    unsigned proto_len = 0;
    char peer[sizeof(h->peer)];
    SSL *ssl;

    CAST_OBJ_NOTNULL(h, arg, TLS_HS_MAGIC);
    s = h->tl->srv;
    if (what & BEV_EVENT_CONNECTED) {
        ssl = bufferevent_openssl_get_ssl(bev);
        AN(ssl);
        h->tl->stats.handshakes++;
        if (SSL_session_reused(ssl))
            h->tl->stats.resumed++;
        note_ktls(ssl);
        /* marks it established for ssl_done_free_cb; (void *)1 is no pointer */
        SSL_set_ex_data(ssl, ssl_done_idx, (void *)1);
        SSL_get0_alpn_selected(ssl, &proto, &proto_len);
        LOG_D("client %s: TLS %s %s%s, ALPN %.*s", h->peer, SSL_get_version(ssl),
              SSL_get_cipher_name(ssl), SSL_session_reused(ssl) ? ", resumed" : "",
              proto_len ? (int)proto_len : 4, proto_len ? (const char *)proto : "none");
        memcpy(peer, h->peer, sizeof(peer));
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        hs_free(h, false);
        if (proto_len == 2 && memcmp(proto, "h2", 2) == 0) {
            h2_conn_attach(s, bev, peer, true);
            return;
        }
        /* http/1.1, or no ALPN at all (RFC 7301 3.1: the client offered none) */
        h1_conn_attach(s, bev, peer);
        return;
    }
    {
        unsigned long e = bufferevent_get_openssl_error(bev);
        const char *why = e ? ERR_reason_error_string(e) : NULL;

        while (bufferevent_get_openssl_error(bev) != 0)
            ; /* drain what is queued on this connection */
        if (why == NULL)
            why = (what & BEV_EVENT_EOF) ? "the client closed"
                                         : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
        LOG_D("client %s: TLS handshake failed: %s", h->peer, why);
    }
    h->tl->stats.failures++;
    hs_free(h, true);
}

void tls_listener_accept(struct tls_listener *tl, evutil_socket_t fd, const struct sockaddr *sa,
                         int salen)
{
    struct server *s;
    struct tls_hs *h;
    struct timeval tv;
    SSL *ssl;
    int one = 1;

    (void)salen;
    CHECK_OBJ_NOTNULL(tl, TLS_LISTENER_MAGIC);
    s = tl->srv;
    h = calloc(1, sizeof(*h));
    ssl = h != NULL ? SSL_new(tl->current) : NULL;
    if (ssl == NULL) {
        LOG_E("TLS: out of memory for a new connection");
        free(h);
        evutil_closesocket(fd);
        server_conn_closed(s);
        return;
    }
    h->magic = TLS_HS_MAGIC;
    h->tl = tl;
    h1_peer_name(sa, h->peer, sizeof(h->peer));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (h->bev == NULL) {
        /* libevent 2.1 may or may not have freed the SSL and closed the
         * socket by now: leave both rather than free them twice */
        LOG_E("TLS: out of memory for a new connection");
        free(h);
        server_conn_closed(s);
        return;
    }
    h->next = tl->pending;
    if (h->next != NULL)
        h->next->prev = h;
    tl->pending = h;
    bufferevent_openssl_set_allow_dirty_shutdown(h->bev, 1);
    bufferevent_setcb(h->bev, NULL, NULL, hs_event_cb, h);
    h->timer = evtimer_new(s->base, hs_timeout_cb, h);
    tv.tv_sec = tl->conf->handshake_timeout_ms / 1000;
    tv.tv_usec = (tl->conf->handshake_timeout_ms % 1000) * 1000;
    if (h->timer == NULL || evtimer_add(h->timer, &tv) != 0) {
        LOG_E("TLS: out of memory for a new connection");
        hs_free(h, true);
    }
}

void tls_listener_free(struct tls_listener *tl)
{
    struct tls_hs *h, *next;

    if (tl == NULL)
        return;
    CHECK_OBJ(tl, TLS_LISTENER_MAGIC);
    for (h = tl->pending; h != NULL; h = next) {
        next = h->next;
        hs_free(h, true);
    }
    if (tl->rotate != NULL)
        event_free(tl->rotate);
    SSL_CTX_free(tl->current);
    keyring_unref(tl->keys);
    tl->magic = 0;
    free(tl);
}
