//go:build unix

package storetest

import (
	"os"
	"syscall"
)

// KilledBySIGKILL reports whether a child process (a crash test's) ended
// by SIGKILL, as the test meant, rather than by exiting.
func KilledBySIGKILL(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
