/*
 * codebuild.h - the two halves of the CodeBuild step types, private to
 * them: the configuration codebuild.c reads from a plan (bind) and the
 * runner codebuild-run.c drives it with. Nothing outside these three files
 * includes it.
 */
#ifndef STEPPY_STEPS_CODEBUILD_H
#define STEPPY_STEPS_CODEBUILD_H

#include "runtime/runner.h"

#include <stddef.h>

/* One environmentVariableOverrides entry, as StartBuild takes it. */
struct codebuild_env {
	const char *name, *value; /* borrowed from the plan */
	const char *type;         /* PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER */
};

/* A CodeBuild or CodeBuildNoWait step, read once when the plan is built. */
struct codebuild_config {
	const char *project;  /* codeBuildName (borrowed from the plan) */
	char *source_version; /* owned: as StartBuild takes it (refs/heads/...), or NULL */
	size_t nenv;
	struct codebuild_env *env; /* owned array of nenv */
};

/* The runner (codebuild-run.c); see plan/step-type.h for the contracts. */
int codebuild_start(struct attempt *a, const struct attempt_info *info, const void *config,
                    void **ret_state, struct strbuf *err);
void codebuild_cancel(struct attempt *a, void *state);
void codebuild_detach(void *state);

#endif
