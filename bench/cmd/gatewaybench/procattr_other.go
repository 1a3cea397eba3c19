//go:build !linux

package main

import "syscall"

// childAttr returns nil: only Linux kills a child when its parent dies;
// elsewhere the deferred stops are all there is.
func childAttr() *syscall.SysProcAttr {
	return nil
}

// raiseOpenFiles leaves the limit as it is: the benchmark's measurements
// of memory and CPU read Linux's /proc anyway.
func raiseOpenFiles(need uint64) error { return nil }
