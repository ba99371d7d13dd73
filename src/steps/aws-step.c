/*
 * aws-step.c - helpers of the AWS step types (see aws-step.h).
 */
#include "steps/aws-step.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

struct aws *step_aws_client(const struct attempt_info *info, struct strbuf *err)
{
	if (!info->svc->aws)
		strbuf_addstr(err, "this steppy has no AWS client to run AWS steps with");
	return info->svc->aws;
}

void step_aws_target(const struct attempt_info *info, const char *service, struct aws_target *t,
                     char session[65])
{
	/* RoleSessionName: 2 to 64 of [\w+=,.@-]; CloudTrail shows it, so it
	 * names the release and the step. */
	int n = snprintf(session, 65, "steppy-%s-", info->execution_id);
	for (const char *p = info->step_plan->name; *p && n < 64; p++) {
		unsigned char c = (unsigned char)*p;
		session[n++] = isalnum(c) || strchr("+=,.@-_", c) ? (char)c : '-';
	}
	session[n < 64 ? n : 64] = '\0';
	*t = (struct aws_target){ .service = service,
		                  .region = info->step_plan->region,
		                  .role_arn = info->step_plan->role_arn,
		                  .external_id = info->step_plan->external_id,
		                  .session_name = session };
}

json_t *step_aws_error(const char *what, const struct aws_result *res)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s: ", what);
	aws_result_error(res, &sb);
	json_t *o = json_pack("{ss}", "error", sb.buf);
	if (res->error_code)
		json_object_set_new(o, "awsErrorCode", json_string(res->error_code));
	strbuf_release(&sb);
	return o;
}
