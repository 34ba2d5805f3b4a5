package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill the bridge when the test binary dies
// (a panic or a -timeout abort skips TestMain's cleanup), so no server is
// ever left behind listening.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
