/*
 * test-approval.c - the core's rule of who may decide (core/approval.h) on
 * typed rules, without a plan; the rule a Human step describes through its
 * hook; the one command entry of the engine (engine_on_command()); and the
 * presentation hooks that replaced step-type names outside src/steps/.
 */
#include "unit.h"

#include "plan-fixture.h"

#include "core/approval.h"
#include "core/engine.h"
#include "core/people.h"
#include "plan/diag.h"
#include "plan/validate.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define T0 1800000000000LL

/* A rule as a step type would describe it (approvers borrowed from names). */
static struct approval_rule rule_of(const char **names, size_t n, int need, bool self)
{
	return (struct approval_rule){
		.approvers = names, .napprovers = n, .min_approvals = need, .self_approval = self
	};
}

/* The verdict on by (approver_role role) deciding, with its text in *why (caller frees). */
static enum approval_verdict verdict(const struct approval_rule *r, const char *by, int role,
                                     bool approve, const char *starter, char *const *approved,
                                     int napproved, char **why)
{
	struct approval_decider d = { .by = by, .approver_role = role, .people = NULL };
	struct approval_ask ask = { .step_name = "go",
		                    .approve = approve,
		                    .starter = starter,
		                    .approved_by = approved,
		                    .napproved = napproved };
	struct strbuf sb = STRBUF_INIT;
	enum approval_verdict v = approval_may_decide(r, &d, &ask, &sb);
	if (v == APPROVAL_MAY)
		assert_int_equal(sb.len, 0); /* no reason without a refusal */
	*why = strbuf_detach(&sb, NULL);
	return v;
}

static void test_same_person(void **state)
{
	(void)state;
	assert_true(approval_same_person("alice", "alice"));
	assert_true(approval_same_person("alice", "alice@laptop"));
	assert_true(approval_same_person("alice@ci", "alice@laptop"));
	assert_false(approval_same_person("alice", "alicia"));
	assert_false(approval_same_person("alice", ""));
	assert_true(approval_same_person("", ""));
	assert_true(approval_same_person("@x", "@x")); /* an empty user part: the whole name */
	assert_false(approval_same_person("@x", "@y"));
	assert_true(approval_anonymous(NULL));
	assert_true(approval_anonymous(""));
	assert_false(approval_anonymous("a"));
}

static void test_is_approver(void **state)
{
	(void)state;
	const char *rm[] = { "rm", NULL }, *none[] = { NULL };
	const struct person list[] = {
		{ .name = "alice", .groups = rm },
		{ .name = "bob", .groups = none },
	};
	const struct people dir = { .list = list, .n = 2 };
	const char *names[] = { "carol@ci", "group:rm", "dave" };
	struct approval_rule r = rule_of(names, 3, 1, false);
	assert_true(approval_is_approver(&r, &dir, "carol@ci"));
	/* listed with a host: only that name, or the same name from elsewhere is not
	 * enough (the listed entry is compared whole with by or by's user part) */
	assert_false(approval_is_approver(&r, &dir, "carol"));
	assert_false(approval_is_approver(&r, &dir, "carol@laptop"));
	assert_true(approval_is_approver(&r, &dir, "dave@laptop"));
	assert_true(approval_is_approver(&r, &dir, "alice"));
	assert_true(approval_is_approver(&r, &dir, "alice@x")); /* her user part */
	assert_false(approval_is_approver(&r, NULL, "alice"));  /* no directory */
	assert_false(approval_is_approver(&r, &dir, "bob"));
	assert_false(approval_is_approver(&r, &dir, "rm"));
	assert_false(approval_is_approver(&r, &dir, ""));
	assert_false(approval_is_approver(&r, &dir, NULL));
	struct approval_rule anyone = rule_of(NULL, 0, 1, true);
	assert_true(approval_is_approver(&anyone, NULL, NULL));
	assert_true(approval_is_approver(&anyone, NULL, "mallory"));
}

