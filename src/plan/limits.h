/*
 * limits.h - caps on everything a plan file controls.
 *
 * A plan comes from outside (a file, an upload, an S3 object), so its size,
 * node count, nesting and the number of diagnostics it can cause are all
 * bounded. Real plans are a few kilobytes; these leave them a lot of room.
 */
#ifndef STEPPY_PLAN_LIMITS_H
#define STEPPY_PLAN_LIMITS_H

/* Largest plan file read, in bytes. */
#define PLAN_MAX_BYTES ((size_t)8 * 1024 * 1024)
/* Most values (objects, lists, scalars) in one plan, YAML aliases expanded. */
#define PLAN_MAX_NODES ((size_t)1000000)
/* Deepest nesting of objects and lists. */
#define PLAN_MAX_DEPTH 100
/* Most variables one plan declares. */
#define PLAN_MAX_VARIABLES 1000
/* Most diagnostics kept for one plan; later ones are counted, not kept. */
#define PLAN_MAX_DIAGS 1000

#endif
