/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>

#include "context-format.h"
#include "context-java.h"

/* Stream constants from java.io.ObjectStreamConstants. */
#define STREAM_MAGIC 0xACED
#define STREAM_VERSION 5
#define TC_NULL 0x70
#define TC_REFERENCE 0x71
#define TC_CLASSDESC 0x72
#define TC_OBJECT 0x73
#define TC_STRING 0x74
#define TC_ARRAY 0x75
#define TC_CLASS 0x76
#define TC_BLOCKDATA 0x77
#define TC_ENDBLOCKDATA 0x78
#define TC_RESET 0x79
#define TC_BLOCKDATALONG 0x7A
#define TC_EXCEPTION 0x7B
#define TC_LONGSTRING 0x7C
#define TC_PROXYCLASSDESC 0x7D
#define TC_ENUM 0x7E
#define BASE_WIRE_HANDLE 0x7E0000
#define SC_WRITE_METHOD 0x01
#define SC_SERIALIZABLE 0x02

/* Class descriptors as the JDK writes them; each serialVersionUID checked with serialver(1) of OpenJDK 17.
 * The boxes extend java.lang.Number (no fields) except Boolean and Character, which extend Object. */
#define HASH_MAP_CLASS "java.util.HashMap"
#define HASH_MAP_SUID INT64_C(362498820763181265)
#define NUMBER_CLASS "java.lang.Number"
#define NUMBER_SUID INT64_C(-8742448824652078965)

typedef struct BoxClass {
        JavaType type;
        int64_t suid;
        char field;          /* type code of its one field, "value" */
        bool number;         /* extends java.lang.Number */
} BoxClass;

static const BoxClass box_classes[] = {
        { JAVA_TYPE_INTEGER,   INT64_C(1360826667806852920),  'I', true  },
        { JAVA_TYPE_LONG,      INT64_C(4290774380558885855),  'J', true  },
        { JAVA_TYPE_SHORT,     INT64_C(7515723908773894738),  'S', true  },
        { JAVA_TYPE_BYTE,      INT64_C(-7183698231559129828), 'B', true  },
        { JAVA_TYPE_DOUBLE,    INT64_C(-9172774392245257468), 'D', true  },
        { JAVA_TYPE_FLOAT,     INT64_C(-2671257302660747028), 'F', true  },
        { JAVA_TYPE_BOOLEAN,   INT64_C(-3665804199014368530), 'Z', false },
        { JAVA_TYPE_CHARACTER, INT64_C(3786198910865385080),  'C', false },
};

static const BoxClass *box_class_of(JavaType t) {
        for (size_t i = 0; i < ELEMENTSOF(box_classes); i++)
                if (box_classes[i].type == t)
                        return box_classes + i;
        return NULL;
}

/* ---- modified UTF-8 (java.io.DataInput) ---- */

/* Java writes strings as UTF-16 code units, each encoded in 1 to 3 bytes, U+0000 as C0 80 and a supplementary
 * character as its two surrogates (3 bytes each). Converts that to standard UTF-8, which is never longer.
 * Unpaired surrogates have no UTF-8 form and are refused. */
