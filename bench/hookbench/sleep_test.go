package hookbench

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleeper(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]sleeper{"default": newSleeper(t.Context()), "timer": newTimerSleeper()} {
		t.Run(name, func(t *testing.T) {
			defer s.close()
			for _, d := range []time.Duration{-time.Second, 0, time.Microsecond, 3 * time.Millisecond} {
				start := time.Now()
				if err := s.sleep(t.Context(), d); err != nil {
					t.Fatalf("sleep(%v): %v", d, err)
				}
				if got := time.Since(start); got < d {
					t.Errorf("sleep(%v) returned after %v", d, got)
				}
			}
		})
	}
}

func TestSleeperCancelled(t *testing.T) {
	t.Parallel()
	for name, newS := range map[string]func(context.Context) sleeper{
		"default": newSleeper,
		"timer":   func(context.Context) sleeper { return newTimerSleeper() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			s := newS(ctx)
			defer s.close()
			time.AfterFunc(20*time.Millisecond, cancel)
			start := time.Now()
			if err := s.sleep(ctx, time.Minute); !errors.Is(err, context.Canceled) {
				t.Errorf("sleep cut short by cancel: err = %v, want context.Canceled", err)
			}
			if got := time.Since(start); got > 10*time.Second {
				t.Errorf("cancel took %v to end the sleep", got)
			}
			if err := s.sleep(ctx, time.Millisecond); !errors.Is(err, context.Canceled) {
				t.Errorf("sleep after cancel: err = %v, want context.Canceled", err)
			}
		})
	}
}
