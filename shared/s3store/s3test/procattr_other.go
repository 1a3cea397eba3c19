//go:build !linux

package s3test

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; the gateway
// is stopped by the test's cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
