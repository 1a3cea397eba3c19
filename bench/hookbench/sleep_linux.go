package hookbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdSleeper sleeps on a Linux timerfd read through the runtime's
// network poller. Its wake-ups are as precise as the kernel's timers (tens
// of microseconds), where a Go timer's are not: the runtime rounds an idle
// wait for a timer up to whole milliseconds (netpoll_epoll.go), which at
// 1,000 requests/s would add up to a millisecond to every latency
// measured from the schedule.
type timerfdSleeper struct {
	f    *os.File
	stop func() bool
}

// newSleeper returns a timerfdSleeper, or a timerSleeper where timerfd is
// not available.
func newSleeper(ctx context.Context) sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newTimerSleeper()
	}
	// Non-blocking, so os.File reads it through the poller and honours
	// read deadlines.
	s := &timerfdSleeper{f: os.NewFile(uintptr(fd), "timerfd")}
	s.stop = context.AfterFunc(ctx, func() { _ = s.f.SetReadDeadline(time.Now()) })
	return s
}

func (s *timerfdSleeper) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	conn, err := s.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("arm timerfd: %w", err)
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	var serr error
	err = conn.Control(func(fd uintptr) { serr = unix.TimerfdSettime(int(fd), 0, &spec, nil) })
	if err := errors.Join(err, serr); err != nil {
		return fmt.Errorf("arm timerfd: %w", err)
	}
	var expirations [8]byte
	if _, err := io.ReadFull(s.f, expirations[:]); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("wait on timerfd: %w", err)
	}
	return nil
}

func (s *timerfdSleeper) close() error {
	s.stop()
	return s.f.Close()
}
