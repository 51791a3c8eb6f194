package store

import (
	"fmt"
	"time"
)

// TableDef declares a table to the store: its name and schema. The domain
// above the store declares every table once (see Open's Options.Tables);
// the store creates a table it does not have yet, with version 0.
type TableDef struct {
	Name   string
	Schema Schema
	// Doc is a one-line description of the table.
	Doc string
	// Derived tables are written by a stream (Process); the others by
	// Write (a MERGE, for example).
	Derived bool
	// Properties are the table's initial properties (Delta's
	// metaData.configuration), e.g. the parameters a derived table was
	// computed with. Process can change them.
	Properties map[string]string
}

// ChangeType is a change-feed row's _change_type.
type ChangeType uint8

// The change types Delta's change data feed uses.
const (
	Insert ChangeType = iota + 1
	UpdatePreimage
	UpdatePostimage
	Delete
)

var changeNames = [...]string{"", "insert", "update_preimage", "update_postimage", "delete"}

// String returns the Delta _change_type value.
func (c ChangeType) String() string {
	if c >= Insert && c <= Delete {
		return changeNames[c]
	}
	return fmt.Sprintf("change(%d)", uint8(c))
}

// Change is one change-feed row of a table.
type Change struct {
	Type ChangeType
	// Version is _commit_version.
	Version int64
	// Timestamp is _commit_timestamp in milliseconds since the Unix epoch.
	Timestamp int64
	Row       Row
}

// CommitInfo is one entry of a table's commit log, shaped like Delta's
// commitInfo so `history` reads like DESCRIBE HISTORY.
type CommitInfo struct {
	Version             int64             `json:"version"`
	Timestamp           int64             `json:"timestamp"` // ms since the Unix epoch
	Operation           string            `json:"operation"`
	OperationParameters map[string]string `json:"operationParameters"`
	OperationMetrics    map[string]int64  `json:"operationMetrics"`
	// Source is the batch file a MERGE came from.
	Source *Source `json:"source,omitempty"`
	// Txn is the streaming writer's idempotency identifier (Delta's txn action).
	Txn *TxnID `json:"txn,omitempty"`
}

// Time returns the commit timestamp.
func (c CommitInfo) Time() time.Time { return time.UnixMilli(c.Timestamp).UTC() }

// Source describes an ingested batch file.
type Source struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Format string `json:"format"`
}

// TxnID is Delta's txn action: appId and the batch id it committed.
type TxnID struct {
	AppID   string `json:"appId"`
	Version int64  `json:"version"`
}

// FileRecord is the ledger entry of an ingested file.
type FileRecord struct {
	SHA256     string `json:"sha256"`
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	Version    int64  `json:"version"`
	IngestedAt int64  `json:"ingestedAt"` // ms since the Unix epoch
}

// RowVersion is one image in a row's history.
type RowVersion struct {
	Version   int64
	Step      uint32 // order of images within one version (a commit may step a row several times)
	Timestamp int64  // commit timestamp, ms
	Deleted   bool   // a tombstone: Row is the last image, DeletedAt the delete's ordering value
	DeletedAt int64
	Row       Row
}
