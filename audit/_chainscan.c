/*
 * audit._chainscan: the hot loop of custody-chain verification, in C (docs/custody.md §4).
 *
 * scan(conninfo, lo, hi, prev, want, snapshot=None)
 *     -> (good_count, last_good_hash, stopped_at_seq or None, {seq: hash for seq in want})
 *
 * Opens its own libpq connection, reads entries lo..hi with
 *   COPY (SELECT seq, prev_hash, canonical, hash FROM audit_custodyevent
 *         WHERE seq BETWEEN lo AND hi ORDER BY seq) TO STDOUT (FORMAT binary)
 * in a REPEATABLE READ READ ONLY transaction (on the caller's exported snapshot when given), and
 * checks each row exactly as audit.scan._scan_batch does: seq == expected, prev_hash == the running
 * hash, canonical not NULL, hex(sha256(running_hash + "\n" + canonical)) == hash. It stops at the first
 * row failing any check; audit.scan's Python path takes over there and names the entry.
 *
 * Every hash is recomputed here (OpenSSL) from the bytes the database returns; the database is never
 * asked to compute or compare one (CSI R241-14, LEGAL.md rule 7: the log must be tamper-evident).
 * No Python object is built per row, and the GIL is released for the whole connection and loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#define FETCH_SHA256() EVP_MD_fetch(NULL, "SHA256", NULL)
#define FREE_SHA256(md) EVP_MD_free(md)
#define DIGEST_INIT(ctx, md) EVP_DigestInit_ex2((ctx), (md), NULL)
#else
#define FETCH_SHA256() ((EVP_MD *)EVP_sha256())
#define FREE_SHA256(md) ((void)(md))
#define DIGEST_INIT(ctx, md) EVP_DigestInit_ex((ctx), (md), NULL)
#endif

#define HASH_HEX 64
#define FIELDS 4
#define ERR_MAX 1024

static PyObject *ChainScanError;

static const char COPY_SIGNATURE[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};

typedef struct {
    /* inputs */
    const char *conninfo;
    const char *snapshot;
    long long lo, hi;
    char *start_prev; /* owned; NULL: take entry lo's own prev_hash */
    size_t start_prev_len;
    long long *want; /* sorted, unique */
    Py_ssize_t nwant;

    /* running state */
    const char *prev; /* start_prev, or running[] */
    size_t prev_len;
    char running[HASH_HEX];
    long long expected;
    Py_ssize_t want_i;
    EVP_MD_CTX *md_ctx;
    EVP_MD *md; /* fetched once: an implicit fetch per entry would double the cost (OpenSSL 3) */
    unsigned char *msg; /* running hash + "\n" + canonical, hashed in one update */
    size_t msg_cap;
    int header_done;
    int trailer_seen;

    /* outputs */
    long long good;
    int stopped;
    long long stopped_seq;
    int stopped_seq_known;
    char (*want_hash)[HASH_HEX];
    unsigned char *want_found;
    char err[ERR_MAX];
} scan_t;

static int32_t be32(const unsigned char *p) {
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3]);
}

static int16_t be16(const unsigned char *p) {
    return (int16_t)(((uint16_t)p[0] << 8) | (uint16_t)p[1]);
}

static int64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return (int64_t)v;
}