static int mutf8_to_utf8(const uint8_t *s, size_t n, char **ret, size_t *ret_len) {
        _cleanup_free_ char *out = NULL;
        uint32_t high = 0;
        size_t o = 0;

        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < n;) {
                uint32_t u;

                if (s[i] < 0x80 && s[i] != 0)
                        u = s[i++];
                else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
                        u = ((uint32_t) (s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
                        i += 2;
                } else if ((s[i] & 0xF0) == 0xE0 && i + 2 < n && (s[i + 1] & 0xC0) == 0x80 &&
                           (s[i + 2] & 0xC0) == 0x80) {
                        u = ((uint32_t) (s[i] & 0x0F) << 12) | ((uint32_t) (s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
                        i += 3;
                } else
                        return -EBADMSG;

                if (high != 0) {
                        if (u < 0xDC00 || u > 0xDFFF)
                                return -EBADMSG;
                        u = 0x10000 + ((high - 0xD800) << 10) + (u - 0xDC00);
                        high = 0;
                } else if (u >= 0xD800 && u <= 0xDBFF) {
                        high = u;
                        continue;
                } else if (u >= 0xDC00 && u <= 0xDFFF)
                        return -EBADMSG;

                if (u < 0x80)
                        out[o++] = (char) u;
                else if (u < 0x800) {
                        out[o++] = (char) (0xC0 | (u >> 6));
                        out[o++] = (char) (0x80 | (u & 0x3F));
                } else if (u < 0x10000) {
                        out[o++] = (char) (0xE0 | (u >> 12));
                        out[o++] = (char) (0x80 | ((u >> 6) & 0x3F));
                        out[o++] = (char) (0x80 | (u & 0x3F));
                } else {
                        out[o++] = (char) (0xF0 | (u >> 18));
                        out[o++] = (char) (0x80 | ((u >> 12) & 0x3F));
                        out[o++] = (char) (0x80 | ((u >> 6) & 0x3F));
                        out[o++] = (char) (0x80 | (u & 0x3F));
                }
        }
        if (high != 0)
                return -EBADMSG;

        out[o] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}

/* The next code point of strict UTF-8, or -EILSEQ. */
static int utf8_next(const uint8_t *s, size_t n, size_t *i, uint32_t *ret) {
        static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        size_t len;
        uint32_t u;

        if (s[*i] < 0x80)
                len = 1, u = s[*i];
        else if ((s[*i] & 0xE0) == 0xC0)
                len = 2, u = s[*i] & 0x1F;
        else if ((s[*i] & 0xF0) == 0xE0)
                len = 3, u = s[*i] & 0x0F;
        else if ((s[*i] & 0xF8) == 0xF0)
                len = 4, u = s[*i] & 0x07;
        else
                return -EILSEQ;
        if (*i + len > n)
                return -EILSEQ;
        for (size_t k = 1; k < len; k++) {
                if ((s[*i + k] & 0xC0) != 0x80)
                        return -EILSEQ;
                u = (u << 6) | (s[*i + k] & 0x3F);
        }
        if (u < min[len] || u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF))
                return -EILSEQ;
        *i += len;
        *ret = u;
        return 0;
}

/* ---- reading ---- */

typedef enum HandleKind {
        HANDLE_CLASS_DESC,
        HANDLE_STRING,
        HANDLE_VALUE,
        HANDLE_MAP,
} HandleKind;

typedef struct ClassDesc {
        bool hash_map;       /* else a box, or java.lang.Number when box is NULL */
        const BoxClass *box;
} ClassDesc;

typedef struct Handle {
        HandleKind kind;
        ClassDesc desc;      /* HANDLE_CLASS_DESC */
        bool complete;       /* HANDLE_CLASS_DESC: read to its end, so a reference to it is no cycle */
        json_object *value;  /* HANDLE_STRING, HANDLE_VALUE; NULL for a value not yet read */
        JavaType type;
} Handle;

typedef struct Reader {
        const uint8_t *data;
        size_t size, pos;
        Handle *handles;
        size_t n_handles, n_allocated;
        char **ret_error;
} Reader;

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static void reader_done(Reader *r) {
        for (size_t i = 0; i < r->n_handles; i++)
                json_object_put(r->handles[i].value);
        free(r->handles);
}

static int truncated(Reader *r) {
        return context_error(r->ret_error, -EBADMSG, "Java serialized context is truncated at byte %zu.", r->pos);
}

static int read_bytes(Reader *r, size_t n, const uint8_t **ret) {
        if (r->size - r->pos < n)
                return truncated(r);
        *ret = r->data + r->pos;
        r->pos += n;
        return 0;
}

static int read_u8(Reader *r, uint8_t *ret) {
        const uint8_t *p = NULL;
        int k = read_bytes(r, 1, &p);

        if (k < 0)
                return k;
        *ret = p[0];
        return 0;
}

static int read_be(Reader *r, size_t n, uint64_t *ret) {
        const uint8_t *p = NULL;
        uint64_t v = 0;
        int k = read_bytes(r, n, &p);

        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++)
                v = (v << 8) | p[i];
        *ret = v;
        return 0;
}

/* A new handle; every element that gets one in the JDK's ObjectOutputStream gets one here, in the same order,
 * so TC_REFERENCE numbers match. Each handle is backed by at least one byte of input. */
static int add_handle(Reader *r, HandleKind kind, size_t *ret_index) {
        if (r->n_handles == r->n_allocated) {
                size_t n = MAX(r->n_allocated * 2, (size_t) 16);
                Handle *h = reallocarray(r->handles, n, sizeof(Handle));

                if (!h)
                        return -ENOMEM;
                r->handles = h;
                r->n_allocated = n;
        }
        r->handles[r->n_handles] = (Handle) { .kind = kind };
        *ret_index = r->n_handles++;
        return 0;
}

