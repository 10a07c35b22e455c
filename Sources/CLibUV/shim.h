#ifndef CHIMERA_CLIBUV_SHIM_H
#define CHIMERA_CLIBUV_SHIM_H
#include <uv.h>

// libuv's handle "inheritance" is C struct prefixing; these casts keep the Swift side readable.
static inline uv_handle_t *chimera_handle(void *h) { return (uv_handle_t *)h; }
static inline uv_stream_t *chimera_stream(void *h) { return (uv_stream_t *)h; }

#endif