/* Every verdict of the rule, in the order the rule checks them, with its text. */
static void test_verdicts(void **state)
{
	(void)state;
	const char *names[] = { "alice", "bob" };
	struct approval_rule listed = rule_of(names, 2, 1, false);
	struct approval_rule open2 = rule_of(NULL, 0, 2, true);
	struct approval_rule noself = rule_of(NULL, 0, 1, false);
	char *approved[] = { "bob@laptop" };
	char *why;

	assert_int_equal(verdict(&listed, "alice", 0, true, "", NULL, 0, &why), APPROVAL_NO_ROLE);
	assert_string_equal(why, "alice may not decide \"go\": this needs the approver role");
	free(why);
	assert_int_equal(verdict(&listed, NULL, 0, false, "", NULL, 0, &why), APPROVAL_NO_ROLE);
	assert_string_equal(why, "this person may not decide \"go\": this needs the approver role");
	free(why);
	assert_int_equal(verdict(&listed, "", -1, false, "", NULL, 0, &why), APPROVAL_NO_NAME);
	assert_string_equal(
	    why,
	    "only the approvers of \"go\" (alice, bob) may decide it: say who you are (sign in)");
	free(why);
	assert_int_equal(verdict(&listed, "carol", 1, false, "", NULL, 0, &why),
	                 APPROVAL_NOT_LISTED);
	assert_string_equal(why, "carol is not among the approvers of \"go\"");
	free(why);
	/* A rejection by whoever may decide is fine, the starter's too. */
	assert_int_equal(verdict(&listed, "alice", 1, false, "alice@ci", NULL, 0, &why),
	                 APPROVAL_MAY);
	free(why);
	assert_int_equal(verdict(&listed, "alice", -1, true, "alice@ci", NULL, 0, &why),
	                 APPROVAL_STARTER);
	assert_string_equal(why, "whoever started the release (alice@ci) cannot approve it: "
	                         "allowSelfApproval is false");
	free(why);
	assert_int_equal(verdict(&listed, "bob", -1, true, "alice@ci", approved, 1, &why),
	                 APPROVAL_AGAIN);
	assert_string_equal(why, "bob has already approved \"go\" (1 of 1 approvals so far; each "
	                         "must come from a different person)");
	free(why);
	assert_int_equal(verdict(&listed, "alice", -1, true, "carol", approved, 1, &why),
	                 APPROVAL_MAY);
	free(why);
	/* Anonymous approvals: never when several people must approve or the
	 * starter is excluded; fine otherwise, once. */
	assert_int_equal(verdict(&open2, NULL, -1, true, "", NULL, 0, &why), APPROVAL_NO_NAME);
	assert_string_equal(why, "\"go\" needs 2 approvals from different people: an approval "
	                         "must say who gives it (sign in)");
	free(why);
	assert_int_equal(verdict(&noself, NULL, -1, true, "ops", NULL, 0, &why), APPROVAL_NO_NAME);
	assert_string_equal(why, "whoever started the release (ops) may not approve \"go\": an "
	                         "approval must say who gives it (sign in)");
	free(why);
	struct approval_rule open1 = rule_of(NULL, 0, 1, true);
	assert_int_equal(verdict(&open1, NULL, -1, true, NULL, NULL, 0, &why), APPROVAL_MAY);
	free(why);
	char *anon[] = { "" };
	assert_int_equal(verdict(&open1, "", -1, true, NULL, anon, 1, &why), APPROVAL_AGAIN);
	assert_string_equal(why, "someone with the link has already approved \"go\" (1 of 1 "
	                         "approvals so far; each must come from a different person)");
	free(why);
	/* why may be NULL: the verdict alone. */
	struct approval_decider d = { .by = "carol", .approver_role = 1 };
	struct approval_ask ask = { .step_name = "go", .approve = true };
	assert_int_equal(approval_may_decide(&listed, &d, &ask, NULL), APPROVAL_NOT_LISTED);
}

static void test_check_starter(void **state)
{
	(void)state;
	const char *two[] = { "alice", "bob@x" }, *three[] = { "alice", "bob", "carol" };
	struct approval_rule r = rule_of(two, 2, 2, false);
	struct strbuf why = STRBUF_INIT;
	assert_int_equal(approval_check_starter(&r, "alice@ci", &why), -1);
	assert_string_equal(why.buf, "alice@ci started the release and is among the approvers, "
	                             "and allowSelfApproval is false: the others are 1 person, "
	                             "fewer than minApprovals (2); nobody could approve it");
	strbuf_reset(&why);
	assert_int_equal(approval_check_starter(&r, "dave", &why), 0); /* not listed */
	assert_int_equal(approval_check_starter(&r, "", &why), 0);     /* unknown starter */
	r.self_approval = true;
	assert_int_equal(approval_check_starter(&r, "alice", &why), 0);
	r = rule_of(three, 3, 2, false);
	assert_int_equal(approval_check_starter(&r, "alice", &why), 0); /* two others remain */
	assert_int_equal(why.len, 0);
	strbuf_release(&why);
}

