/*
 * services.h - the clients a process offers its step types: what `steppy
 * run` and `steppy serve` put into the runtime's step_services
 * (runtime/runner.h), so that the runtime itself never knows AWS or HTTP.
 */
#ifndef STEPPY_STEPS_SERVICES_H
#define STEPPY_STEPS_SERVICES_H

#include "runtime/runner.h"

/*
 * Makes the shared clients on svc->loop: an HTTP client (svc->http) and
 * an AWS client (svc->aws; no I/O until the first call: credentials are
 * resolved then), and sets svc->release, which runtime_free() calls to
 * free them. Call once, after runtime_new(), with runtime_services().
 */
void step_services_open(struct step_services *svc);

#endif
