/*
 * The one way the modules below the public API report a failure: a
 * readable message written into the caller's buffer.
 */
#ifndef DPS_ERROR_H
#define DPS_ERROR_H

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define DPS_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define DPS_PRINTF_LIKE(f, a)
#endif

/* printf into err (truncating); does nothing when err is NULL or empty. */
DPS_PRINTF_LIKE(3, 4)
void dps_set_error(char *err, size_t errlen, const char *fmt, ...);

#endif
