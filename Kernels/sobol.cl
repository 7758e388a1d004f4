// sobol.cl: masks for perturbation-based attribution (Sobol attribution,
// deletion / insertion curves): upsample a batch of low-resolution masks
// [m, mc, gh, gw] to [m, mc, h, w], or apply them, upsampled on the fly, to
// one input x [c, h, w] (mc = 1: one mask shared by the c channels; mc = c:
// one per channel). The full-resolution masks never exist in memory.
//
// Upsampling (torch.nn.functional.interpolate conventions):
//   mode 0, nearest:  src = floor(dst * g / size), in integers (exact);
//   mode 1, bilinear, align_corners = False: src = (dst + 0.5) * g / size - 0.5,
//     clamped below at 0; i0 = floor(src), i1 = min(i0 + 1, g - 1),
//     lambda = src - i0. The integer part is exact: with p = max(0,
//     (2 dst + 1) g - size), i0 = p / (2 size) and lambda = (p mod 2 size) / (2 size).
//   value = (1 - ly)((1 - lx) m00 + lx m01) + ly((1 - lx) m10 + lx m11).
// Perturbations (Fel et al.'s reference code, torch_perturbations.py):
//   kind 0, inpainting: y = x * M + (1 - M) * x0, x0 = base[j * base_step]
//     (base_step 1: a per-input tensor such as a blurred x; 0: a constant);
//   kind 1, amplitude:  y = x * (M - 0.5) * sigma.
// FP_CONTRACT is off so each product and sum rounds as in the CPU backend.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#pragma OPENCL FP_CONTRACT OFF
typedef REAL real;

// Mask value at (iy, ix) of an h x w image from the gh x gw plane mk.
static real mask_value(__global const real* mk, int gh, int gw, int h, int w,
                       int iy, int ix, int mode)
{
    if (mode == 0) {
        int sy = (iy * gh) / h, sx = (ix * gw) / w;
        return mk[sy * gw + sx];
    }
    int py = (2 * iy + 1) * gh - h; if (py < 0) py = 0;
    int px = (2 * ix + 1) * gw - w; if (px < 0) px = 0;
    int y0 = py / (2 * h), x0 = px / (2 * w);
    real ly = (real)(py - y0 * 2 * h) / (real)(2 * h);
    real lx = (real)(px - x0 * 2 * w) / (real)(2 * w);
    int y1 = y0 + 1 < gh ? y0 + 1 : gh - 1;
    int x1 = x0 + 1 < gw ? x0 + 1 : gw - 1;
    real top = ((real)1 - lx) * mk[y0 * gw + x0] + lx * mk[y0 * gw + x1];
    real bot = ((real)1 - lx) * mk[y1 * gw + x0] + lx * mk[y1 * gw + x1];
    return ((real)1 - ly) * top + ly * bot;
}

// y[k, ci, iy, ix] = upsampled mask; 1-D over m*mc*h*w.
__kernel void mask_upsample(int m, int mc, int gh, int gw, int h, int w, int mode,
                            __global const real* masks, int masks_off,
                            __global real* y, int y_off)
{
    int g = (int)get_global_id(0);
    if (g >= m * mc * h * w) return;
    int ix = g % w;
    int t = g / w;
    int iy = t % h;
    int plane = t / h;        // k*mc + ci
    y[y_off + g] = mask_value(masks + masks_off + plane * gh * gw, gh, gw, h, w, iy, ix, mode);
}

// y[k, ci, iy, ix] = perturbation of x[ci, iy, ix] by mask k (plane ci when
// mc = c, else 0) upsampled; 1-D over m*c*h*w.
__kernel void mask_perturb(int m, int mc, int c, int gh, int gw, int h, int w, int mode, int kind,
                           __global const real* masks, int masks_off,
                           __global const real* x, int x_off,
                           __global const real* base, int base_off, int base_step,
                           real sigma,
                           __global real* y, int y_off)
{
    int g = (int)get_global_id(0);
    if (g >= m * c * h * w) return;
    int ix = g % w;
    int t = g / w;
    int iy = t % h;
    t /= h;
    int ci = t % c;
    int k = t / c;
    int plane = k * mc + (mc == 1 ? 0 : ci);
    real mv = mask_value(masks + masks_off + plane * gh * gw, gh, gw, h, w, iy, ix, mode);
    int j = (ci * h + iy) * w + ix;
    real xv = x[x_off + j];
    real r;
    if (kind == 0) {
        real b = base[base_off + j * base_step];
        r = xv * mv + ((real)1 - mv) * b;
    } else {
        r = xv * (mv - (real)0.5) * sigma;
    }
    y[y_off + g] = r;
}
