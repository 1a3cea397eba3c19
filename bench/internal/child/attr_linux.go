package child

import "syscall"

// childAttr makes the kernel kill a server if the benchmark dies without
// stopping it, even by SIGKILL.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
