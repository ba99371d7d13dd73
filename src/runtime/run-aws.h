/*
 * run-aws.h - what the AWS step runners share: the call target of a step
 * (region, role, session name naming the release and step) and how a
 * failed call becomes a step error.
 */
#ifndef STEPPY_RUNTIME_RUN_AWS_H
#define STEPPY_RUNTIME_RUN_AWS_H

#include "aws/aws.h"
#include "runtime/runner.h"

/* Strings of the target point into info or into session (65 bytes). */
void step_aws_target(const struct attempt_info *info, const char *service, struct aws_target *t,
                     char session[65]);

/* {"error": "<what>: <Code>: <message>", "awsErrorCode": ...}; caller owns. */
json_t *step_aws_error(const char *what, const struct aws_result *res);

#endif
