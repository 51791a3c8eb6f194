package store

import (
	"os"
	"runtime"
	"strconv"
)

// minMmap is the least address space a writable store maps up front.
const minMmap = 1 << 30

// initialMmapSize is the bbolt mmap size a store opened for writing starts
// with: twice the file, at least 1 GiB. bbolt must re-map the file to grow
// past its mapping, and a re-map waits for every read transaction to end:
// with room mapped ahead, a long snapshot (a reconcile, a backup) does not
// stall MERGEs and micro-batches until the file has grown that much. The
// mapping beyond the file's end is address space only. Windows (where
// bbolt grows the file to its mapping) and 32-bit systems keep bbolt's
// default.
func initialMmapSize(path string, readOnly bool) int {
	if readOnly || runtime.GOOS == "windows" || strconv.IntSize < 64 {
		return 0
	}
	size := int64(0)
	if info, err := os.Stat(path); err == nil {
		size = info.Size()
	}
	return int(max(2*size, minMmap))
}