static void fail(scan_t *s, const char *what, const char *detail) {
    if (s->err[0]) return;
    snprintf(s->err, ERR_MAX, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
    /* libpq messages end with a newline */
    size_t n = strlen(s->err);
    while (n && (s->err[n - 1] == '\n' || s->err[n - 1] == ' ')) s->err[--n] = '\0';
}

static const char HEX[] = "0123456789abcdef";

/* One row of the COPY stream. Returns 0 to go on, 1 when the row stops the scan, -1 on error. */
static int check_row(scan_t *s, const unsigned char *f[FIELDS], const int32_t len[FIELDS]) {
    if (len[0] != 8) {
        fail(s, "unexpected COPY data", len[0] < 0 ? "NULL seq" : "seq is not an 8-byte bigint");
        return -1;
    }
    long long seq = (long long)be64(f[0]);
    if (s->prev == NULL) {
        /* A segment proven by the checkpoint that ends it: start from entry lo's own prev_hash. */
        if (len[1] < 0) {
            s->stopped = 1; s->stopped_seq = seq; s->stopped_seq_known = 1;
            return 1;
        }
        s->start_prev = malloc(len[1] ? (size_t)len[1] : 1);
        if (!s->start_prev) { fail(s, "out of memory", NULL); return -1; }
        memcpy(s->start_prev, f[1], (size_t)len[1]);
        s->start_prev_len = (size_t)len[1];
        s->prev = s->start_prev;
        s->prev_len = s->start_prev_len;
    }
    if (seq != s->expected || len[1] < 0 || (size_t)len[1] != s->prev_len
        || memcmp(f[1], s->prev, s->prev_len) != 0 || len[2] < 0 || len[3] != HASH_HEX) {
        s->stopped = 1; s->stopped_seq = seq; s->stopped_seq_known = 1;
        return 1;
    }
    size_t mlen = s->prev_len + 1 + (size_t)len[2];
    if (mlen > s->msg_cap) {
        unsigned char *m = realloc(s->msg, mlen * 2);
        if (!m) { fail(s, "out of memory", NULL); return -1; }
        s->msg = m;
        s->msg_cap = mlen * 2;
    }
    memcpy(s->msg, s->prev, s->prev_len);
    s->msg[s->prev_len] = '\n';
    memcpy(s->msg + s->prev_len + 1, f[2], (size_t)len[2]);
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (DIGEST_INIT(s->md_ctx, s->md) != 1 || EVP_DigestUpdate(s->md_ctx, s->msg, mlen) != 1
        || EVP_DigestFinal_ex(s->md_ctx, digest, &dlen) != 1 || dlen != 32) {
        fail(s, "SHA-256 failed (OpenSSL)", NULL);
        return -1;
    }
    char hex[HASH_HEX];
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = HEX[digest[i] >> 4];
        hex[2 * i + 1] = HEX[digest[i] & 15];
    }
    if (memcmp(hex, f[3], HASH_HEX) != 0) {
        s->stopped = 1; s->stopped_seq = seq; s->stopped_seq_known = 1;
        return 1;
    }
    /* A good entry: its stored hash (equal to the one recomputed) is what the next one chains onto. */
    while (s->want_i < s->nwant && s->want[s->want_i] < seq) s->want_i++;
    if (s->want_i < s->nwant && s->want[s->want_i] == seq) {
        memcpy(s->want_hash[s->want_i], hex, HASH_HEX);
        s->want_found[s->want_i] = 1;
    }
    memcpy(s->running, hex, HASH_HEX);
    s->prev = s->running;
    s->prev_len = HASH_HEX;
    s->expected++;
    s->good++;
    return 0;
}

/* Parse what the buffer holds; *used is set to the bytes consumed (whole header or whole rows only).
 * Returns 0 to go on reading, 1 when the scan stopped at a row, -1 on error. */
