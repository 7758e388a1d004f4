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

static inline int cpu_has_avx_f16c(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    return cached;
}
#endif
#endif
