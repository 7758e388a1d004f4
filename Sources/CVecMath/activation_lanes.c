// The vector activations at the widest width the CPU has: 16 lanes with AVX-512F, else 8 with
// AVX2 + FMA (act_lanes.h). Both give the same bits (the tests compare them), so which one ran
// never shows in a result; on an AVX-512 CPU the 8-lane code used half of each operation.
#include "act_lanes_dispatch.h"
#include "cpu_features.h"
#include <stdatomic.h>

static _Atomic int max_lanes = 16;

void attrib_activation_set_max_lanes(int lanes) { atomic_store(&max_lanes, lanes); }

int attrib_activation_lanes(void) {
    int cap = atomic_load(&max_lanes);
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cap >= 16 && cpu_has_avx512f()) return 16;
    if (cap >= 8 && cpu_has_avx2_fma()) return 8;
#endif
    (void)cap;
    return 1;
}

#if defined(__x86_64__) && defined(__GLIBC__)
#include "act_lanes.h"

int attrib_act_run(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
    switch (attrib_activation_lanes()) {
    case 16: act_run_v16(kind, x, dy, y, dydx, dx, n); return 1;
    case 8: act_run_v8(kind, x, dy, y, dydx, dx, n); return 1;
    default: return 0;
    }
}
#else
int attrib_act_run(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
    (void)kind; (void)x; (void)dy; (void)y; (void)dydx; (void)dx; (void)n;
    return 0;
}
#endif
