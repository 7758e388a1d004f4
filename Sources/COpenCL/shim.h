// The OpenCL 1.2 API through the Khronos ICD loader (ocl-icd-opencl-dev).
// 1.2 is the newest version every vendor's driver implements in full.
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