static int parse(scan_t *s, const unsigned char *p, size_t n, size_t *used) {
    size_t pos = 0;
    *used = 0;
    if (!s->header_done) {
        if (n < 19) return 0;
        if (memcmp(p, COPY_SIGNATURE, sizeof COPY_SIGNATURE) != 0) {
            fail(s, "unexpected COPY data", "bad binary COPY signature");
            return -1;
        }
        int32_t flags = be32(p + 11);
        if (flags & (int32_t)0xFFFF0000) { /* bit 16: OIDs included; 17-31: unknown critical flags */
            fail(s, "unexpected COPY data", "binary COPY header has critical flags set");
            return -1;
        }
        int32_t ext = be32(p + 15);
        if (ext < 0) {
            fail(s, "unexpected COPY data", "negative header extension length");
            return -1;
        }
        if (n < 19 + (size_t)ext) return 0;
        pos = 19 + (size_t)ext;
        s->header_done = 1;
        *used = pos;
    }
    while (pos < n) {
        if (s->trailer_seen) {
            fail(s, "unexpected COPY data", "data after the binary COPY trailer");
            return -1;
        }
        if (n - pos < 2) return 0;
        int16_t nfields = be16(p + pos);
        if (nfields == -1) {
            s->trailer_seen = 1;
            pos += 2;
            *used = pos;
            continue;
        }
        if (nfields != FIELDS) {
            fail(s, "unexpected COPY data", "a row does not have 4 fields");
            return -1;
        }
        size_t q = pos + 2;
        const unsigned char *f[FIELDS];
        int32_t len[FIELDS];
        for (int i = 0; i < FIELDS; i++) {
            if (n - q < 4) return 0;
            len[i] = be32(p + q);
            q += 4;
            if (len[i] < -1) {
                fail(s, "unexpected COPY data", "negative field length");
                return -1;
            }
            f[i] = p + q;
            if (len[i] > 0) {
                if (n - q < (size_t)len[i]) return 0;
                q += (size_t)len[i];
            }
        }
        int r = check_row(s, f, len);
        if (r != 0) return r;
        pos = q;
        *used = pos;
    }
    return 0;
}

/* The bytes of the COPY stream not parsed yet (a row split across messages). */
typedef struct {
    unsigned char *buf;
    size_t len, cap;
} stream_t;

/* One CopyData message. Rows need not align with messages: a partial one waits for the next.
 * Returns 0 to go on, 1 when the scan stopped at a row, -1 on error. */
static int feed(scan_t *s, stream_t *st, const unsigned char *msg, size_t n) {
    const unsigned char *data = msg;
    size_t data_len = n;
    if (st->len) {
        if (st->len + n > st->cap) {
            size_t cap = (st->len + n) * 2;
            unsigned char *nb = realloc(st->buf, cap);
            if (!nb) { fail(s, "out of memory", NULL); return -1; }
            st->buf = nb;
            st->cap = cap;
        }
        memcpy(st->buf + st->len, msg, n);
        st->len += n;
        data = st->buf;
        data_len = st->len;
    }
    size_t used = 0;
    int r = parse(s, data, data_len, &used);
    if (r != 0 || used == data_len) {
        st->len = 0;
        return r;
    }
    size_t rest = data_len - used;
    if (data == st->buf) {
        memmove(st->buf, st->buf + used, rest);
    } else {
        if (rest > st->cap) {
            unsigned char *nb = realloc(st->buf, rest * 2);
            if (!nb) { fail(s, "out of memory", NULL); return -1; }
            st->buf = nb;
            st->cap = rest * 2;
        }
        memcpy(st->buf, data + used, rest);
    }
    st->len = rest;
    return 0;
}

/* The stream ended: it must have been whole (header, rows, trailer, nothing left over). */
static void finish(scan_t *s, stream_t *st) {
    if (!s->header_done || !s->trailer_seen || st->len != 0)
        fail(s, "unexpected COPY data", "the binary COPY stream ended early");
}

static int exec_ok(scan_t *s, PGconn *conn, const char *sql, ExecStatusType want, const char *what) {
    PGresult *res = PQexec(conn, sql);
    int ok = res && PQresultStatus(res) == want;
    if (!ok) fail(s, what, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    return ok;
}

/* Stop a COPY that is still sending: cancel it and read what is left, so the server ends it cleanly. */
static void abandon_copy(PGconn *conn) {
    PGcancel *cancel = PQgetCancel(conn);
    if (cancel) {
        char buf[256];
        PQcancel(cancel, buf, sizeof buf);
        PQfreeCancel(cancel);
    }
    char *msg;
    int n;
    while ((n = PQgetCopyData(conn, &msg, 0)) > 0) PQfreemem(msg);
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) PQclear(res);
}

