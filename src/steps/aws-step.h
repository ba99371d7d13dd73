/*
 * aws-step.h - what the AWS step types share: their AWS client, the call
 * target of a step (region, role, session name naming the release and
 * step) and how a failed call becomes a step error.
 */
#ifndef STEPPY_STEPS_AWS_STEP_H
#define STEPPY_STEPS_AWS_STEP_H

#include "aws/aws.h"
#include "runtime/runner.h"

/*
 * The process's AWS client (info->svc->aws), or NULL with a message in err
 * when the runtime's owner offers none (start() then returns SP_EINVAL).
 */
struct aws *step_aws_client(const struct attempt_info *info, struct strbuf *err);

/* Strings of the target point into info or into session (65 bytes). */
void step_aws_target(const struct attempt_info *info, const char *service, struct aws_target *t,
                     char session[65]);

/* {"error": "<what>: <Code>: <message>", "awsErrorCode": ...}; caller owns. */
json_t *step_aws_error(const char *what, const struct aws_result *res);

#endif
