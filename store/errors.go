package store

import "errors"

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
	// ErrFormat means the file was written by an incompatible store format.
	ErrFormat = errors.New("unsupported store format")
)
