// OpenBLAS's CBLAS header (libopenblas-dev). It also declares
// openblas_get_config / openblas_get_num_threads, which `attrib devices` prints.
#include <cblas-openblas.h>
