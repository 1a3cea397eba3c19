//go:build !linux

package rietest

import (
	"os"
	"syscall"
)

// sysProcAttr: the emulator runs on Linux only; elsewhere Start fails when
// the emulator does not run.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the emulator.
func killGroup(p *os.Process) { _ = p.Kill() }
