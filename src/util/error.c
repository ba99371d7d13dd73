/*
 * error.c - names and messages of the error codes listed in error.h.
 */
#include "util/error.h"

const char *sp_strerror(int code)
{
	switch (code) {
#define SP_ERROR_MSG(name, num, msg)                                                               \
	case -(num):                                                                               \
		return msg;
		SP_ERROR_LIST(SP_ERROR_MSG)
#undef SP_ERROR_MSG
	}
	return "unknown error";
}

const char *sp_errname(int code)
{
	switch (code) {
#define SP_ERROR_NAME(name, num, msg)                                                              \
	case -(num):                                                                               \
		return #name;
		SP_ERROR_LIST(SP_ERROR_NAME)
#undef SP_ERROR_NAME
	}
	return "SP_UNKNOWN";
}
