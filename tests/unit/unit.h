/*
 * unit.h - what every unit test includes: cmocka and its prerequisites.
 */
#ifndef STEPPY_TESTS_UNIT_H
#define STEPPY_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#endif
