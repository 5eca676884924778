package consultest

import "syscall"

// sysProcAttr makes the kernel kill Consul if the test binary dies without
// running its cleanups (a panic or a test timeout), so no agent is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
