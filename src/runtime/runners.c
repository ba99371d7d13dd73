/*
 * runners.c - the table of step runners (see runner.h).
 */
#include "runtime/runner.h"

#include <string.h>

static const struct step_runner *const runners[] = {
	&exec_runner,         &notify_runner,
	&codebuild_runner,    &codebuild_nowait_runner,
	&codepipeline_runner, &codepipeline_nowait_runner,
	&lambda_runner,
};

const struct step_runner *step_runner_find(const char *type)
{
	for (size_t i = 0; i < sizeof(runners) / sizeof(runners[0]); i++)
		if (!strcmp(runners[i]->type, type))
			return runners[i];
	return NULL;
}
