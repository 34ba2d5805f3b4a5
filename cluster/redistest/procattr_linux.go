package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill redis-server when the test binary
// dies (a timed-out test panics past its cleanups).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
