/*
 * service.h - `steppy serve` as a systemd service (Type=notify): readiness,
 * the watchdog and reloads, told to the service manager through
 * libsystemd's sd_notify(). Outside systemd (no $NOTIFY_SOCKET) every call
 * does nothing.
 */
#ifndef STEPPY_SERVER_SERVICE_H
#define STEPPY_SERVER_SERVICE_H

#include <stdint.h>

/* READY=1 with a STATUS= line: the listener is up and the store is open.
 * Also reads WatchdogSec= ($WATCHDOG_USEC) for service_watchdog(). */
void service_ready(const char *status);
/* WATCHDOG=1 when half the watchdog interval has passed since the last
 * one; call it often (the loop thread calls it five times a second), from
 * the thread whose hanging should get the service restarted. now_ms is a
 * monotonic clock. */
void service_watchdog(int64_t now_ms);
/* RELOADING=1 (before a reload) and READY=1 again (after it). */
void service_reloading(void);
void service_reloaded(const char *status);
/* STOPPING=1: a graceful stop began. */
void service_stopping(void);

#endif
