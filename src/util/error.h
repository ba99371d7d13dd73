/*
 * error.h - the one error code list of steppy.
 *
 * Library code returns 0 on success or a negative SP_E* code, and never
 * prints. The list is append-only: a code's number never changes meaning,
 * so numbers may appear in logs and stored events. Names and messages are
 * generated from the same list.
 */
#ifndef STEPPY_ERROR_H
#define STEPPY_ERROR_H

#define SP_ERROR_LIST(X)                                                                           \
	X(SP_OK, 0, "success")                                                                     \
	X(SP_ENOMEM, 1, "out of memory")                                                           \
	X(SP_EIO, 2, "input/output error")                                                         \
	X(SP_ETOOBIG, 3, "input exceeds a size limit")                                             \
	X(SP_ESYNTAX, 4, "syntax error")                                                           \
	X(SP_EINVAL, 5, "invalid value")                                                           \
	X(SP_ENOENT, 6, "not found")                                                               \
	X(SP_EUSAGE, 7, "invalid usage")                                                           \
	X(SP_EBUSY, 8, "held by another process")                                                  \
	X(SP_ECONFLICT, 9, "changed by another process")                                           \
	X(SP_ESTORE, 10, "store error")                                                            \
	X(SP_EUNKNOWN, 11, "outcome unknown")

enum sp_error {
#define SP_ERROR_ENUM(name, num, msg) name = -(num),
	SP_ERROR_LIST(SP_ERROR_ENUM)
#undef SP_ERROR_ENUM
};

/* Returns the human message for code (0 or negative); "unknown error" otherwise. */
const char *sp_strerror(int code);

/* Returns the symbolic name ("SP_ENOMEM") for code; "SP_UNKNOWN" otherwise. */
const char *sp_errname(int code);

#endif
