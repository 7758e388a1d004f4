// zlib (zlib1g-dev, which libpng-dev pulls in too). Attrib uses only crc32(): the checksums a
// sweep's manifest records for each finished unit's files, so a resume trusts only intact ones.
#include <zlib.h>
