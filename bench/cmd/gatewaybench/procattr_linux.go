package main

import (
	"fmt"
	"syscall"
)

// raiseOpenFiles sets this process's open-file limit, and so its
// children's, to its hard limit, raising that to need if it is lower
// (which takes privilege).
func raiseOpenFiles(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-file limit: %w", err)
	}
	lim.Cur = lim.Max
	if lim.Max < need {
		raised := syscall.Rlimit{Cur: need, Max: need}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return fmt.Errorf("the open-file limit (ulimit -n) is %d, and the streams need %d: raise it, or lower --streams: %w", lim.Max, need, err)
		}
		return nil
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-file limit to %d: %w", lim.Max, err)
	}
	return nil
}
