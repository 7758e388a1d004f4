// libjpeg-turbo's TurboJPEG API (libturbojpeg0-dev). Chosen over libjpeg's own API because
// libjpeg reports errors by longjmp out of its error_exit handler, which Swift cannot catch;
// TurboJPEG handles that inside the library and returns -1 with a message
// (tjGetErrorStr2), so no C shim of Attrib's own is needed.
#include <turbojpeg.h>