/* Runs without the GIL: no Python API here. */
static void run_scan(scan_t *s) {
    const char *keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
    const char *values[] = {s->conninfo, "temoin-chainscan", "UTF8", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    stream_t st = {NULL, 0, 0};
    int copying = 0;

    if (conn == NULL) { fail(s, "cannot connect to PostgreSQL", "out of memory"); return; }
    if (PQstatus(conn) != CONNECTION_OK) {
        fail(s, "cannot connect to PostgreSQL", PQerrorMessage(conn));
        goto done;
    }
    if (!exec_ok(s, conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", PGRES_COMMAND_OK,
                 "cannot start the read transaction"))
        goto done;
    if (s->snapshot) {
        char *lit = PQescapeLiteral(conn, s->snapshot, strlen(s->snapshot));
        if (!lit) { fail(s, "cannot quote the snapshot id", PQerrorMessage(conn)); goto done; }
        char sql[256];
        int w = snprintf(sql, sizeof sql, "SET TRANSACTION SNAPSHOT %s", lit);
        PQfreemem(lit);
        if (w < 0 || (size_t)w >= sizeof sql) { fail(s, "snapshot id too long", NULL); goto done; }
        if (!exec_ok(s, conn, sql, PGRES_COMMAND_OK, "cannot import the verifier's snapshot")) goto done;
    }
    char copy_sql[512];
    snprintf(copy_sql, sizeof copy_sql,
             "COPY (SELECT seq, prev_hash, canonical, hash FROM audit_custodyevent WHERE seq BETWEEN %lld AND %lld "
             "ORDER BY seq) TO STDOUT (FORMAT binary)", s->lo, s->hi);
    if (!exec_ok(s, conn, copy_sql, PGRES_COPY_OUT, "cannot read the custody log")) goto done;
    copying = 1;

    for (;;) {
        char *msg = NULL;
        int n = PQgetCopyData(conn, &msg, 0); /* blocking */
        if (n == -1) { copying = 0; break; }
        if (n == -2) { fail(s, "reading the custody log failed", PQerrorMessage(conn)); break; }
        if (n <= 0) { fail(s, "reading the custody log failed", "unexpected PQgetCopyData result"); break; }
        int r = feed(s, &st, (const unsigned char *)msg, (size_t)n);
        PQfreemem(msg);
        if (r != 0) break;
    }
    if (s->err[0] || s->stopped) {
        if (copying && PQstatus(conn) == CONNECTION_OK) abandon_copy(conn);
        goto done;
    }
    PGresult *res;
    int status_ok = 1;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fail(s, "reading the custody log failed", PQresultErrorMessage(res));
            status_ok = 0;
        }
        PQclear(res);
    }
    if (status_ok) finish(s, &st);

done:
    free(st.buf);
    PQfinish(conn); /* rolls the read-only transaction back */
}

/* In-memory COPY data, split into messages of `chunk` bytes (0: one message): the parser alone. */
typedef struct {
    const unsigned char *data;
    size_t len, chunk;
} memstream_t;

static void run_memstream(scan_t *s, const memstream_t *m) {
    stream_t st = {NULL, 0, 0};
    size_t step = m->chunk ? m->chunk : (m->len ? m->len : 1);
    int r = 0;
    for (size_t pos = 0; pos < m->len && r == 0; pos += step)
        r = feed(s, &st, m->data + pos, m->len - pos < step ? m->len - pos : step);
    if (r == 0 && !s->err[0]) finish(s, &st);
    free(st.buf);
}

static void scan_free(scan_t *s) {
    if (s->md_ctx) EVP_MD_CTX_free(s->md_ctx);
    if (s->md) FREE_SHA256(s->md);
    free(s->msg);
    free(s->start_prev);
    PyMem_Free(s->want);
    PyMem_Free(s->want_hash);
    PyMem_Free(s->want_found);
}