static const char *const plan_text =
    "{\"stages\": [{\"name\": \"a\", \"steps\": ["
    "{\"type\": \"Human\", \"name\": \"go\", \"message\": \"ship?\", "
    "\"approvers\": [\"alice\", \"group:rm\"], \"minApprovals\": 2},"
    "{\"type\": \"Human\", \"name\": \"open\", \"message\": \"ok?\"},"
    "{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 5},"
    "{\"type\": \"Exec\", \"name\": \"x\", \"command\": [\"true\"]}]}]}";

/* The Human step's hook describes its fields; other types take no decisions. */
static void test_rule_of_steps(void **state)
{
	(void)state;
	struct plan *plan = test_plan(plan_text);
	const struct plan_step *steps = plan->stages[0].steps;
	/* read once, when the plan was built: the same rule every time */
	const struct approval_rule *r = approval_rule_of(&steps[0]);
	assert_non_null(r);
	assert_ptr_equal(r, approval_rule_of(&steps[0]));
	assert_int_equal(r->napprovers, 2);
	assert_string_equal(r->approvers[0], "alice");
	assert_string_equal(r->approvers[1], "group:rm");
	assert_int_equal(r->min_approvals, 2);
	assert_false(r->self_approval); /* the default with approvers */
	assert_string_equal(r->message, "ship?");
	assert_string_equal(r->count_field, "minApprovals");
	r = approval_rule_of(&steps[1]);
	assert_non_null(r);
	assert_int_equal(r->napprovers, 0);
	assert_int_equal(r->min_approvals, 1);
	assert_true(r->self_approval); /* the default without approvers */
	assert_null(r->count_node);
	for (int i = 2; i < 4; i++)
		assert_null(approval_rule_of(&steps[i]));
	assert_int_equal(approval_needed(&steps[0]), 2);
	assert_string_equal(approval_message(&steps[1]), "ok?");
	assert_null(approval_message(&steps[3]));
	assert_int_equal(approval_needed(&steps[3]), 1);
	plan_free(plan);
}

/* One command entry: the names, the mapping to the engine's inputs. */
static void test_engine_on_command(void **state)
{
	(void)state;
	enum engine_command cmd;
	assert_int_equal(engine_command_find("approve", &cmd), 0);
	assert_int_equal(cmd, ENGINE_APPROVE);
	assert_int_equal(engine_command_find("retry", &cmd), 0);
	assert_int_equal(cmd, ENGINE_RETRY);
	assert_int_equal(engine_command_find("resume", &cmd), -1);
	assert_int_equal(engine_command_find(NULL, &cmd), -1);
	assert_string_equal(engine_command_name(ENGINE_ABORT), "abort");

	struct plan *plan = test_plan(plan_text);
	struct exec_state ex;
	struct event_list out = EVENT_LIST_INIT;
	const char *reason = NULL;
	exec_state_init(&ex, "id", plan);
	struct event *ev = event_list_add(&out, EV_EXECUTION_STARTED, -1, -1, 0,
	                                  json_pack("{ss}", "startedBy", "ops"));
	ev->seq = 1;
	ev->time_ms = T0;
	assert_int_equal(engine_apply(&ex, ev), 0);
	event_list_clear(&out);
	engine_advance(&ex, T0, &out);
	event_list_clear(&out);

	/* A decision must name its step; the rule applies (carol is not listed). */
	assert_int_equal(engine_on_command(&ex, ENGINE_APPROVE, json_pack("{ss}", "by", "alice"),
	                                   T0, &out, &reason),
	                 SP_EINVAL);
	assert_string_equal(reason, "the command names no step");
	assert_int_equal(
	    engine_on_command(&ex, ENGINE_APPROVE,
	                      json_pack("{sisiss}", "stage", 0, "step", 0, "by", "carol"), T0, &out,
	                      &reason),
	    SP_EINVAL);
	assert_string_equal(reason, "carol is not among the approvers of \"go\"");
	assert_int_equal(out.len, 0);
	/* Recorded without stage and step; one approval of two. */
	assert_int_equal(
	    engine_on_command(&ex, ENGINE_APPROVE,
	                      json_pack("{sisiss}", "stage", 0, "step", 0, "by", "alice"), T0, &out,
	                      &reason),
	    0);
	assert_int_equal(out.len, 1);
	assert_int_equal(out.items[0].type, EV_HUMAN_DECISION);
	assert_null(json_object_get(out.items[0].data, "stage"));
	assert_string_equal(json_string_value(json_object_get(out.items[0].data, "decision")),
	                    "approve");
	assert_int_equal(ex.steps[0][0].status, STEP_RUNNING);
	assert_int_equal(
	    engine_on_command(&ex, ENGINE_REJECT,
	                      json_pack("{sisiss}", "stage", 0, "step", 1, "by", "anyone"), T0,
	                      &out, &reason),
	    0);
	assert_int_equal(ex.steps[0][1].status, STEP_REJECTED);
	/* Retry goes to redrive (refused while running), abort to abort. */
	assert_int_equal(engine_on_command(&ex, ENGINE_RETRY, NULL, T0, &out, &reason), SP_EINVAL);
	assert_string_equal(reason, "the release is still running");
	size_t before = out.len;
	assert_int_equal(
	    engine_on_command(&ex, ENGINE_ABORT, json_pack("{ss}", "by", "ops"), T0, &out, &reason),
	    0);
	assert_int_equal(out.items[before].type, EV_ABORT_REQUESTED);
	assert_true(ex.abort_requested);
	event_list_release(&out);
	exec_state_release(&ex);
	plan_free(plan);
}

