//go:build !linux

package child

import "syscall"

// childAttr returns nil: only Linux kills a child when its parent dies;
// elsewhere the deferred stops are all there is.
func childAttr() *syscall.SysProcAttr {
	return nil
}
