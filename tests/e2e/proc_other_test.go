//go:build !linux

package e2e

import (
	"os"
	"os/exec"
)

// dieWithTest has no portable equivalent of Linux's parent-death signal;
// TestMain's cleanup stops the bridge.
func dieWithTest(*exec.Cmd) {}

// ownGroup has no portable equivalent; interruptGroup then reaches cmd only.
func ownGroup(*exec.Cmd) {}

func interruptGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Signal(os.Interrupt)
	}
}
