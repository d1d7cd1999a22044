//go:build linux

package policy

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPUTime is the calling OS thread's CPU time, so a benchmark can
// tell time spent deciding from time spent descheduled on a busy machine.
func threadCPUTime() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
