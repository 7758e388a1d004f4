#ifndef ATTRIB_CONV_DNNL_H
#define ATTRIB_CONV_DNNL_H
// Float32 convolutions on the CPU through oneDNN (Debian's libdnnl): its JIT kernels for the
// host's vector ISA, on channels-last (NHWC) images. The CPU backend offers them as
// Device.conv2dChannelsLast and its input gradient; conv_dnnl.c says why and how.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One convolution's primitive for one direction and geometry (opaque; cached, never freed).
typedef struct attrib_dnnl_conv attrib_dnnl_conv;

/// 1 where oneDNN's CPU engine could be created, else 0.
int attrib_dnnl_available(void);

/// The linked oneDNN's version, "major.minor.patch" (for `attrib devices`).
const char *attrib_dnnl_version(void);

/// The primitive for a convolution of n images [n, h, w, c] (NHWC) with weight [oc, c/groups, kh, kw]
/// (OIHW; groups of c/groups input and oc/groups output channels, 1 for an ordinary
/// convolution), stride (sh, sw), zero padding (ph, pw), output [n, oh, ow, oc]: the forward (with a
/// bias [oc] where has_bias) or, where backward is 1, the input gradient dx from dy. Made once
/// per geometry and kept. NULL where oneDNN has no implementation or the cache is full; the
/// caller then runs its own convolution.
const attrib_dnnl_conv *attrib_dnnl_conv_get(int backward, int has_bias, int n, int c, int h, int w, int oc,
                                             int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow, int groups);

/// Bytes of the weight in the layout the primitive reads it; 0 where that is OIHW as given.
size_t attrib_dnnl_conv_weight_bytes(const attrib_dnnl_conv *conv);

/// Reorders w [oc, c/groups, kh, kw] (OIHW) into dst (attrib_dnnl_conv_weight_bytes bytes, 64-byte
/// aligned) in the primitive's layout. 1 done, 0 failed (or nothing to reorder).
int attrib_dnnl_conv_reorder_weights(const attrib_dnnl_conv *conv, const float *w, void *dst);

/// 1 where two primitives read the weight in the same layout (one prepared copy serves both).
int attrib_dnnl_conv_same_weights(const attrib_dnnl_conv *a, const attrib_dnnl_conv *b);

/// Runs the primitive on `threads` OpenMP threads: out = conv(in, weights) + bias (forward;
/// bias NULL where it was made without) or dx = the input gradient of dy (backward), in and
/// out NHWC, weights the OIHW weight itself or its reordered copy (attrib_dnnl_conv_weight_bytes).
/// Every element of out written. Safe to call from several threads at once (each has its own
/// stream and scratchpad). 1 done, 0 failed.
int attrib_dnnl_conv_run(const attrib_dnnl_conv *conv, const float *in, const void *weights, const float *bias,
                         float *out, int threads);

#ifdef __cplusplus
}
#endif
#endif
