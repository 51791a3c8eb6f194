package delta

import "errors"

// Errors callers can test for with errors.Is.
var (
	// ErrNotDeltaTable means the directory has no _delta_log with commits or checkpoints.
	ErrNotDeltaTable = errors.New("not a Delta table")
	// ErrVersionNotFound means a version outside the table's readable range was asked for.
	ErrVersionNotFound = errors.New("version not found")
	// ErrChangeDataNotEnabled means delta.enableChangeDataFeed was not true for a version in the range.
	ErrChangeDataNotEnabled = errors.New("change data feed not enabled")
	// ErrUnsupported means the table uses a Delta feature this reader does not implement.
	ErrUnsupported = errors.New("unsupported Delta feature")
	// ErrInvalidRange means a change feed range with from > to.
	ErrInvalidRange = errors.New("invalid version range")
	// ErrConflict means another writer created a commit this export meant to write.
	ErrConflict = errors.New("concurrent Delta commit")
	// ErrNotOurTable means the export directory holds a table this store did not write.
	ErrNotOurTable = errors.New("export directory does not match the store")
)