/* The handle after TC_REFERENCE; only handles assigned before can be referred to. */
static int read_handle(Reader *r, Handle **ret) {
        uint64_t h;
        int k;

        k = read_be(r, 4, &h);
        if (k < 0)
                return k;
        if (h < BASE_WIRE_HANDLE || h - BASE_WIRE_HANDLE >= r->n_handles)
                return context_error(r->ret_error, -EBADMSG,
                                     "Java serialized context refers to an unknown handle 0x%" PRIx64 ".", h);
        *ret = r->handles + (h - BASE_WIRE_HANDLE);
        return 0;
}

static int wrong_kind(Reader *r) {
        return context_error(r->ret_error, -EBADMSG,
                             "Java serialized context refers to a handle of the wrong kind at byte %zu.", r->pos);
}

/* The string body after TC_STRING (2-byte length) or TC_LONGSTRING (8-byte length). */
static int read_utf(Reader *r, size_t length_bytes, char **ret, size_t *ret_len) {
        const uint8_t *p = NULL;
        uint64_t n;
        int k;

        k = read_be(r, length_bytes, &n);
        if (k < 0)
                return k;
        if (n > r->size - r->pos)
                return truncated(r);
        k = read_bytes(r, (size_t) n, &p);
        if (k < 0)
                return k;
        k = mutf8_to_utf8(p, (size_t) n, ret, ret_len);
        if (k == -EBADMSG)
                return context_error(r->ret_error, k, "Java serialized context has a malformed string at byte %zu.",
                                     r->pos - (size_t) n);
        return k;
}

static int read_class_desc(Reader *r, unsigned depth, ClassDesc *ret);

/* After TC_CLASSDESC: className, serialVersionUID, flags, fields, classAnnotation, superClassDesc. Only the
 * classes a context may hold are accepted, each exactly as the JDK describes it. */
static int read_new_class_desc(Reader *r, unsigned depth, ClassDesc *ret) {
        _cleanup_free_ char *name = NULL, *field = NULL;
        ClassDesc desc = {}, super = {};
        bool has_super = false;
        uint64_t suid, n_fields, code, end, tag;
        size_t len, index;
        uint8_t flags;
        int k;

        k = add_handle(r, HANDLE_CLASS_DESC, &index);
        if (k < 0)
                return k;
        k = read_utf(r, 2, &name, &len);
        if (k < 0)
                return k;

        if (streq(name, HASH_MAP_CLASS))
                desc.hash_map = true;
        else if (!streq(name, NUMBER_CLASS)) {
                JavaType t = java_type_from_class(name);

                desc.box = box_class_of(t);
                if (!desc.box)
                        return context_error(r->ret_error, -EPROTONOSUPPORT,
                                             "Java serialized context holds a %s, which batchd cannot read (only "
                                             "String, Integer, Long, Short, Byte, Double, Float, Boolean and "
                                             "Character values in a java.util.HashMap).", name);
        }

        k = read_be(r, 8, &suid);
        if (k < 0)
                return k;
        k = read_u8(r, &flags);
        if (k < 0)
                return k;
        k = read_be(r, 2, &n_fields);
        if (k < 0)
                return k;

        if ((int64_t) suid != (desc.hash_map ? HASH_MAP_SUID : desc.box ? desc.box->suid : NUMBER_SUID) ||
            flags != (desc.hash_map ? SC_SERIALIZABLE | SC_WRITE_METHOD : SC_SERIALIZABLE) ||
            n_fields != (desc.hash_map ? 2u : desc.box ? 1u : 0u))
                return context_error(r->ret_error, -EBADMSG,
                                     "Java serialized context describes %s unlike the JDK does "
                                     "(serialVersionUID, flags or fields).", name);

        /* Fields come sorted by name, primitives first: HashMap has float loadFactor and int threshold. */
        for (uint64_t i = 0; i < n_fields; i++) {
                const char *want_name = desc.hash_map ? (i == 0 ? "loadFactor" : "threshold") : "value";
                char want_code = desc.hash_map ? (i == 0 ? 'F' : 'I') : desc.box->field;

                k = read_be(r, 1, &code);
                if (k < 0)
                        return k;
                field = mfree(field);
                k = read_utf(r, 2, &field, &len);
                if (k < 0)
                        return k;
                if (code != (uint64_t) want_code || !streq(field, want_name))
                        return context_error(r->ret_error, -EBADMSG,
                                             "Java serialized context describes %s with an unexpected field.", name);
        }

        /* ObjectOutputStream.annotateClass() writes nothing: the annotation is just its end marker. */
        k = read_be(r, 1, &end);
        if (k < 0)
                return k;
        if (end != TC_ENDBLOCKDATA)
                return context_error(r->ret_error, -EBADMSG,
                                     "Java serialized context has annotations on class %s.", name);

        k = read_be(r, 1, &tag);
        if (k < 0)
                return k;
        if (tag != TC_NULL) {
                r->pos--;
                k = read_class_desc(r, depth + 1, &super);
                if (k < 0)
                        return k;
                has_super = true;
        }
        if (desc.box && desc.box->number ? !has_super || super.hash_map || super.box : has_super)
                return context_error(r->ret_error, -EBADMSG,
                                     "Java serialized context gives %s an unexpected superclass.", name);

        r->handles[index].desc = desc;
        r->handles[index].complete = true;
        *ret = desc;
        return 0;
}

