//go:build unix

package daemon

import (
	"os"
	"syscall"
)

// openNoFollow opens path for reading. It fails on a symbolic link
// (O_NOFOLLOW) rather than open what the link points to, and does not block
// on a FIFO (O_NONBLOCK; a regular file ignores it).
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
