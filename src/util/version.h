/*
 * version.h - the version steppy reports (`steppy version`, /healthz).
 */
#ifndef STEPPY_UTIL_VERSION_H
#define STEPPY_UTIL_VERSION_H

#define STEPPY_VERSION "0.1.0"

#endif
