package hookbench

import (
	"context"
	"time"
)

// sleeper waits until the next request is due.
type sleeper interface {
	// sleep returns after d, or with ctx's error once ctx ends.
	sleep(ctx context.Context, d time.Duration) error
	close() error
}

// timerSleeper sleeps on a Go timer: portable, but an idle runtime wakes
// from it only at whole milliseconds.
type timerSleeper struct{ t *time.Timer }

func newTimerSleeper() *timerSleeper {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &timerSleeper{t: t}
}

func (s *timerSleeper) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	s.t.Reset(d)
	select {
	case <-s.t.C:
		return nil
	case <-ctx.Done():
		s.t.Stop()
		return ctx.Err()
	}
}

func (s *timerSleeper) close() error {
	s.t.Stop()
	return nil
}
