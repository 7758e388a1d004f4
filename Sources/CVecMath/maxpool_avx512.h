// pool.c's AVX-512 kernels for 2x2 max pooling (maxpool_avx512.c). Each returns 0, with
// nothing written, where the CPU lacks AVX-512F or the plane's width has no 16-window
// layout there; the AVX2 kernel then runs.
#ifndef ATTRIB_MAXPOOL_AVX512_H
#define ATTRIB_MAXPOOL_AVX512_H
#include <stddef.h>
#include <stdint.h>
int attrib_maxpool2x2_forward_avx512(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w);
int attrib_maxpool2x2_backward_avx512(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w);
#endif