/* Fill a scan_t from the Python arguments (-1 with an exception set on error). */
static int scan_init(scan_t *s, long long lo, long long hi, const char *prev, Py_ssize_t prev_len, PyObject *want_obj) {
    memset(s, 0, sizeof *s);
    if (hi < lo) {
        PyErr_SetString(PyExc_ValueError, "hi must be >= lo");
        return -1;
    }
    s->lo = lo;
    s->hi = hi;
    s->expected = lo;
    if (prev) {
        s->start_prev = malloc(prev_len ? (size_t)prev_len : 1);
        if (!s->start_prev) { PyErr_NoMemory(); return -1; }
        memcpy(s->start_prev, prev, (size_t)prev_len);
        s->start_prev_len = (size_t)prev_len;
        s->prev = s->start_prev;
        s->prev_len = s->start_prev_len;
    }
    if (want_obj && want_obj != Py_None) {
        PyObject *seq = PySequence_Fast(want_obj, "want must be a sequence of ints");
        if (!seq) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        s->want = PyMem_Calloc(n ? (size_t)n : 1, sizeof *s->want);
        if (!s->want) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < n; i++) {
            long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
            if (v == -1 && PyErr_Occurred()) { Py_DECREF(seq); return -1; }
            s->want[i] = v;
        }
        Py_DECREF(seq);
        for (Py_ssize_t i = 1; i < n; i++) {
            if (s->want[i] <= s->want[i - 1]) {
                PyErr_SetString(PyExc_ValueError, "want must be sorted and without duplicates");
                return -1;
            }
        }
        s->nwant = n;
        s->want_hash = PyMem_Calloc(n ? (size_t)n : 1, HASH_HEX);
        s->want_found = PyMem_Calloc(n ? (size_t)n : 1, 1);
        if (!s->want_hash || !s->want_found) { PyErr_NoMemory(); return -1; }
    }
    s->md_ctx = EVP_MD_CTX_new();
    s->md = FETCH_SHA256();
    if (!s->md_ctx || !s->md) {
        PyErr_SetString(ChainScanError, "cannot set up SHA-256 (OpenSSL)");
        return -1;
    }
    return 0;
}

/* (good_count, last_good_hash, stopped_at_seq or None, {seq: hash}) or the scan's error. */
static PyObject *scan_result(scan_t *s, const char *prev, Py_ssize_t prev_len) {
    PyObject *result = NULL, *hashes = NULL, *last = NULL, *stopped = NULL;
    if (s->err[0]) {
        PyErr_SetString(ChainScanError, s->err);
        return NULL;
    }
    hashes = PyDict_New();
    if (!hashes) goto out;
    for (Py_ssize_t i = 0; i < s->nwant; i++) {
        if (!s->want_found[i]) continue;
        PyObject *k = PyLong_FromLongLong(s->want[i]);
        PyObject *v = PyUnicode_DecodeASCII(s->want_hash[i], HASH_HEX, "strict");
        if (!k || !v || PyDict_SetItem(hashes, k, v) < 0) { Py_XDECREF(k); Py_XDECREF(v); goto out; }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    if (s->good) {
        last = PyUnicode_DecodeASCII(s->running, HASH_HEX, "strict");
    } else if (prev) {
        last = PyUnicode_DecodeUTF8(prev, prev_len, "strict");
    } else {
        last = Py_NewRef(Py_None);
    }
    if (!last) goto out;
    stopped = s->stopped && s->stopped_seq_known ? PyLong_FromLongLong(s->stopped_seq) : Py_NewRef(Py_None);
    if (!stopped) goto out;
    result = Py_BuildValue("(LOOO)", s->good, last, stopped, hashes);
out:
    Py_XDECREF(hashes);
    Py_XDECREF(last);
    Py_XDECREF(stopped);
    return result;
}

static PyObject *chainscan_scan(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"conninfo", "lo", "hi", "prev", "want", "snapshot", NULL};
    const char *conninfo, *prev = NULL, *snapshot = NULL;
    Py_ssize_t prev_len = 0;
    long long lo, hi;
    PyObject *want_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sLLz#|Oz:scan", kwlist, &conninfo, &lo, &hi, &prev, &prev_len,
                                     &want_obj, &snapshot))
        return NULL;
    scan_t s;
    PyObject *result = NULL;
    if (scan_init(&s, lo, hi, prev, prev_len, want_obj) == 0) {
        s.conninfo = conninfo;
        s.snapshot = snapshot;
        Py_BEGIN_ALLOW_THREADS
        run_scan(&s);
        Py_END_ALLOW_THREADS
        result = scan_result(&s, prev, prev_len);
    }
    scan_free(&s);
    return result;
}