/* engine_may_decide(): the rule on a step of a state (its starter, its approvals). */
static void test_engine_may_decide(void **state)
{
	(void)state;
	struct plan *plan = test_plan(plan_text);
	struct exec_state ex;
	exec_state_init(&ex, "id", plan);
	struct event_list out = EVENT_LIST_INIT;
	struct event *ev = event_list_add(&out, EV_EXECUTION_STARTED, -1, -1, 0,
	                                  json_pack("{ss}", "startedBy", "alice@ci"));
	ev->seq = 1;
	ev->time_ms = T0;
	assert_int_equal(engine_apply(&ex, ev), 0);
	event_list_clear(&out);
	engine_advance(&ex, T0, &out);
	struct approval_decider d = { .by = "alice", .approver_role = -1 };
	struct strbuf why = STRBUF_INIT;
	assert_int_equal(engine_may_decide(&ex, 0, 0, &d, true, &why), APPROVAL_STARTER);
	assert_int_equal(engine_may_decide(&ex, 0, 0, &d, false, NULL), APPROVAL_MAY);
	d.by = "bob";
	assert_int_equal(engine_may_decide(&ex, 0, 0, &d, true, NULL), APPROVAL_NOT_LISTED);
	const char *rm[] = { "rm", NULL };
	const struct person bob = { .name = "bob", .groups = rm };
	const struct people dir = { .list = &bob, .n = 1 };
	d.people = &dir;
	assert_int_equal(engine_may_decide(&ex, 0, 0, &d, true, NULL), APPROVAL_MAY);
	/* A step that takes no decisions has no rule that refuses anyone. */
	assert_int_equal(engine_may_decide(&ex, 0, 3, &d, true, NULL), APPROVAL_MAY);
	strbuf_release(&why);
	event_list_release(&out);
	exec_state_release(&ex);
	plan_free(plan);
}

