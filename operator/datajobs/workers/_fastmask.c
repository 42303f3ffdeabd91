/* The masking algorithms' per-value work over a whole column in one call: keyed BLAKE2b (RFC 7693) and
 * the rewrites of algorithms.py, for the values it is sure about.
 *
 * Each text function returns a list as long as its input: the masked str where the value is one it
 * covers (an exact str, ASCII, the algorithm's format, short enough for one 64-byte digest), None
 * elsewhere; batchmask.py sends every None through algorithms.py, so whatever this returns must equal
 * algorithms.py's output byte for byte (tests/workers/test_batchmask.py). The inputs are copied into C
 * buffers and the hashing runs without the GIL (the worker's database thread goes on meanwhile). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* --- BLAKE2b, 64-byte digests, keyed ------------------------------------------------------------- */

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define G(a, b, c, d, x, y)                                                                               \
    do {                                                                                                  \
        v[a] = v[a] + v[b] + (x); v[d] = ROTR(v[d] ^ v[a], 32);                                           \
        v[c] = v[c] + v[d]; v[b] = ROTR(v[b] ^ v[c], 24);                                                 \
        v[a] = v[a] + v[b] + (y); v[d] = ROTR(v[d] ^ v[a], 16);                                           \
        v[c] = v[c] + v[d]; v[b] = ROTR(v[b] ^ v[c], 63);                                                 \
    } while (0)

static uint64_t load64(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
#else
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--) w = (w << 8) | p[i];
    return w;
#endif
}

/* A round with its SIGMA row a constant: unrolled, the compiler keeps the message words in registers. */
#define ROUND(r)                                                                                          \
    do {                                                                                                  \
        G(0, 4, 8, 12, m[SIGMA[r][0]], m[SIGMA[r][1]]);                                                   \
        G(1, 5, 9, 13, m[SIGMA[r][2]], m[SIGMA[r][3]]);                                                   \
        G(2, 6, 10, 14, m[SIGMA[r][4]], m[SIGMA[r][5]]);                                                  \
        G(3, 7, 11, 15, m[SIGMA[r][6]], m[SIGMA[r][7]]);                                                  \
        G(0, 5, 10, 15, m[SIGMA[r][8]], m[SIGMA[r][9]]);                                                  \
        G(1, 6, 11, 12, m[SIGMA[r][10]], m[SIGMA[r][11]]);                                                \
        G(2, 7, 8, 13, m[SIGMA[r][12]], m[SIGMA[r][13]]);                                                 \
        G(3, 4, 9, 14, m[SIGMA[r][14]], m[SIGMA[r][15]]);                                                 \
    } while (0)

/* F: one 128-byte block into h; t is the byte count so far (it never reaches 2^64 here). */
static void compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) { v[i] = h[i]; v[i + 8] = IV[i]; }
    v[12] ^= t;
    if (last) v[14] = ~v[14];
    ROUND(0); ROUND(1); ROUND(2); ROUND(3); ROUND(4); ROUND(5);
    ROUND(6); ROUND(7); ROUND(8); ROUND(9); ROUND(10); ROUND(11);
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The keyed state after the key block, with `label NUL` buffered: every message continues a copy of it
 * (the key block is never the last one, as a message holds at least `label NUL`). */
typedef struct {
    uint64_t h[8];
    uint64_t t;
    uint8_t prefix[32];
    size_t prefix_len;
} Start;

static int start_init(Start *s, const uint8_t *key, size_t key_len, const char *label) {
    if (key_len > 64) {
        PyErr_SetString(PyExc_ValueError, "a BLAKE2b key has at most 64 bytes");
        return -1;
    }
    memcpy(s->h, IV, sizeof IV);
    s->h[0] ^= 0x01010000ULL ^ ((uint64_t)key_len << 8) ^ 64;
    s->t = 0;
    if (key_len) {
        uint8_t block[128] = {0};
        memcpy(block, key, key_len);
        s->t = 128;
        compress(s->h, block, s->t, 0);
    }
    s->prefix_len = strlen(label) + 1;
    memcpy(s->prefix, label, s->prefix_len); /* with its NUL */
    return 0;
}

/* BLAKE2b-512 of `prefix || msg` continued from the start state: what
 * hashlib.blake2b(label NUL msg, key=key, digest_size=64).digest() gives. */