static PyObject *chainscan_check_copy_data(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"data", "lo", "hi", "prev", "want", "chunk", NULL};
    const char *prev = NULL;
    Py_ssize_t prev_len = 0, chunk = 0;
    long long lo, hi;
    PyObject *want_obj = NULL;
    Py_buffer data;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*LLz#|On:check_copy_data", kwlist, &data, &lo, &hi, &prev,
                                     &prev_len, &want_obj, &chunk))
        return NULL;
    scan_t s;
    PyObject *result = NULL;
    if (chunk < 0) {
        PyErr_SetString(PyExc_ValueError, "chunk must be >= 0");
        memset(&s, 0, sizeof s);
    } else if (scan_init(&s, lo, hi, prev, prev_len, want_obj) == 0) {
        memstream_t m = {data.buf, (size_t)data.len, (size_t)chunk};
        run_memstream(&s, &m);
        result = scan_result(&s, prev, prev_len);
    }
    scan_free(&s);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))chainscan_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(conninfo, lo, hi, prev, want=(), snapshot=None) -> (good_count, last_good_hash, stopped_at_seq, hashes)\n\n"
     "Verify custody entries lo..hi read over a libpq connection of its own; stop at the first entry that\n"
     "breaks a chain rule (stopped_at_seq is its seq, None when the rows ran out). prev is the hash entry lo\n"
     "chains onto, or None to start from its own prev_hash. want: sorted seqs whose hashes to return."},
    {"check_copy_data", (PyCFunction)(void (*)(void))chainscan_check_copy_data, METH_VARARGS | METH_KEYWORDS,
     "check_copy_data(data, lo, hi, prev, want=(), chunk=0) -> as scan()\n\n"
     "The same checks over binary COPY data held in memory, fed in messages of chunk bytes (0: one\n"
     "message): for tests of the parser."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "audit._chainscan",
    "Custody-chain verification reader in C (libpq COPY binary + OpenSSL SHA-256).", -1, methods,
};

PyMODINIT_FUNC PyInit__chainscan(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    ChainScanError = PyErr_NewException("audit._chainscan.Error", PyExc_RuntimeError, NULL);
    if (!ChainScanError || PyModule_AddObjectRef(m, "Error", ChainScanError) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "LIBPQ_VERSION", PQlibVersion()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* The connection options this libpq knows (psycopg may bundle a newer one, with more). */
    PyObject *keywords = PySet_New(NULL);
    PQconninfoOption *options = PQconndefaults();
    if (!keywords || !options) {
        Py_XDECREF(keywords);
        if (options) PQconninfoFree(options);
        Py_DECREF(m);
        return keywords ? PyErr_NoMemory() : NULL;
    }
    for (PQconninfoOption *o = options; o->keyword; o++) {
        PyObject *k = PyUnicode_FromString(o->keyword);
        if (!k || PySet_Add(keywords, k) < 0) {
            Py_XDECREF(k);
            PQconninfoFree(options);
            Py_DECREF(keywords);
            Py_DECREF(m);
            return NULL;
        }
        Py_DECREF(k);
    }
    PQconninfoFree(options);
    PyObject *frozen = PyFrozenSet_New(keywords);
    Py_DECREF(keywords);
    int added = frozen ? PyModule_AddObjectRef(m, "CONNINFO_KEYWORDS", frozen) : -1;
    Py_XDECREF(frozen);
    if (added < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
