#ifndef ATTRIB_BUILD_INFO_H
#define ATTRIB_BUILD_INFO_H
/// The git commit the binary was built from ("abc1234", "abc1234-dirty"), or "unknown" when it
/// was built without scripts/stamp_commit.sh (a plain `swift build` of an unstamped tree).
const char *attrib_build_commit(void);
#endif
