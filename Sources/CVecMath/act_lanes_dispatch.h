// attrib_act_run: an activation over n Float32 elements with the vector code (activation_lanes.c).
#ifndef ATTRIB_ACT_LANES_DISPATCH_H
#define ATTRIB_ACT_LANES_DISPATCH_H
#include <stddef.h>

#define ATTRIB_ACT_TANH 0
#define ATTRIB_ACT_SIGMOID 1
#define ATTRIB_ACT_GELU_TANH 2
#define ATTRIB_ACT_GELU_ERF 3
#define ATTRIB_ACT_SILU 4

// kind: one of ATTRIB_ACT_*. y = f, dydx = f′, dx = dy·f′, each skipped where NULL. Returns 0, having
// written nothing, where the CPU has neither AVX-512F nor AVX2 + FMA (or the tests capped the
// width to 1): the caller's scalar code runs.
int attrib_act_run(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n);
#endif