/* The presentation hooks give the words the report and the terminal show. */
static void test_presentation_hooks(void **state)
{
	(void)state;
	struct plan *plan = test_plan(plan_text);
	const struct plan_step *steps = plan->stages[0].steps;
	struct strbuf sb = STRBUF_INIT;
	json_t *progress = json_pack("{s[ss]}", "channels", "slack", "mail");
	struct step_view view = { .progress = progress };
	steps[0].type->waiting_for(steps[0].node, &view, &sb);
	assert_string_equal(sb.buf, "approval by alice, group:rm (asked through slack, mail)");
	strbuf_reset(&sb);
	steps[2].type->waiting_for(steps[2].node, &view, &sb);
	assert_string_equal(sb.buf, "its timer");
	strbuf_reset(&sb);
	steps[3].type->waiting_for(steps[3].node, &view, &sb);
	assert_string_equal(sb.buf, "its command to end");
	strbuf_reset(&sb);
	view.cancelling = true; /* left to the generic words */
	steps[3].type->waiting_for(steps[3].node, &view, &sb);
	assert_int_equal(sb.len, 0);
	assert_true(steps[2].type->due_ms(steps[2].config, T0) == T0 + 5000);
	assert_string_equal(steps[3].type->program(steps[3].config), "true");
	assert_null(steps[3].type->work_summary);

	const struct step_type *cb = step_type_find("CodeBuild");
	json_t *work = json_pack("{sssi}", "buildId", "p:1", "buildNumber", 7);
	cb->work_summary(work, false, &sb);
	assert_string_equal(sb.buf, "build p:1 #7");
	strbuf_reset(&sb);
	cb->work_summary(work, true, &sb);
	assert_string_equal(sb.buf, "p:1");
	strbuf_reset(&sb);
	cb->work_summary(progress, true, &sb); /* names no build */
	assert_int_equal(sb.len, 0);
	const struct step_type *cp = step_type_find("CodePipeline");
	json_t *pw = json_pack("{ssss}", "pipelineName", "deploy", "pipelineExecutionId", "e-1");
	cp->work_summary(pw, false, &sb);
	assert_string_equal(sb.buf, "pipeline deploy execution e-1");
	strbuf_reset(&sb);
	cp->work_summary(pw, true, &sb);
	assert_string_equal(sb.buf, "deploy e-1");
	strbuf_reset(&sb);
	struct plan *pp = test_plan("{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": "
	                            "\"CodePipeline\", \"name\": \"p\", \"codePipelineName\": "
	                            "\"deploy\"}]}]}");
	const struct plan_step *ps = &pp->stages[0].steps[0];
	json_t *notice = json_pack("{s{ssss}}", "manualApproval", "stage", "Gate", "action", "Ok");
	ps->type->outside_wait(ps->node, notice, true, &sb);
	assert_string_equal(sb.buf, "waits for the manual approval \"Ok\" in stage \"Gate\" "
	                            "(CodePipeline console, or aws codepipeline "
	                            "put-approval-result)");
	strbuf_reset(&sb);
	ps->type->outside_wait(ps->node, notice, false, &sb);
	assert_true(!strncmp(sb.buf,
	                     "pipeline deploy waits for the manual approval \"Ok\" in stage "
	                     "\"Gate\"\ndecide in the CodePipeline console, or: aws codepipeline "
	                     "put-approval-result --pipeline-name deploy --stage-name Gate",
	                     strlen("pipeline deploy waits for the manual approval \"Ok\" in stage "
	                            "\"Gate\"\ndecide in the CodePipeline console, or: aws "
	                            "codepipeline put-approval-result --pipeline-name deploy "
	                            "--stage-name Gate")));
	strbuf_reset(&sb);
	ps->type->outside_wait(ps->node, pw, false, &sb); /* asks nothing */
	assert_int_equal(sb.len, 0);
	json_decref(notice);
	plan_free(pp);
	json_decref(pw);
	json_decref(work);
	json_decref(progress);
	strbuf_release(&sb);
	plan_free(plan);
}

/* A plan whose starter could never get a step through is refused at the
 * field that sets the count. */
static void test_check_plan_starter(void **state)
{
	(void)state;
	struct plan *plan = test_plan(
	    "{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Human\", \"name\": \"go\", "
	    "\"message\": \"m\", \"approvers\": [\"alice\"]}]}]}");
	struct diag_list dl = DIAG_LIST_INIT;
	assert_int_equal(approval_check_plan_starter(plan, "alice", &dl), 1);
	assert_string_equal(dl.items[0].pointer, "/stages/0/steps/0/approvers");
	assert_int_equal(approval_check_plan_starter(plan, "bob", &dl), 0);
	diag_list_release(&dl);
	plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_person),
		cmocka_unit_test(test_is_approver),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_check_starter),
		cmocka_unit_test(test_rule_of_steps),
		cmocka_unit_test(test_engine_on_command),
		cmocka_unit_test(test_engine_may_decide),
		cmocka_unit_test(test_presentation_hooks),
		cmocka_unit_test(test_check_plan_starter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