static void digest(const Start *s, const uint8_t *msg, size_t len, uint8_t out[64]) {
    uint64_t h[8];
    uint8_t block[128];
    uint64_t t = s->t;
    size_t fill = s->prefix_len, total = s->prefix_len + len;
    memcpy(h, s->h, sizeof h);
    memcpy(block, s->prefix, fill);
    while (total > 128) { /* a full block with more to follow: not the last */
        size_t take = 128 - fill;
        memcpy(block + fill, msg, take);
        msg += take;
        len -= take;
        total -= 128;
        t += 128;
        compress(h, block, t, 0);
        fill = 0;
    }
    memcpy(block + fill, msg, len);
    memset(block + fill + len, 0, 128 - fill - len);
    compress(h, block, t + total, 1);
    for (int i = 0; i < 64; i++) out[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
}

/* --- a column: copied in with the GIL, masked without it, built back with it -------------------- */

#define SLOT 64 /* the longest value masked here: one digest covers it */

typedef struct {
    Py_ssize_t n;
    uint8_t *in, *out;   /* n slots of SLOT bytes */
    Py_ssize_t *len;     /* the value's length, or -1: not covered (None in the result) */
} Column;

static void column_free(Column *c) {
    PyMem_Free(c->in);
    PyMem_Free(c->out);
    PyMem_Free(c->len);
}

/* The exact-str ASCII values of at most SLOT characters, each in its slot; the rest marked -1. */
static int column_read(Column *c, PyObject *values) {
    memset(c, 0, sizeof *c);
    PyObject *seq = PySequence_Fast(values, "the values must be a sequence");
    if (seq == NULL) return -1;
    c->n = PySequence_Fast_GET_SIZE(seq);
    size_t n = c->n ? (size_t)c->n : 1;
    c->in = PyMem_Malloc(n * SLOT);
    c->out = PyMem_Malloc(n * SLOT);
    c->len = PyMem_Malloc(n * sizeof(Py_ssize_t));
    if (c->in == NULL || c->out == NULL || c->len == NULL) {
        Py_DECREF(seq);
        column_free(c);
        PyErr_NoMemory();
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int failed = 0;
    for (Py_ssize_t i = 0; i < c->n && !failed; i++) {
        PyObject *v = items[i];
        Py_ssize_t len;
        c->len[i] = -1;
        if (!PyUnicode_CheckExact(v) || (failed = PyUnicode_READY(v)) < 0 || !PyUnicode_IS_ASCII(v)) continue;
        if ((len = PyUnicode_GET_LENGTH(v)) <= SLOT) {
            memcpy(c->in + i * SLOT, PyUnicode_1BYTE_DATA(v), len);
            c->len[i] = len;
        }
    }
    Py_DECREF(seq);
    if (failed) column_free(c);
    return failed;
}

static PyObject *column_result(Column *c) {
    PyObject *list = PyList_New(c->n);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < c->n; i++) {
        PyObject *item;
        if (c->len[i] < 0) {
            item = Py_NewRef(Py_None);
        } else {
            item = PyUnicode_New(c->len[i], 127);
            if (item == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            memcpy(PyUnicode_1BYTE_DATA(item), c->out + i * SLOT, c->len[i]);
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

#define IS_DIGIT(ch) ((ch) >= '0' && (ch) <= '9')
#define IS_LOWER(ch) ((ch) >= 'a' && (ch) <= 'z')
#define IS_UPPER(ch) ((ch) >= 'A' && (ch) <= 'Z')

/* algorithms._same_classes of ASCII: byte i of the stream picks the class's character for character i. */
static void same_classes(const uint8_t *in, const uint8_t *stream, size_t len, uint8_t *out) {
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = in[i], b = stream[i];
        out[i] = IS_DIGIT(ch) ? '0' + b % 10 : IS_LOWER(ch) ? 'a' + b % 26 : IS_UPPER(ch) ? 'A' + b % 26 : ch;
    }
}

/* Each mask_* fills one slot's output and returns its length, or -1 where algorithms.py must decide. */

static Py_ssize_t mask_hash(const Start *s, const uint8_t *v, Py_ssize_t len, uint8_t *out, long unused) {
    (void)unused;
    int alnum = 0;
    for (Py_ssize_t i = 0; i < len && !alnum; i++) alnum = IS_DIGIT(v[i]) || IS_LOWER(v[i]) || IS_UPPER(v[i]);
    if (!alnum) return -1; /* empty, or nothing to mask */
    uint8_t stream[64];
    digest(s, v, len, stream);
    same_classes(v, stream, len, out);
    return len;
}

/* EMAIL_PATTERN, for values of printable non-space ASCII only (so `\s` and the `$` before a newline
 * never come into it): one `@` after a non-empty local part, then a domain whose last `.` has
 * something before it (after the `@`) and something after it. */
static Py_ssize_t mask_email(const Start *s, const uint8_t *v, Py_ssize_t len, uint8_t *out, long keep_domain) {
    Py_ssize_t at = -1, dot = -1;
    for (Py_ssize_t i = 0; i < len; i++) {
        uint8_t ch = v[i];
        if (ch < 0x21 || ch > 0x7e) return -1;
        if (ch == '@') {
            if (at >= 0) return -1;
            at = i;
        } else if (ch == '.') {
            dot = i;
        }
    }
    if (at < 1 || dot < at + 2 || dot > len - 2) return -1;
    uint8_t lower[SLOT], stream[64];
    for (Py_ssize_t i = 0; i < len; i++) lower[i] = IS_UPPER(v[i]) ? v[i] + 32 : v[i];
    digest(s, lower, len, stream);
    Py_ssize_t cut = keep_domain ? at : dot; /* the `@` between is no class: kept, as in algorithms.py */
    same_classes(v, stream, cut, out);
    memcpy(out + cut, v + cut, len - cut);
    return len;
}

/* PHONE_PATTERN: digits and `+ ( ) . - /` and spaces, a `+` first only; 7 to 15 digits, keyed on the
 * digits alone; the first `keep` digits and the layout kept. */
static Py_ssize_t mask_phone(const Start *s, const uint8_t *v, Py_ssize_t len, uint8_t *out, long keep) {
    uint8_t digits[SLOT], stream[64];
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        uint8_t ch = v[i];
        if (IS_DIGIT(ch)) digits[count++] = ch;
        else if (!(ch == ' ' || ch == '(' || ch == ')' || ch == '.' || ch == '-' || ch == '/' || (ch == '+' && i == 0)))
            return -1;
    }
    if (count < 7 || count > 15) return -1;
    digest(s, digits, count, stream);
    for (Py_ssize_t i = 0, j = 0; i < len; i++) {
        if (IS_DIGIT(v[i])) {
            out[i] = j < keep ? digits[j] : '0' + stream[j] % 10;
            j++;
        } else {
            out[i] = v[i];
        }
    }
    return len;
}

typedef Py_ssize_t (*Masker)(const Start *, const uint8_t *, Py_ssize_t, uint8_t *, long);

static PyObject *mask_column(PyObject *args, const char *label, Masker mask) {
    Py_buffer key;
    PyObject *values;
    long option = 0;
    Start s;
    Column c;
    if (!PyArg_ParseTuple(args, "y*O|l", &key, &values, &option)) return NULL;
    int failed = start_init(&s, key.buf, key.len, label);
    PyBuffer_Release(&key);
    if (failed || column_read(&c, values) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < c.n; i++) {
        if (c.len[i] >= 0) c.len[i] = mask(&s, c.in + i * SLOT, c.len[i], c.out + i * SLOT, option);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = column_result(&c);
    column_free(&c);
    return result;
}

static PyObject *fm_hash(PyObject *self, PyObject *args) { return mask_column(args, "hash", mask_hash); }
static PyObject *fm_email(PyObject *self, PyObject *args) { return mask_column(args, "email", mask_email); }

static PyObject *fm_phone(PyObject *self, PyObject *args) {
    PyObject *key, *values;
    long keep;
    if (!PyArg_ParseTuple(args, "OOl", &key, &values, &keep)) return NULL;
    if (keep < 0) return PyErr_Format(PyExc_ValueError, "keep_leading_digits must be >= 0");
    return mask_column(args, "phone", mask_phone);
}

/* algorithms.date_shift_days of each row key (bytes as they are; str, and int as str(int), in UTF-8): a
 * list of ints. */
static PyObject *fm_day_shifts(PyObject *self, PyObject *args) {
    Py_buffer key;
    PyObject *keys, *seq, *text = NULL, *result = NULL;
    long max_days;
    Start s;
    if (!PyArg_ParseTuple(args, "y*Ol", &key, &keys, &max_days)) return NULL;
    int failed = start_init(&s, key.buf, key.len, "date_shift");
    PyBuffer_Release(&key);
    if (failed) return NULL;
    if (max_days < 1 || max_days > (1L << 30)) return PyErr_Format(PyExc_ValueError, "max_days out of range");
    if ((seq = PySequence_Fast(keys, "the row keys must be a sequence")) == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), total = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t *ends = PyMem_Malloc((n + 1) * sizeof(Py_ssize_t));
    long *days = PyMem_Malloc((n + 1) * sizeof(long));
    uint8_t *blob = NULL;
    if (ends == NULL || days == NULL) goto nomemory;
    for (int pass = 0; pass < 2; pass++) { /* lengths, then the bytes into one buffer */
        total = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            const char *data;
            char decimal[24];
            Py_ssize_t len;
            int overflow;
            long long number;
            if (PyBytes_CheckExact(items[i])) {
                data = PyBytes_AS_STRING(items[i]);
                len = PyBytes_GET_SIZE(items[i]);
            } else if (PyUnicode_CheckExact(items[i])) {
                if ((data = PyUnicode_AsUTF8AndSize(items[i], &len)) == NULL) goto done;
            } else if (PyLong_CheckExact(items[i])) {
                number = PyLong_AsLongLongAndOverflow(items[i], &overflow);
                if (!overflow) {
                    len = snprintf(decimal, sizeof decimal, "%lld", number);
                    data = decimal;
                } else if ((text = PyObject_Str(items[i])) == NULL
                           || (data = PyUnicode_AsUTF8AndSize(text, &len)) == NULL) {
                    goto done;
                }
            } else {
                PyErr_SetString(PyExc_TypeError, "a row key is bytes, str or int");
                goto done;
            }
            if (pass) memcpy(blob + total, data, len);
            Py_CLEAR(text);
            total += len;
            ends[i] = total;
        }
        if (!pass && (blob = PyMem_Malloc(total ? total : 1)) == NULL) goto nomemory;
    }
    Py_BEGIN_ALLOW_THREADS
    uint64_t span = 2 * (uint64_t)max_days;
    for (Py_ssize_t i = 0, begin = 0; i < n; begin = ends[i], i++) {
        uint8_t out[64];
        uint64_t head = 0;
        digest(&s, blob + begin, ends[i] - begin, out);
        for (int b = 0; b < 8; b++) head = (head << 8) | out[b]; /* the first 8 bytes, big-endian */
        long number = (long)(head % span);
        days[i] = number < max_days ? number - max_days : number - max_days + 1;
    }
    Py_END_ALLOW_THREADS
    if ((result = PyList_New(n)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *day = PyLong_FromLong(days[i]);
        if (day == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, day);
    }
    goto done;
nomemory:
    PyErr_NoMemory();
done:
    Py_XDECREF(text);
    PyMem_Free(blob);
    PyMem_Free(days);
    PyMem_Free(ends);
    Py_DECREF(seq);
    return result;
}

/* hashlib.blake2b(label NUL message, key=key, digest_size=64).digest(): for the known-answer tests. */
static PyObject *fm_blake2b(PyObject *self, PyObject *args) {
    Py_buffer key, message;
    const char *label;
    Start s;
    uint8_t out[64];
    if (!PyArg_ParseTuple(args, "y*sy*", &key, &label, &message)) return NULL;
    int failed = strlen(label) >= sizeof s.prefix
        ? (PyErr_SetString(PyExc_ValueError, "label too long"), -1)
        : start_init(&s, key.buf, key.len, label);
    if (!failed) digest(&s, message.buf, message.len, out);
    PyBuffer_Release(&key);
    PyBuffer_Release(&message);
    return failed ? NULL : PyBytes_FromStringAndSize((const char *)out, 64);
}

static PyMethodDef methods[] = {
    {"hash_identifier", fm_hash, METH_VARARGS, "hash_identifier(key, values) -> [str | None]"},
    {"email", fm_email, METH_VARARGS, "email(key, values, keep_domain) -> [str | None]"},
    {"phone", fm_phone, METH_VARARGS, "phone(key, values, keep_leading_digits) -> [str | None]"},
    {"day_shifts", fm_day_shifts, METH_VARARGS, "day_shifts(key, row_keys, max_days) -> [int]"},
    {"blake2b", fm_blake2b, METH_VARARGS, "blake2b(key, label, message) -> 64-byte digest"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fastmask",
    .m_doc = "The masking algorithms over a whole column, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fastmask(void) { return PyModule_Create(&module); }
