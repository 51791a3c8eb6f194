//go:build linux

package store

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped tells the kernel that the pages of bbolt's read-only file
// mapping need not stay in this process's resident set: they stay in the
// page cache, and the next read of one maps it back in (a minor fault). A
// long read of the file (a catch-up over gigabytes of change feed, whose
// history walks touch older chunks at random) then keeps the resident set
// bounded instead of growing to the bytes read. bbolt writes through
// write(2), never through the mapping, so nothing is lost. Errors are
// ignored: it is advice.
func releaseMapped(tx *bolt.Tx) {
	data := tx.DB().Info().Data
	if data == 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, data, uintptr(tx.Size()), syscall.MADV_DONTNEED)
}