static int read_class_desc(Reader *r, unsigned depth, ClassDesc *ret) {
        Handle *h;
        uint8_t tag;
        int k;

        /* A valid chain is at most Long -> Number; anything deeper is hostile. */
        if (depth > 4)
                return context_error(r->ret_error, -EBADMSG, "Java serialized context nests class descriptors too deeply.");

        k = read_u8(r, &tag);
        if (k < 0)
                return k;
        switch (tag) {
        case TC_CLASSDESC:
                return read_new_class_desc(r, depth, ret);
        case TC_REFERENCE:
                k = read_handle(r, &h);
                if (k < 0)
                        return k;
                if (h->kind != HANDLE_CLASS_DESC)
                        return wrong_kind(r);
                if (!h->complete)
                        return context_error(r->ret_error, -EBADMSG,
                                             "Java serialized context has a class descriptor that is its own superclass.");
                *ret = h->desc;
                return 0;
        case TC_PROXYCLASSDESC:
                return context_error(r->ret_error, -EPROTONOSUPPORT,
                                     "Java serialized context holds a dynamic proxy, which batchd cannot read.");
        default:
                return context_error(r->ret_error, -EBADMSG,
                                     "Java serialized context has 0x%02x where a class descriptor belongs.", tag);
        }
}

static int read_box(Reader *r, const BoxClass *box, json_object **ret) {
        uint64_t v;
        int k;

        switch (box->field) {
        case 'Z':
        case 'B':
                k = read_be(r, 1, &v);
                break;
        case 'S':
        case 'C':
                k = read_be(r, 2, &v);
                break;
        case 'I':
        case 'F':
                k = read_be(r, 4, &v);
                break;
        default:
                k = read_be(r, 8, &v);
        }
        if (k < 0)
                return k;

        switch (box->field) {
        case 'Z':
                *ret = json_object_new_boolean(v != 0);
                break;
        case 'B':
                *ret = json_object_new_int64((int8_t) v);
                break;
        case 'S':
                *ret = json_object_new_int64((int16_t) v);
                break;
        case 'I':
                *ret = json_object_new_int64((int32_t) v);
                break;
        case 'J':
                *ret = json_object_new_int64((int64_t) v);
                break;
        case 'C': {
                char buf[4];
                size_t n;

                if (v >= 0xD800 && v <= 0xDFFF)
                        return context_error(r->ret_error, -EBADMSG,
                                             "Java serialized context has a Character that is half a surrogate pair.");
                if (v < 0x80)
                        buf[0] = (char) v, n = 1;
                else if (v < 0x800)
                        buf[0] = (char) (0xC0 | (v >> 6)), buf[1] = (char) (0x80 | (v & 0x3F)), n = 2;
                else
                        buf[0] = (char) (0xE0 | (v >> 12)), buf[1] = (char) (0x80 | ((v >> 6) & 0x3F)),
                        buf[2] = (char) (0x80 | (v & 0x3F)), n = 3;
                *ret = json_object_new_string_len(buf, (int) n);
                break;
        }
        default: {
                double d;

                if (box->field == 'F') {
                        uint32_t bits = (uint32_t) v;
                        float f;

                        memcpy(&f, &bits, sizeof(f));
                        d = f;
                } else
                        memcpy(&d, &v, sizeof(d));

                /* JSON has no NaN or infinities; Jackson writes them as these strings too. */
                if (isnan(d))
                        *ret = json_object_new_string("NaN");
                else if (isinf(d))
                        *ret = json_object_new_string(d > 0 ? "Infinity" : "-Infinity");
                else
                        *ret = context_json_new_double(d, box->field == 'F');
        }
        }
        return *ret ? 0 : -ENOMEM;
}

