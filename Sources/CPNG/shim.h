// libpng 1.6 (libpng-dev). Attrib uses only its "simplified" API
// (png_image_begin_read_from_file / png_image_finish_read /
// png_image_write_to_file): those functions do libpng's setjmp/longjmp error
// handling inside libpng itself and report failures through png_image.message,
// so Swift, which cannot call setjmp, needs no C shim of its own.
#include <png.h>
