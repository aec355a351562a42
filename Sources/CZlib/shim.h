#ifndef VEEAMGATEWAY_CZLIB_SHIM_H
#define VEEAMGATEWAY_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit2 is a macro; Swift calls this instead. windowBits 31 = gzip framing. */
static inline int czlib_gzip_init(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
}
#endif
