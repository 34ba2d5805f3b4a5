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

// ownGroup puts cmd in a process group of its own, so that interruptGroup
// reaches what it starts too (`go run` leaves SIGINT to the group, as a
// terminal's Ctrl-C sends it).
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// interruptGroup sends SIGINT to cmd's whole process group.
func interruptGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}
}
