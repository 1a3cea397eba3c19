package rietest

import (
	"os"
	"syscall"
)

// sysProcAttr puts the emulator in a process group of its own, with the
// function it starts, and has the kernel kill the emulator if the test
// process dies before it can stop it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the emulator's process group: the emulator and the
// function (and QEMU) it started.
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
