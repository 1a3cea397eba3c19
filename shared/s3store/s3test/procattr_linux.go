package s3test

import "syscall"

// sysProcAttr has the kernel kill the gateway if the test process dies
// before it can stop it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
