package store

import (
	"errors"
	"fmt"
)

// Errors returned by the store. Callers test them with errors.Is.
var (
	// ErrLocked means another process holds the data directory's bbolt file.
	ErrLocked = errors.New("the data directory is in use by another upicdc process (bbolt file lock not released in time)")
	// ErrNoStore means a read-only open found no store file.
	ErrNoStore = errors.New("no upicdc store here yet (run `upicdc ingest` or `upicdc demo` first)")
	// ErrAlreadyIngested means a file with the same sha256 was already merged.
	ErrAlreadyIngested = errors.New("content already ingested")
	// ErrUnknownTable means a table name is not one of upicdc's tables.
	ErrUnknownTable = errors.New("unknown table")
	// ErrVersionNotFound means a version asked for does not exist (yet).
	ErrVersionNotFound = errors.New("version not found")
	// ErrNotFound means a row key has no history in the table.
	ErrNotFound = errors.New("not found")
	// ErrOutOfOrder means a MergeTx or ProcessTx was fed keys out of order.
	ErrOutOfOrder = errors.New("keys written out of order")
	// ErrCorrupt means a stored value could not be decoded.
	ErrCorrupt = errors.New("corrupt store value")
	// ErrBelowHorizon means a read asked for versions a vacuum removed (see
	// BelowHorizonError).
	ErrBelowHorizon = errors.New("below the retention horizon")
	// ErrNoConsumer means RemoveConsumer found no consumer of that name.
	ErrNoConsumer = errors.New("no such registered consumer")
	// ErrFormat means the file was written by an incompatible store format.
	ErrFormat = errors.New("unsupported store format")
)

// ErrDamaged means the store file is damaged: what bbolt wrote is not what is
// on disk (cut short, overwritten, zeroed). Open returns a *DamagedError,
// which matches ErrDamaged with errors.Is.
var ErrDamaged = errors.New("store file is damaged")

// DamagedError says which store file is damaged and what was found. No
// command reads or writes a damaged file: the only remedy is a backup.
type DamagedError struct {
	// Path is the bbolt file.
	Path string
	// Empty means the file has no bytes at all.
	Empty bool
	// Problems are what the integrity check found, one finding each, at most
	// maxProblems of them; More counts the findings left out.
	Problems []string
	More     int
}

func (e *DamagedError) Error() string {
	if e.Empty {
		return fmt.Sprintf("%s is empty: not a upicdc store (restore it from a backup)", e.Path)
	}
	what := "unreadable"
	if len(e.Problems) > 0 {
		what = e.Problems[0]
	}
	if n := len(e.Problems) - 1 + e.More; n > 0 {
		what += fmt.Sprintf(", and %d more problem(s)", n)
	}
	return fmt.Sprintf("%s is damaged (%s): restore it from a backup; `upicdc check` tells more", e.Path, what)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }
