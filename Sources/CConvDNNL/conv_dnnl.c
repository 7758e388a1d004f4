// Float32 convolutions through oneDNN, for the CPU backend, on channels-last images.
//
// Why: the CPU backend ran a convolution as im2col + an OpenBLAS product (one per image for
// 1×1 kernels): ResNet-50's layers took about 210 ms forward and 204 ms for the input gradient
// per 4 images (AMD EPYC, AVX-512, 2 threads). oneDNN's JIT kernels take 141 and 139 ms on
// channels-last (NHWC) images. On NCHW images they reorder to their blocked layouts and back
// around every call, and that ate the gain (about 180 and 153 ms, the forward no faster in a
// sweep), so the graph keeps the values between convolutions channels-last instead
// (Graph+ChannelsLast.swift) and these calls take NHWC as it lies.
//
// How: a primitive per direction and geometry, made on first use and cached (oneDNN JIT-compiles
// each, which takes milliseconds). Images and their gradients are read and written in place
// (NHWC, no reorder); the weight, OIHW, is reordered into the primitive's layout by the caller,
// which keeps that copy for the layer's life (PreparedWeights). Each primitive takes its
// scratchpad from the calling thread's buffer (oneDNN's own scratchpad is shared by every
// thread unless the library was built for concurrency), so the CPU backend can run one call
// per worker thread, each on a share of the images and one OpenMP thread, as it runs one
// single-threaded OpenBLAS product per block: OpenMP's idle threads spin after each region and
// would take the cores from the loops that follow.
#include "conv_dnnl.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// libgomp's, which oneDNN is built against (Debian's libdnnl: DNNL_CPU_RUNTIME OMP).
extern void omp_set_num_threads(int);

enum { kMaxEntries = 1024 };

struct attrib_dnnl_conv {
    int key[16];                        // backward, has_bias, n, c, h, w, oc, kh, kw, sh, sw, ph, pw, oh, ow, groups
    dnnl_primitive_t conv;
    dnnl_primitive_t w_reorder;         // OIHW → its weight layout; NULL where it reads OIHW
    dnnl_memory_desc_t in_md, out_md, user_w, user_b, w_md, scratch_md;   // in, out: NHWC
    size_t w_bytes, scratch_bytes;
    struct attrib_dnnl_conv *next;
};

static dnnl_engine_t engine;
static int engine_ok;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct attrib_dnnl_conv *cache;
static int cache_count;

static void make_engine(void) { engine_ok = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success; }

int attrib_dnnl_available(void) {
    pthread_once(&engine_once, make_engine);
    return engine_ok;
}

static char version_text[48];
static pthread_once_t version_once = PTHREAD_ONCE_INIT;

static void make_version(void) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(version_text, sizeof version_text, "%d.%d.%d", v->major, v->minor, v->patch);
}

const char *attrib_dnnl_version(void) {
    pthread_once(&version_once, make_version);
    return version_text;
}

// ---- per-thread stream and scratchpad -------------------------------------------------------

typedef struct {
    dnnl_stream_t stream;
    void *scratch;                      // the primitives' scratchpad, grown to the largest asked for
    size_t cap;
} thread_state;

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

static void free_state(void *p) {
    thread_state *s = p;
    if (s->stream) dnnl_stream_destroy(s->stream);
    free(s->scratch);
    free(s);
}

static void make_state_key(void) { pthread_key_create(&state_key, free_state); }

static thread_state *state(void) {
    pthread_once(&state_once, make_state_key);
    thread_state *s = pthread_getspecific(state_key);
    if (s) return s;
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (dnnl_stream_create(&s->stream, engine, dnnl_stream_default_flags) != dnnl_success) { free(s); return NULL; }
    pthread_setspecific(state_key, s);
    return s;
}

// The thread's scratchpad, at least `bytes` long (64-byte aligned); NULL where it cannot grow.
static void *scratchpad(thread_state *s, size_t bytes) {
    if (bytes == 0) return NULL;
    if (s->cap >= bytes) return s->scratch;
    free(s->scratch);
    s->scratch = NULL; s->cap = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    s->scratch = p; s->cap = bytes;
    return p;
}

// ---- making primitives ---------------------------------------------------------------------

static dnnl_primitive_attr_t user_scratchpad(void) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(a);
        return NULL;
    }
    return a;
}

// A reorder from `from` to `to`, NULL with *ok = 1 where the two are the same layout; *ok = 0
// where it cannot be made or would need a scratchpad (reorders here run without one).
static dnnl_primitive_t reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int *ok) {
    *ok = 1;
    if (dnnl_memory_desc_equal(from, to)) return NULL;
    *ok = 0;
    dnnl_primitive_attr_t a = user_scratchpad();
    if (!a) return NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, a);
    dnnl_primitive_attr_destroy(a);
    if (st != dnnl_success) return NULL;
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    dnnl_primitive_t p = NULL;
    if ((!sp || dnnl_memory_desc_get_size(sp) == 0) && dnnl_primitive_create(&p, pd) == dnnl_success) *ok = 1;
    dnnl_primitive_desc_destroy(pd);
    return *ok ? p : NULL;
}

static void destroy(struct attrib_dnnl_conv *e) {
    if (e->conv) dnnl_primitive_destroy(e->conv);
    if (e->w_reorder) dnnl_primitive_destroy(e->w_reorder);
    free(e);
}

static struct attrib_dnnl_conv *make(const int key[16]) {
    const int backward = key[0], has_bias = key[1];
    const dnnl_dim_t n = key[2], c = key[3], h = key[4], w = key[5], oc = key[6], kh = key[7], kw = key[8];
    const dnnl_dim_t oh = key[13], ow = key[14], g = key[15];
    // A grouped convolution's weight is [g, oc/g, c/g, kh, kw] to oneDNN (GOIHW): the same bytes
    // as the [oc, c/g, kh, kw] it is stored as.
    dnnl_dims_t src_dims = {n, c, h, w}, b_dims = {oc}, dst_dims = {n, oc, oh, ow};
    dnnl_dims_t w_dims = {oc, c, kh, kw}, gw_dims = {g, oc / g, c / g, kh, kw};
    const int w_rank = g > 1 ? 5 : 4;
    dnnl_dim_t *wd = g > 1 ? gw_dims : w_dims;
    dnnl_dims_t strides = {key[9], key[10]}, pad = {key[11], key[12]};
    dnnl_memory_desc_t src, dst, w_oihw, b_x, w_any;
    if (dnnl_memory_desc_init_by_tag(&src, 4, src_dims, dnnl_f32, dnnl_nhwc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst, 4, dst_dims, dnnl_f32, dnnl_nhwc) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&w_oihw, w_rank, wd, dnnl_f32, g > 1 ? dnnl_goihw : dnnl_oihw) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b_x, 1, b_dims, dnnl_f32, dnnl_x) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&w_any, w_rank, wd, dnnl_f32, dnnl_format_tag_any) != dnnl_success) return NULL;

    struct attrib_dnnl_conv *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    memcpy(e->key, key, sizeof e->key);
    dnnl_primitive_attr_t attr = user_scratchpad();
    if (!attr) { free(e); return NULL; }
    dnnl_primitive_desc_t pd = NULL, hint = NULL;
    dnnl_convolution_desc_t d;
    int made = 0;
    if (!backward) {
        made = dnnl_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct, &src, &w_any,
                                                  has_bias ? &b_x : NULL, &dst, strides, pad, pad) == dnnl_success &&
               dnnl_primitive_desc_create(&pd, &d, attr, engine, NULL) == dnnl_success;
    } else {
        // The input gradient's primitive is made against the forward's (oneDNN's rule): a hint.
        dnnl_convolution_desc_t fd;
        made = dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src, &w_any,
                                                  NULL, &dst, strides, pad, pad) == dnnl_success &&
               dnnl_primitive_desc_create(&hint, &fd, NULL, engine, NULL) == dnnl_success &&
               dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &src, &w_any, &dst,
                                                        strides, pad, pad) == dnnl_success &&
               dnnl_primitive_desc_create(&pd, &d, attr, engine, hint) == dnnl_success;
    }
    dnnl_primitive_attr_destroy(attr);
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (!made) { if (pd) dnnl_primitive_desc_destroy(pd); free(e); return NULL; }

    // Input and output are src/dst forward, diff_dst/diff_src backward: NHWC as asked.
    const dnnl_memory_desc_t *wm = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->in_md = backward ? dst : src;
    e->out_md = backward ? src : dst;
    e->user_w = w_oihw; e->user_b = b_x; e->w_md = *wm;
    if (sp) e->scratch_md = *sp; else memset(&e->scratch_md, 0, sizeof e->scratch_md);
    e->scratch_bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    int ok;
    e->w_reorder = reorder(&w_oihw, wm, &ok);
    e->w_bytes = e->w_reorder ? dnnl_memory_desc_get_size(wm) : 0;
    int created = dnnl_primitive_create(&e->conv, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    if (!created || !ok) { destroy(e); return NULL; }
    return e;
}