static int read_string_body(Reader *r, size_t length_bytes, json_object **ret) {
        _cleanup_free_ char *s = NULL;
        size_t len, index;
        int k;

        k = add_handle(r, HANDLE_STRING, &index);
        if (k < 0)
                return k;
        k = read_utf(r, length_bytes, &s, &len);
        if (k < 0)
                return k;
        if (len > INT_MAX)
                return context_error(r->ret_error, -E2BIG, "Java serialized context has a string too long for batchd.");
        r->handles[index].value = json_object_new_string_len(s, (int) len);
        if (!r->handles[index].value)
                return -ENOMEM;
        r->handles[index].type = JAVA_TYPE_STRING;
        *ret = json_object_get(r->handles[index].value);
        return 0;
}

/* A key or value of the map: a new or back-referenced String, box or null. *ret gets a new reference. */
static int read_value(Reader *r, json_object **ret, JavaType *ret_type) {
        ClassDesc desc;
        Handle *h;
        size_t index;
        uint8_t tag;
        int k;

        k = read_u8(r, &tag);
        if (k < 0)
                return k;

        switch (tag) {
        case TC_NULL:
                *ret = NULL;
                *ret_type = JAVA_TYPE_NONE;
                return 0;

        case TC_STRING:
        case TC_LONGSTRING:
                *ret_type = JAVA_TYPE_STRING;
                return read_string_body(r, tag == TC_STRING ? 2 : 8, ret);

        case TC_REFERENCE:
                /* The same String or box object once more (Java writes each object only once). */
                k = read_handle(r, &h);
                if (k < 0)
                        return k;
                if (h->kind == HANDLE_MAP)
                        return context_error(r->ret_error, -EPROTONOSUPPORT,
                                             "Java serialized context holds a map inside itself, which batchd "
                                             "cannot read.");
                if (h->kind != HANDLE_STRING && h->kind != HANDLE_VALUE)
                        return wrong_kind(r);
                *ret = json_object_get(h->value);
                *ret_type = h->type;
                return 0;

        case TC_OBJECT:
                k = read_class_desc(r, 0, &desc);
                if (k < 0)
                        return k;
                if (!desc.box)
                        return context_error(r->ret_error, -EPROTONOSUPPORT,
                                             "Java serialized context holds a nested %s, which batchd cannot read.",
                                             desc.hash_map ? HASH_MAP_CLASS : NUMBER_CLASS);
                k = add_handle(r, HANDLE_VALUE, &index);
                if (k < 0)
                        return k;
                k = read_box(r, desc.box, &r->handles[index].value);
                if (k < 0)
                        return k;
                r->handles[index].type = desc.box->type;
                *ret = json_object_get(r->handles[index].value);
                *ret_type = desc.box->type;
                return 0;

        case TC_ENUM:
                return context_error(r->ret_error, -EPROTONOSUPPORT,
                                     "Java serialized context holds an enum constant, which batchd cannot read.");
        case TC_ARRAY:
                return context_error(r->ret_error, -EPROTONOSUPPORT,
                                     "Java serialized context holds an array, which batchd cannot read.");
        case TC_CLASS:
                return context_error(r->ret_error, -EPROTONOSUPPORT,
                                     "Java serialized context holds a java.lang.Class, which batchd cannot read.");
        default:
                return context_error(r->ret_error, -EBADMSG,
                                     "Java serialized context has 0x%02x at byte %zu where a value belongs.",
                                     tag, r->pos - 1);
        }
}

