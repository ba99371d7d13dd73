/*
 * service.c - sd_notify() messages of `steppy serve` (see service.h).
 */
#include "server/service.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

/* Half the watchdog interval in ms, 0 when the watchdog is off; set once by
 * service_ready() before the loop thread calls service_watchdog(). */
static _Atomic int64_t watchdog_half_ms;
static int64_t watchdog_last_ms; /* only the loop thread touches it */

void service_ready(const char *status)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
		atomic_store(&watchdog_half_ms, (int64_t)(usec / 2000));
	sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "serving");
}

void service_watchdog(int64_t now_ms)
{
	int64_t half = atomic_load(&watchdog_half_ms);
	if (half <= 0 || now_ms - watchdog_last_ms < half)
		return;
	watchdog_last_ms = now_ms;
	sd_notify(0, "WATCHDOG=1");
}

void service_reloading(void)
{
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}

void service_reloaded(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "serving");
}

void service_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}
