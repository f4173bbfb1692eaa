/* Fault fake for tests: an LD_PRELOAD shim that steps the wall clock of the process it is loaded
 * into, and leaves the monotonic clocks alone.
 *
 * CLOCK_REALTIME (and its _COARSE variant), gettimeofday(), time() and timespec_get(TIME_UTC)
 * return the real wall time plus an offset in seconds. The offset is read from the file named by
 * MANA_FAKE_CLOCK_STEP_FILE (a decimal integer, e.g. "3600" or "-3600"), re-read at most every
 * 20 ms of monotonic time, so a test steps the clock of a running process by rewriting that file
 * (write to a temporary name, then rename). A missing or unreadable file means offset 0. Every
 * other clock id (CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...) passes through untouched.
 *
 * Used by tests/gateway/reliability_test.py (scenario clock_step) only; never shipped. Built with
 * _GNU_SOURCE (tests/CMakeLists.txt) for RTLD_NEXT.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

typedef int (*ClockGettimeFn)(clockid_t, struct timespec*);

static const int64_t reread_ns = 20 * 1000 * 1000;

static _Atomic int64_t offset_s;
static _Atomic int64_t next_read_ns = INT64_MIN;

static ClockGettimeFn real_clock_gettime(void) {
  static _Atomic(ClockGettimeFn) fn;
  ClockGettimeFn f = atomic_load(&fn);
  if (f == NULL) {
    void* sym = dlsym(RTLD_NEXT, "clock_gettime");
    memcpy(&f, &sym, sizeof f); /* object -> function pointer without an ISO C cast */
    atomic_store(&fn, f);
  }
  return f;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  if (real_clock_gettime()(CLOCK_MONOTONIC, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t current_offset(void) {
  const int64_t now = mono_ns();
  if (now >= atomic_load(&next_read_ns)) {
    atomic_store(&next_read_ns, now + reread_ns);
    int64_t off = 0;
    const char* path = getenv("MANA_FAKE_CLOCK_STEP_FILE");
    if (path != NULL) {
      FILE* f = fopen(path, "re");
      if (f != NULL) {
        long long v = 0;
        if (fscanf(f, "%lld", &v) == 1) off = (int64_t)v;
        fclose(f);
      }
    }
    atomic_store(&offset_s, off);
  }
  return atomic_load(&offset_s);
}

static int is_wall_clock(clockid_t id) {
  return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
}

int clock_gettime(clockid_t id, struct timespec* ts) {
  const int rc = real_clock_gettime()(id, ts);
  if (rc == 0 && is_wall_clock(id)) ts->tv_sec += (time_t)current_offset();
  return rc;
}

int gettimeofday(struct timeval* restrict tv, void* restrict tz) {
  (void)tz;
  struct timespec ts;
  const int rc = clock_gettime(CLOCK_REALTIME, &ts);
  if (rc == 0) {
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
  }
  return rc;
}

time_t time(time_t* out) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
  if (out != NULL) *out = ts.tv_sec;
  return ts.tv_sec;
}

int timespec_get(struct timespec* ts, int base) {
  if (base != TIME_UTC || clock_gettime(CLOCK_REALTIME, ts) != 0) return 0;
  return base;
}
