package supervise

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The agent process is started with a parent-death signal: should the
// sidecar die without stopping it (kill -9, an OOM kill, a crash), the
// kernel kills the agent too, so the next sidecar does not run a second
// copy beside it.
//
// Linux sends that signal when the thread that forked the child exits, not
// when the process does, and the Go runtime may end an OS thread (one left
// locked by a goroutine that returned). So every start runs on one
// goroutine locked to its thread, which stays alive until every process it
// started has been waited for.
const parentDeathSignal = syscall.SIGKILL

type forkJob struct {
	cmd  *exec.Cmd
	done chan error
}

var forker struct {
	mu    sync.Mutex
	jobs  chan forkJob
	users int // processes started on the thread and not yet waited for, plus starts under way
}

func setProcAttr(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = parentDeathSignal
}

// startProcess starts cmd on the dedicated forking thread and registers its
// pid with the orphan reaper before the reaper can look at it. The caller
// must call releaseProcess once cmd.Wait has returned.
func startProcess(cmd *exec.Cmd) error {
	forker.mu.Lock()
	if forker.jobs == nil {
		forker.jobs = make(chan forkJob)
		go forkThread(forker.jobs)
	}
	forker.users++
	jobs := forker.jobs
	forker.mu.Unlock()

	job := forkJob{cmd: cmd, done: make(chan error, 1)}
	jobs <- job
	err := <-job.done
	if err != nil {
		releaseThread()
	}
	return err
}

// releaseProcess is called once the process started by startProcess has
// been waited for.
func releaseProcess(cmd *exec.Cmd) {
	reaper.mu.Lock()
	delete(reaper.tracked, cmd.Process.Pid)
	reaper.mu.Unlock()
	releaseThread()
}

func releaseThread() {
	forker.mu.Lock()
	defer forker.mu.Unlock()
	forker.users--
	if forker.users == 0 {
		// Nothing started on the thread is alive: let it end.
		close(forker.jobs)
		forker.jobs = nil
	}
}

// forkThread starts processes on one locked OS thread. It returns (and, still
// locked, ends the thread) only when no process it started is alive.
func forkThread(jobs <-chan forkJob) {
	runtime.LockOSThread()
	for job := range jobs {
		// The reaper must not reap the new process before it is tracked:
		// hold its lock across the fork.
		reaper.mu.Lock()
		err := job.cmd.Start()
		if err == nil {
			reaper.tracked[job.cmd.Process.Pid] = true
		}
		reaper.mu.Unlock()
		job.done <- err
	}
}

var reaper = struct {
	mu      sync.Mutex
	tracked map[int]bool // pids whose exit status belongs to a cmd.Wait
	once    sync.Once
}{tracked: map[int]bool{}}

// ReapOrphans makes the sidecar reap the processes orphaned below it: as
// PID 1 (a container's entrypoint) every orphan of the container is
// re-parented to it; otherwise it becomes a child subreaper, so the
// orphaned descendants of the agent come to it instead of to init. Zombies
// are reaped as they appear; the agent's own exit status is left to the
// supervisor. It reports whether the sidecar is PID 1. Call it once, early,
// from the program (not from tests: it changes the whole process).
func ReapOrphans() (pid1 bool, err error) {
	pid1 = os.Getpid() == 1
	reaper.once.Do(func() {
		if !pid1 {
			if err = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				return
			}
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGCHLD)
		go func() {
			retry := time.NewTimer(time.Hour)
			retry.Stop()
			for {
				if reapUntracked() {
					retry.Reset(50 * time.Millisecond)
				}
				select {
				case <-sigs:
				case <-retry.C:
				}
			}
		}()
	})
	return pid1, err
}

// reapUntracked reaps every exited child whose status no cmd.Wait is
// waiting for. It peeks with WNOWAIT first, so a tracked child stays a
// zombie for its owner; it reports whether such a child blocked the view
// (then it should run again shortly, once the owner has reaped it).
func reapUntracked() (blocked bool) {
	for {
		reaper.mu.Lock()
		pid, err := peekExited()
		if err != nil || pid == 0 {
			reaper.mu.Unlock()
			return false
		}
		if reaper.tracked[pid] {
			reaper.mu.Unlock()
			return true
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		reaper.mu.Unlock()
	}
}

// peekExited returns the pid of an exited child without reaping it, 0 when
// none has exited.
func peekExited() (int, error) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return siginfoPid(&info), nil
	}
}

// siginfoPid reads si_pid: the first field of the union that follows three
// ints, aligned to a pointer.
func siginfoPid(info *unix.Siginfo) int {
	off := (3*4 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), off)))
}

// procIsOurs reports whether /proc names this process's pid namespace's
// pids. /proc of another namespace (not remounted for ours) names other
// pids: then a zombie member of a group counts as alive.
var procIsOurs = sync.OnceValue(func() bool {
	self, err := os.Readlink("/proc/self")
	return err == nil && self == strconv.Itoa(os.Getpid())
})

// groupAlive reports whether process group pgid still has a member that
// has not exited (a zombie waiting for its parent to reap it does not
// count). A group's id is not reused while it has members.
func groupAlive(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	if !procIsOurs() {
		return true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		state, pgrp, ok := statStateGroup(b)
		if ok && pgrp == pgid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// statStateGroup reads the state and process group of /proc/PID/stat:
// "pid (comm) state ppid pgrp …", where comm may hold spaces and parens.
func statStateGroup(b []byte) (state byte, pgrp int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], n, true
}
