package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the bridge when the demo dies without
// its cleanup (SIGKILL, a crash), so no bridge is left listening.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
