// The CPU features the AVX2 loops dispatch on, each read once per file and cached.
#ifndef ATTRIB_CPU_FEATURES_H
#define ATTRIB_CPU_FEATURES_H
#if defined(__x86_64__)
static inline int cpu_has_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2");
    return cached;
}

static inline int cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
}

// AVX-512 Foundation (the 16-lane convolution tiles, the 16-window max pooling). The compiler's check reads the OS's
// XCR0 too, so it is 0 where the kernel does not save the 512-bit state.
static inline int cpu_has_avx512f(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512f");
    return cached;
}

static inline int cpu_has_avx_f16c(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    return cached;
}
#endif
#endif
