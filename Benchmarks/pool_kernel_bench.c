// Times the CPU backend's tiled 2x2 max pooling (Sources/CVecMath/pool.c), forward and
// backward, one thread, and prints a hash of the values, indices and gradients, so that two
// versions of pool.c can be compared for speed and for bitwise-equal results:
//
//   clang -O2 -ISources/CVecMath/include -ISources/CVecMath Benchmarks/pool_kernel_bench.c Sources/CVecMath/pool.c \
//     Sources/CVecMath/maxpool_avx512.c -o /tmp/pool_new
//   git show 0b328c3:Sources/CVecMath/pool.c > /tmp/pool_old.c && cp Sources/CVecMath/*.h /tmp/ &&
//     clang -O2 -ISources/CVecMath/include -I/tmp Benchmarks/pool_kernel_bench.c /tmp/pool_old.c -o /tmp/pool_old
//   for s in "8192 8 8" "16384 4 4" "512 8 8" "64 224 224"; do /tmp/pool_old $s 50; /tmp/pool_new $s 50; done
//
// (0b328c3 is the last pool.c with AVX2 kernels only; an older pool.c needs no
// maxpool_avx512.c.)
//
// Arguments: planes H W repetitions [ties]: random values in [-0.5, 0.5), or with "ties"
// every seventh value repeated and one NaN (the rule's ties and NaN).
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <string.h>
void attrib_maxpool_tiled_forward_f32(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w, size_t kh, size_t kw);
void attrib_maxpool_tiled_backward_f32(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w, size_t kh, size_t kw);
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t planes=atoi(argv[1]), h=atoi(argv[2]), w=atoi(argv[3]); int reps=atoi(argv[4]);
  size_t n=planes*h*w, o=planes*(h/2)*(w/2);
  float *x=malloc(n*4),*y=malloc(o*4),*dx=malloc(n*4),*dy=malloc(o*4); int32_t*a=malloc(o*4);
  srand(1); for(size_t i=0;i<n;i++) x[i]=(rand()/(float)RAND_MAX)-0.5f; for(size_t i=0;i<o;i++) dy[i]=rand()/(float)RAND_MAX;
  if (argc>5) { for(size_t i=0;i<n;i+=7) x[i]=x[i+1<n?i+1:i]; x[3]=0.0f/0.0f; }
  double t0=now(); for(int r=0;r<reps;r++) attrib_maxpool_tiled_forward_f32(x,y,a,planes,h,w,2,2); double t1=now();
  for(int r=0;r<reps;r++) attrib_maxpool_tiled_backward_f32(dy,a,dx,planes,h,w,2,2); double t2=now();
  unsigned long long hsh=0; for(size_t i=0;i<o;i++){uint32_t b; memcpy(&b,&y[i],4); hsh=hsh*31+b+a[i];} for(size_t i=0;i<n;i++){uint32_t b; memcpy(&b,&dx[i],4); hsh=hsh*31+b;}
  printf("fwd %.3f ms bwd %.3f ms hash %llx\n",(t1-t0)/reps*1e3,(t2-t1)/reps*1e3,hsh);
}