int context_java_read(const uint8_t *data, size_t size, ExecutionContext **ret, char **ret_error) {
        _cleanup_(execution_context_freep) ExecutionContext *c = NULL;
        _cleanup_(reader_done) Reader r = { .data = data, .size = size, .ret_error = ret_error };
        uint64_t magic, version, load_factor_bits, threshold, block, capacity, mappings, end;
        ClassDesc desc;
        float load_factor;
        size_t index;
        uint8_t tag;
        int k;

        assert(data || size == 0);
        assert(ret);

        k = read_be(&r, 2, &magic);
        if (k >= 0)
                k = read_be(&r, 2, &version);
        if (k < 0)
                return k;
        if (magic != STREAM_MAGIC || version != STREAM_VERSION)
                return context_error(ret_error, -EBADMSG, "Not a Java serialization stream (no ACED0005 header).");

        k = read_u8(&r, &tag);
        if (k < 0)
                return k;
        if (tag != TC_OBJECT)
                return context_error(ret_error, -EBADMSG, "Java serialized context is not an object (0x%02x).", tag);
        k = read_class_desc(&r, 0, &desc);
        if (k < 0)
                return k;
        if (!desc.hash_map)
                return context_error(ret_error, -EPROTONOSUPPORT,
                                     "Java serialized context is a %s, not a java.util.HashMap.",
                                     desc.box ? java_type_to_class(desc.box->type) : NUMBER_CLASS);
        k = add_handle(&r, HANDLE_MAP, &index);
        if (k < 0)
                return k;

        /* defaultWriteObject(): the fields, then HashMap.writeObject()'s block with capacity and size. */
        k = read_be(&r, 4, &load_factor_bits);
        if (k >= 0)
                k = read_be(&r, 4, &threshold);
        if (k >= 0)
                k = read_be(&r, 1, &block);
        if (k < 0)
                return k;
        memcpy(&load_factor, &(uint32_t) { (uint32_t) load_factor_bits }, sizeof(load_factor));
        if (!(load_factor > 0)) /* HashMap.readObject() refuses the same */
                return context_error(ret_error, -EBADMSG, "Java serialized context has an illegal HashMap load factor.");
        if (block != TC_BLOCKDATA)
                return context_error(ret_error, -EBADMSG, "Java serialized context lacks the HashMap's block data.");
        k = read_be(&r, 1, &block);
        if (k < 0)
                return k;
        if (block != 8)
                return context_error(ret_error, -EBADMSG, "Java serialized context has a HashMap block of %" PRIu64
                                     " bytes instead of 8.", block);
        k = read_be(&r, 4, &capacity);
        if (k >= 0)
                k = read_be(&r, 4, &mappings);
        if (k < 0)
                return k;
        if ((int32_t) mappings < 0)
                return context_error(ret_error, -EBADMSG, "Java serialized context has a negative HashMap size.");

        k = execution_context_new(&c);
        if (k < 0)
                return k;

        /* No allocation from the count: each entry needs bytes, so a lying count ends at truncation. */
        for (uint64_t i = 0; i < mappings; i++) {
                _cleanup_(json_object_putp) json_object *key = NULL, *value = NULL;
                JavaType key_type, type;
                const char *s;

                k = read_value(&r, &key, &key_type);
                if (k < 0)
                        return k;
                if (!key || key_type != JAVA_TYPE_STRING)
                        return context_error(ret_error, -EBADMSG,
                                             "Java serialized context has a key that is not a String.");
                s = json_object_get_string(key);
                if (strlen(s) != (size_t) json_object_get_string_len(key))
                        return context_error(ret_error, -EBADMSG,
                                             "Java serialized context has a key containing U+0000.");
                k = read_value(&r, &value, &type);
                if (k < 0)
                        return k;
                k = execution_context_put_typed(c, s, TAKE_PTR(value), type);
                if (k < 0)
                        return k;
        }

        k = read_be(&r, 1, &end);
        if (k < 0)
                return k;
        if (end != TC_ENDBLOCKDATA)
                return context_error(ret_error, -EBADMSG,
                                     "Java serialized context has more HashMap data than its %" PRIu64 " entries.",
                                     mappings);
        if (r.pos != size)
                return context_error(ret_error, -EBADMSG, "Java serialized context has %zu bytes after the HashMap.",
                                     size - r.pos);

        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- writing ---- */

typedef struct Writer {
        FILE *f;
        uint32_t next_handle;
        /* Handles of the class descriptors written so far (0: not yet), so later uses are TC_REFERENCEs. */
        uint32_t box_desc[_JAVA_TYPE_MAX];
        uint32_t number_desc;
} Writer;

static void put_be(Writer *w, uint64_t v, size_t n) {
        for (size_t i = n; i > 0; i--)
                fputc((int) ((v >> ((i - 1) * 8)) & 0xFF), w->f);
}

static uint32_t new_handle(Writer *w) {
        return BASE_WIRE_HANDLE + w->next_handle++;
}

/* UTF-8 to Java's modified UTF-8, with TC_STRING or, past 65535 bytes, TC_LONGSTRING. */
static int put_string(Writer *w, const char *s, size_t n) {
        const uint8_t *p = (const uint8_t *) s;
        size_t len = 0;
        int k;

        for (size_t i = 0; i < n;) {
                uint32_t u;

                k = utf8_next(p, n, &i, &u);
                if (k < 0)
                        return k;
                len += u == 0 ? 2 : u < 0x80 ? 1 : u < 0x800 ? 2 : u < 0x10000 ? 3 : 6;
        }

        if (len <= 0xFFFF) {
                fputc(TC_STRING, w->f);
                put_be(w, len, 2);
        } else {
                fputc(TC_LONGSTRING, w->f);
                put_be(w, len, 8);
        }
        (void) new_handle(w);

        for (size_t i = 0; i < n;) {
                uint32_t u;

                (void) utf8_next(p, n, &i, &u);
                if (u >= 0x10000) {
                        uint32_t hi = 0xD800 + ((u - 0x10000) >> 10), lo = 0xDC00 + ((u - 0x10000) & 0x3FF);

                        put_be(w, (0xE0 | (hi >> 12)) << 16 | (0x80 | ((hi >> 6) & 0x3F)) << 8 | (0x80 | (hi & 0x3F)), 3);
                        put_be(w, (0xE0 | (lo >> 12)) << 16 | (0x80 | ((lo >> 6) & 0x3F)) << 8 | (0x80 | (lo & 0x3F)), 3);
                } else if (u >= 0x800)
                        put_be(w, (0xE0 | (u >> 12)) << 16 | (0x80 | ((u >> 6) & 0x3F)) << 8 | (0x80 | (u & 0x3F)), 3);
                else if (u >= 0x80 || u == 0)
                        put_be(w, (0xC0 | (u >> 6)) << 8 | (0x80 | (u & 0x3F)), 2);
                else
                        fputc((int) u, w->f);
        }
        return 0;
}

/* A class descriptor's name as writeUTF() writes it (class names are ASCII). */
static void put_utf_ascii(Writer *w, const char *s) {
        put_be(w, strlen(s), 2);
        fputs(s, w->f);
}

static void put_number_desc(Writer *w) {
        if (w->number_desc != 0) {
                fputc(TC_REFERENCE, w->f);
                put_be(w, w->number_desc, 4);
                return;
        }
        fputc(TC_CLASSDESC, w->f);
        put_utf_ascii(w, NUMBER_CLASS);
        w->number_desc = new_handle(w);
        put_be(w, (uint64_t) NUMBER_SUID, 8);
        fputc(SC_SERIALIZABLE, w->f);
        put_be(w, 0, 2);
        fputc(TC_ENDBLOCKDATA, w->f);
        fputc(TC_NULL, w->f);
}

static void put_box(Writer *w, const BoxClass *box, json_object *v) {
        fputc(TC_OBJECT, w->f);
        if (w->box_desc[box->type] != 0) {
                fputc(TC_REFERENCE, w->f);
                put_be(w, w->box_desc[box->type], 4);
        } else {
                fputc(TC_CLASSDESC, w->f);
                put_utf_ascii(w, java_type_to_class(box->type));
                w->box_desc[box->type] = new_handle(w);
                put_be(w, (uint64_t) box->suid, 8);
                fputc(SC_SERIALIZABLE, w->f);
                put_be(w, 1, 2);
                fputc(box->field, w->f);
                put_utf_ascii(w, "value");
                fputc(TC_ENDBLOCKDATA, w->f);
                if (box->number)
                        put_number_desc(w);
                else
                        fputc(TC_NULL, w->f);
        }
        (void) new_handle(w);

        switch (box->field) {
        case 'Z':
                fputc(json_object_get_boolean(v) ? 1 : 0, w->f);
                break;
        case 'B':
                put_be(w, (uint64_t) json_object_get_int64(v), 1);
                break;
        case 'S':
                put_be(w, (uint64_t) json_object_get_int64(v), 2);
                break;
        case 'I':
                put_be(w, (uint64_t) json_object_get_int64(v), 4);
                break;
        case 'J':
                put_be(w, (uint64_t) json_object_get_int64(v), 8);
                break;
        case 'C': {
                size_t i = 0;
                uint32_t u = 0;

                (void) utf8_next((const uint8_t *) json_object_get_string(v),
                                 (size_t) json_object_get_string_len(v), &i, &u);
                put_be(w, u, 2);
                break;
        }
        default: {
                double d;

                if (json_object_is_type(v, json_type_string)) {
                        const char *s = json_object_get_string(v);

                        d = streq(s, "NaN") ? NAN : streq(s, "Infinity") ? INFINITY : -INFINITY;
                } else
                        d = json_object_get_double(v);

                if (box->field == 'F') {
                        float f = (float) d;
                        uint32_t bits;

                        /* Float.floatToIntBits(): one canonical NaN. */
                        if (isnan(f))
                                bits = 0x7fc00000;
                        else
                                memcpy(&bits, &f, sizeof(bits));
                        put_be(w, bits, 4);
                } else {
                        uint64_t bits;

                        if (isnan(d))
                                bits = UINT64_C(0x7ff8000000000000);
                        else
                                memcpy(&bits, &d, sizeof(bits));
                        put_be(w, bits, 8);
                }
        }
        }
}

/* String.hashCode() over the UTF-16 code units, then HashMap.hash()'s spreading. */
static uint32_t java_hash(const char *key) {
        const uint8_t *p = (const uint8_t *) key;
        size_t n = strlen(key);
        uint32_t h = 0;

        for (size_t i = 0; i < n;) {
                uint32_t u;

                if (utf8_next(p, n, &i, &u) < 0)
                        return 0; /* refused later by put_string() */
                if (u >= 0x10000) {
                        h = 31 * h + (0xD800 + ((u - 0x10000) >> 10));
                        h = 31 * h + (0xDC00 + ((u - 0x10000) & 0x3FF));
                } else
                        h = 31 * h + u;
        }
        return h ^ (h >> 16);
}

typedef struct Entry {
        const char *key;
        uint32_t bucket;
} Entry;

static int compare_entries(const void *a, const void *b) {
        const Entry *x = a, *y = b;

        if (x->bucket != y->bucket)
                return x->bucket < y->bucket ? -1 : 1;
        return strcmp(x->key, y->key);
}

int context_java_write(const ExecutionContext *c, uint8_t **ret, size_t *ret_size, char **ret_error) {
        _cleanup_free_ Entry *entries = NULL;
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        Writer w = {};
        uint32_t capacity = 16, threshold = 12;
        size_t n = 0, sz = 0;
        int k;

        assert(c);
        assert(ret);
        assert(ret_size);

        k = execution_context_keys(c, &keys);
        if (k < 0)
                return k;
        while (keys[n])
                n++;

        /* What new HashMap<>() reaches by n puts: a table of 16 on the first, doubled whenever the size
         * exceeds three quarters of it. An empty map has no table yet: threshold 0, capacity reported 16. */
        while (n > threshold && capacity < (UINT32_C(1) << 30))
                capacity *= 2, threshold *= 2;
        if (n == 0)
                threshold = 0;

        /* The map's iteration order: by bucket, then (keys inserted sorted) by key within one bucket. */
        entries = calloc(MAX(n, (size_t) 1), sizeof(Entry));
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                entries[i] = (Entry) { keys[i], java_hash(keys[i]) & (capacity - 1) };
        qsort(entries, n, sizeof(Entry), compare_entries);

        f = open_memstream(&buf, &sz);
        if (!f)
                return -ENOMEM;
        w.f = f;

        put_be(&w, STREAM_MAGIC, 2);
        put_be(&w, STREAM_VERSION, 2);
        fputc(TC_OBJECT, f);
        fputc(TC_CLASSDESC, f);
        put_utf_ascii(&w, HASH_MAP_CLASS);
        (void) new_handle(&w);
        put_be(&w, (uint64_t) HASH_MAP_SUID, 8);
        fputc(SC_SERIALIZABLE | SC_WRITE_METHOD, f);
        put_be(&w, 2, 2);
        fputc('F', f);
        put_utf_ascii(&w, "loadFactor");
        fputc('I', f);
        put_utf_ascii(&w, "threshold");
        fputc(TC_ENDBLOCKDATA, f);
        fputc(TC_NULL, f);
        (void) new_handle(&w);
        put_be(&w, 0x3F400000, 4); /* 0.75f */
        put_be(&w, threshold, 4);
        fputc(TC_BLOCKDATA, f);
        fputc(8, f);
        put_be(&w, capacity, 4);
        put_be(&w, n, 4);

        for (size_t i = 0; i < n; i++) {
                const char *key = entries[i].key;
                json_object *v = json_object_object_get(c->object, key);
                JavaType t;

                k = put_string(&w, key, strlen(key));
                if (k < 0)
                        return context_error(ret_error, -EINVAL, "Context key '%s' is not valid UTF-8.", key);

                if (!v) {
                        fputc(TC_NULL, f);
                        continue;
                }
                t = java_type_for_value(v, execution_context_get_java_type(c, key));
                if (t == JAVA_TYPE_NONE)
                        return context_error(ret_error, -EINVAL,
                                             "Context value of '%s' is a JSON %s, which a Java context "
                                             "(java.lang.String, Long, Double, Boolean, ...) cannot hold.",
                                             key, json_type_to_name(json_object_get_type(v)));
                if (t == JAVA_TYPE_STRING) {
                        k = put_string(&w, json_object_get_string(v), (size_t) json_object_get_string_len(v));
                        if (k < 0)
                                return context_error(ret_error, -EINVAL, "Context value of '%s' is not valid UTF-8.", key);
                } else
                        put_box(&w, box_class_of(t), v);
        }
        fputc(TC_ENDBLOCKDATA, f);

        k = fclose(TAKE_PTR(f));
        if (k != 0 || !buf)
                return -ENOMEM;

        *ret = (uint8_t *) TAKE_PTR(buf);
        *ret_size = sz;
        return 0;
}
