package store

import (
	"os"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped drops the file's pages from this process's page tables
// after open. A write open makes bbolt walk every page of the file through
// its map (to rebuild the freelist), which left the whole file counted in
// the process's resident set (RssFile) for as long as it ran: 1.8 GB for an
// 8M-row store. Those pages are the kernel's page cache and stay cached;
// MADV_DONTNEED only unmaps them from the process (bbolt maps the file
// read-only and writes with pwrite, so nothing is lost), and later reads
// fault back in only the pages they touch.
func releaseMapped(bdb *bolt.DB, path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		return
	}
	n := uintptr(fi.Size())
	if ps := uintptr(os.Getpagesize()); n%ps != 0 {
		n += ps - n%ps
	}
	// Advice only: an error changes nothing that matters.
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, bdb.Info().Data, n, syscall.MADV_DONTNEED)
}
