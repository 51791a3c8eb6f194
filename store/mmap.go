package store

import (
	"os"
	"runtime"
)

// mmapHeadroom is how far beyond the file bbolt maps it at open. bbolt
// remaps the file when a write transaction grows it past the map, and a
// remap first copies every key and value of every node the transaction has
// touched from the map into the heap (node.dereference): a 1M-row MERGE
// into a new store was measured holding 240 MB of such copies at its
// commit. Mapping the file with room to grow makes that copy rare (once per
// GB the file grows): it is address space, not memory (the pages past the
// end of the file are never touched).
const mmapHeadroom = 1 << 30

// bboltAllocSize is bbolt's DB.AllocSize default (internal/common).
const bboltAllocSize = 16 << 20

// initialMmapSize is bbolt's InitialMmapSize for the file at path: its
// size plus mmapHeadroom, for a file of at least bbolt's allocation step
// (16 MB). A smaller file keeps bbolt's own map (0): bbolt grows a file whose
// map is smaller than that step to the map's size, and would make every
// small store a 1 GB (sparse) file. On Windows, where bbolt grows the file
// to the map's size at open, it is 0 too.
func initialMmapSize(path string) int {
	fi, err := os.Stat(path)
	if runtime.GOOS == "windows" || err != nil || fi.Size() < bboltAllocSize {
		return 0
	}
	return int(fi.Size() + mmapHeadroom)
}