const attrib_dnnl_conv *attrib_dnnl_conv_get(int backward, int has_bias, int n, int c, int h, int w, int oc,
                                             int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow, int groups) {
    if (!attrib_dnnl_available() || groups < 1 || c % groups != 0 || oc % groups != 0) return NULL;
    const int key[16] = {backward != 0, backward ? 0 : has_bias != 0, n, c, h, w, oc, kh, kw, sh, sw, ph, pw, oh, ow, groups};
    pthread_mutex_lock(&cache_lock);
    struct attrib_dnnl_conv *e = cache;
    while (e && memcmp(e->key, key, sizeof key) != 0) e = e->next;
    // Made under the lock: two threads asking for the same new geometry make it once. Full
    // (more geometries than any model has; entries are never freed, callers hold them): none.
    if (!e && cache_count < kMaxEntries && (e = make(key)) != NULL) {
        e->next = cache; cache = e; cache_count++;
    }
    pthread_mutex_unlock(&cache_lock);
    return e;
}

// ---- running -------------------------------------------------------------------------------

static int memory(dnnl_memory_t *m, const dnnl_memory_desc_t *md, const void *p) {
    return dnnl_memory_create(m, md, engine, (void *)p) == dnnl_success;
}

// Runs primitive p with `args`, then waits for the stream.
static int execute(thread_state *s, dnnl_primitive_t p, int count, const dnnl_exec_arg_t *args) {
    return dnnl_primitive_execute(p, s->stream, count, args) == dnnl_success && dnnl_stream_wait(s->stream) == dnnl_success;
}

static int run_reorder(thread_state *s, dnnl_primitive_t p, dnnl_memory_t from, dnnl_memory_t to) {
    const dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return execute(s, p, 2, args);
}

size_t attrib_dnnl_conv_weight_bytes(const attrib_dnnl_conv *e) { return e->w_bytes; }

int attrib_dnnl_conv_reorder_weights(const attrib_dnnl_conv *e, const float *w, void *dst) {
    if (!e->w_reorder) return 0;
    thread_state *s = state();
    if (!s) return 0;
    dnnl_memory_t from = NULL, to = NULL;
    int ok = memory(&from, &e->user_w, w) && memory(&to, &e->w_md, dst) && run_reorder(s, e->w_reorder, from, to);
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    return ok;
}

int attrib_dnnl_conv_same_weights(const attrib_dnnl_conv *a, const attrib_dnnl_conv *b) {
    return dnnl_memory_desc_equal(&a->w_md, &b->w_md);
}

int attrib_dnnl_conv_run(const attrib_dnnl_conv *e, const float *in, const void *weights, const float *bias,
                         float *out, int threads) {
    thread_state *s = state();
    if (!s) return 0;
    omp_set_num_threads(threads < 1 ? 1 : threads);
    void *sp_p = scratchpad(s, e->scratch_bytes);
    if (e->scratch_bytes && !sp_p) return 0;
    const int backward = e->key[0], has_bias = e->key[1];
    dnnl_memory_t m_in = NULL, m_out = NULL, m_w = NULL, m_b = NULL, m_sp = NULL;
    int ok = memory(&m_in, &e->in_md, in) && memory(&m_out, &e->out_md, out) && memory(&m_w, &e->w_md, weights) &&
             (!has_bias || memory(&m_b, &e->user_b, bias)) && (!e->scratch_bytes || memory(&m_sp, &e->scratch_md, sp_p));
    if (ok) {
        dnnl_exec_arg_t args[5];
        int k = 0;
        if (!backward) {
            args[k++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, m_in};
            args[k++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, m_w};
            if (has_bias) args[k++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m_b};
            args[k++] = (dnnl_exec_arg_t){DNNL_ARG_DST, m_out};
        } else {
            args[k++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, m_in};
            args[k++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, m_w};
            args[k++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, m_out};
        }
        if (m_sp) args[k++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m_sp};
        ok = execute(s, e->conv, k, args);
    }
    dnnl_memory_t all[5] = {m_in, m_out, m_w, m_b, m_sp};
    for (int i = 0; i < 5; i++) if (all[i]) dnnl_memory_destroy(all[i]);
    return ok;
}
