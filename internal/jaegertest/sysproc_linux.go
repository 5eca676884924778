package jaegertest

import "syscall"

// sysProcAttr makes the kernel kill Jaeger if the test binary dies without
// running its cleanups (a panic or a test timeout), so none is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
