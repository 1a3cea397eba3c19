//go:build !linux

package hookbench

import "context"

// newSleeper returns a timerSleeper: precise sleepers are Linux only.
func newSleeper(context.Context) sleeper {
	return newTimerSleeper()
}
