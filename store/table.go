package store

import (
	"fmt"
	"time"
)

// Table names a table in the store.
type Table string

// upicdc's two tables.
const (
	RawTable Table = "raw_upi_transactions_v1"
	AggTable Table = "aggregated_upi_transactions"
)

// Tables lists every table, raw first.
func Tables() []Table { return []Table{RawTable, AggTable} }

// ParseTable checks that name is one of upicdc's tables.
func ParseTable(name string) (Table, error) {
	for _, t := range Tables() {
		if string(t) == name {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w %q (tables: %s, %s)", ErrUnknownTable, name, RawTable, AggTable)
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

// Change is one change-feed row of the raw table.
type Change struct {
	Type ChangeType
	// Version is _commit_version.
	Version int64
	// Timestamp is _commit_timestamp in milliseconds since the Unix epoch.
	Timestamp int64
	Row       Row
}

// Aggregate is one row of aggregated_upi_transactions: a merchant's totals.
// Counts are of the merchant's live (not deleted) transactions by current status.
type Aggregate struct {
	MerchantID     string
	TotalSales     Paise
	TotalRefunds   Paise // ≤ 0: refunds are subtracted
	NetSales       Paise
	Initiated      int64
	Completed      int64
	Failed         int64
	Refunded       int64
	LastRawVersion int64 // the raw table version that last changed this row
}

// AggChange is one change-feed row of the aggregated table.
type AggChange struct {
	Type      ChangeType
	Version   int64
	Timestamp int64 // milliseconds since the Unix epoch
	Agg       Aggregate
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
	Step      uint32 // order of images within one version (a file may step a row several times)
	Timestamp int64  // commit timestamp, ms
	Deleted   bool   // a tombstone: Row is the last image, DeletedAt the delete's transaction_time
	DeletedAt int64
	Row       Row
}

// StaleRow is an input row a MERGE skipped because the stored row is newer.
type StaleRow struct {
	Pos        int    // line (CSV/JSONL) or row (Parquet) in the source file
	Op         string // upsert or delete
	Row        Row
	StoredTime int64 // transaction_time (or delete time) of the stored row that won
}
