/*
 * services.c - the clients a process offers its step types (see services.h).
 */
#include "steps/services.h"

#include "aws/aws.h"
#include "http/http.h"

static void release(struct step_services *svc)
{
	aws_free(svc->aws);
	http_free(svc->http);
	svc->aws = NULL;
	svc->http = NULL;
}

void step_services_open(struct step_services *svc)
{
	svc->http = http_new(svc->loop);
	svc->aws = aws_new(svc->loop);
	svc->release = release;
}
