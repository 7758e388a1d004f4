#include "build_info.h"
// commit.h is written by scripts/stamp_commit.sh (git-ignored): one line,
// #define ATTRIB_COMMIT "<short hash>[-dirty]". Without it the commit is "unknown".
#if __has_include("commit.h")
#include "commit.h"
#endif
#ifndef ATTRIB_COMMIT
#define ATTRIB_COMMIT "unknown"
#endif

const char *attrib_build_commit(void) { return ATTRIB_COMMIT; }
