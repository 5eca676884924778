//go:build !linux

package supervise

import (
	"errors"
	"os/exec"
	"syscall"
)

// Without Linux's parent-death signal and child subreapers, the agent is
// stopped with its process group when the sidecar stops, but not when the
// sidecar is killed.

func setProcAttr(*syscall.SysProcAttr) {}

func startProcess(cmd *exec.Cmd) error { return cmd.Start() }

func releaseProcess(*exec.Cmd) {}

// ReapOrphans does nothing on this platform.
func ReapOrphans() (pid1 bool, err error) { return false, nil }

// groupAlive reports whether process group pgid still has a member.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}
