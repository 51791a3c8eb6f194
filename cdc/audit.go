package cdc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/upicdc/upicdc/store"
)

// AuditTable is the pipeline audit: one row per file outcome (merged,
// duplicate, empty, rejected) and per reconcile run. It is a source table:
// each row is its own commit, and the row of a merged file is written in
// the same bbolt transaction as the file's MERGE.
const AuditTable = "pipeline_audit"

// The outcomes an audit row records.
const (
	OutcomeMerged    = "merged"
	OutcomeDuplicate = "duplicate"
	OutcomeEmpty     = "empty"
	OutcomeRejected  = "rejected"
	OutcomeReconcile = "reconcile"
)

// AuditOutcomes is every outcome, in the order the schema's enum has them.
var AuditOutcomes = []string{OutcomeMerged, OutcomeDuplicate, OutcomeEmpty, OutcomeRejected, OutcomeReconcile}

// MaxAuditReason bounds an audit row's reason (bytes, cut on a rune).
const MaxAuditReason = 1024

// Audit is one pipeline_audit row.
type Audit struct {
	// ID is the audit table version the row was committed as (the key).
	ID         int64
	RecordedAt time.Time
	Outcome    string
	// Origin says who took the file: "ingest", "inbox" or "reconcile".
	Origin string
	File   string
	SHA256 string // hex; empty when the file was not read
	Bytes  int64
	// RowsRead is the number of data rows parsed from the file.
	RowsRead                                int64
	Inserted, Updated, Deleted, Stale, NoOp int64
	// RawVersion is the raw table version the file became; 0 if none.
	RawVersion int64
	// Reason says why a file was rejected (or what a reconcile found).
	Reason string
	// FileTotals sums the amounts of the file's rows by their status; Applied
	// those of the rows the MERGE inserted or updated (deletes and stale or
	// no-op rows are not applied amounts).
	FileTotals, Applied StatusTotals
	// Differences is a reconcile run's number of differing rows.
	Differences int64
	Duration    time.Duration
}

// StatusTotals are amounts summed per transaction status.
type StatusTotals struct {
	Initiated, Completed, Failed, Refunded store.Paise
}

// Add adds amount to status's total (a row without a status, a delete
// that left it empty, adds nothing).
func (s *StatusTotals) Add(st Status, amount store.Paise) {
	switch st {
	case StatusInitiated:
		s.Initiated += amount
	case StatusCompleted:
		s.Completed += amount
	case StatusFailed:
		s.Failed += amount
	case StatusRefunded:
		s.Refunded += amount
	}
}

// FileTotals sums a parsed file's rows by status.
func FileTotals(rows []Input) StatusTotals {
	var t StatusTotals
	for i := range rows {
		t.Add(rows[i].Row.Status, rows[i].Row.Amount)
	}
	return t
}

const (
	auditColID = iota
	auditColRecordedAt
	auditColOutcome
	auditColOrigin
	auditColFile
	auditColSHA256
	auditColBytes
	auditColRowsRead
	auditColInserted
	auditColUpdated
	auditColDeleted
	auditColStale
	auditColNoOp
	auditColRawVersion
	auditColReason
	auditColFileInitiated
	auditColFileCompleted
	auditColFileFailed
	auditColFileRefunded
	auditColAppliedInitiated
	auditColAppliedCompleted
	auditColAppliedFailed
	auditColAppliedRefunded
	auditColDifferences
	auditColDurationUS
	auditNumColumns
)

// AuditDef declares the audit table to the store.
func AuditDef() store.TableDef {
	money := func(name, doc string) store.Column { return store.Column{Name: name, Type: store.Money, Doc: doc} }
	count := func(name, doc string) store.Column { return store.Column{Name: name, Type: store.Int, Doc: doc} }
	return store.TableDef{
		Name: AuditTable,
		Doc:  "one row per file outcome (merged, duplicate, empty, rejected) and per reconcile run",
		Schema: store.Schema{KeyColumns: 1, Columns: []store.Column{
			count("audit_id", "the audit table version the row was committed as (the key)"),
			{Name: "recorded_at", Type: store.Timestamp, Doc: "when the outcome was recorded"},
			{Name: "outcome", Type: store.Enum, Enum: AuditOutcomes, Doc: "merged, duplicate, empty, rejected or reconcile"},
			{Name: "origin", Type: store.String, Doc: "ingest, inbox or reconcile"},
			{Name: "file", Type: store.String, Doc: "the file's base name (empty for a reconcile run)"},
			{Name: "sha256", Type: store.String, Nullable: true, Doc: "the file's sha256 (null when it was not read)"},
			count("bytes", "the file's size"),
			count("rows_read", "data rows parsed from the file"),
			count("inserted", "rows the MERGE inserted"),
			count("updated", "rows the MERGE updated"),
			count("deleted", "rows the MERGE deleted"),
			count("stale", "input rows skipped as older than the stored row"),
			count("noop", "input rows that changed nothing"),
			{Name: "raw_version", Type: store.Int, Nullable: true, Doc: "the raw table version the file became (null if none)"},
			{Name: "reason", Type: store.String, Nullable: true, Doc: "why the file was rejected, or what a reconcile found"},
			money("file_initiated", "sum of the file's initiated amounts"),
			money("file_completed", "sum of the file's completed amounts"),
			money("file_failed", "sum of the file's failed amounts"),
			money("file_refunded", "sum of the file's refunded amounts"),
			money("applied_initiated", "sum of the initiated amounts the MERGE applied"),
			money("applied_completed", "sum of the completed amounts the MERGE applied"),
			money("applied_failed", "sum of the failed amounts the MERGE applied"),
			money("applied_refunded", "sum of the refunded amounts the MERGE applied"),
			count("differences", "a reconcile run's differing rows (0 for files)"),
			count("duration_us", "how long the outcome took, in microseconds"),
		}},
	}
}

// Values returns a as a store row (ID is the key).
func (a *Audit) Values() store.Row {
	r := make(store.Row, auditNumColumns)
	r[auditColID] = store.I(a.ID)
	r[auditColRecordedAt] = store.T(a.RecordedAt)
	r[auditColOutcome] = store.S(a.Outcome)
	r[auditColOrigin] = store.S(a.Origin)
	r[auditColFile] = store.S(a.File)
	r[auditColSHA256] = store.Null()
	if a.SHA256 != "" {
		r[auditColSHA256] = store.S(a.SHA256)
	}
	r[auditColBytes] = store.I(a.Bytes)
	r[auditColRowsRead] = store.I(a.RowsRead)
	r[auditColInserted] = store.I(a.Inserted)
	r[auditColUpdated] = store.I(a.Updated)
	r[auditColDeleted] = store.I(a.Deleted)
	r[auditColStale] = store.I(a.Stale)
	r[auditColNoOp] = store.I(a.NoOp)
	r[auditColRawVersion] = store.Null()
	if a.RawVersion > 0 {
		r[auditColRawVersion] = store.I(a.RawVersion)
	}
	r[auditColReason] = store.Null()
	if a.Reason != "" {
		r[auditColReason] = store.S(boundReason(a.Reason))
	}
	r[auditColFileInitiated] = store.M(a.FileTotals.Initiated)
	r[auditColFileCompleted] = store.M(a.FileTotals.Completed)
	r[auditColFileFailed] = store.M(a.FileTotals.Failed)
	r[auditColFileRefunded] = store.M(a.FileTotals.Refunded)
	r[auditColAppliedInitiated] = store.M(a.Applied.Initiated)
	r[auditColAppliedCompleted] = store.M(a.Applied.Completed)
	r[auditColAppliedFailed] = store.M(a.Applied.Failed)
	r[auditColAppliedRefunded] = store.M(a.Applied.Refunded)
	r[auditColDifferences] = store.I(a.Differences)
	r[auditColDurationUS] = store.I(a.Duration.Microseconds())
	return r
}

// AuditOf converts a store row of the audit table back.
func AuditOf(r store.Row) Audit {
	return Audit{
		ID: r[auditColID].Int, RecordedAt: time.UnixMicro(r[auditColRecordedAt].Int).UTC(),
		Outcome: r[auditColOutcome].Str, Origin: r[auditColOrigin].Str, File: r[auditColFile].Str,
		SHA256: r[auditColSHA256].Str, Bytes: r[auditColBytes].Int, RowsRead: r[auditColRowsRead].Int,
		Inserted: r[auditColInserted].Int, Updated: r[auditColUpdated].Int, Deleted: r[auditColDeleted].Int,
		Stale: r[auditColStale].Int, NoOp: r[auditColNoOp].Int, RawVersion: r[auditColRawVersion].Int,
		Reason: r[auditColReason].Str,
		FileTotals: StatusTotals{
			Initiated: store.Paise(r[auditColFileInitiated].Int), Completed: store.Paise(r[auditColFileCompleted].Int),
			Failed: store.Paise(r[auditColFileFailed].Int), Refunded: store.Paise(r[auditColFileRefunded].Int),
		},
		Applied: StatusTotals{
			Initiated: store.Paise(r[auditColAppliedInitiated].Int), Completed: store.Paise(r[auditColAppliedCompleted].Int),
			Failed: store.Paise(r[auditColAppliedFailed].Int), Refunded: store.Paise(r[auditColAppliedRefunded].Int),
		},
		Differences: r[auditColDifferences].Int,
		Duration:    time.Duration(r[auditColDurationUS].Int) * time.Microsecond,
	}
}

// boundReason cuts s to MaxAuditReason bytes on a rune boundary.
func boundReason(s string) string {
	if len(s) <= MaxAuditReason {
		return s
	}
	cut := MaxAuditReason - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// HasAudit reports whether db has the audit table (a store opened with
// the raw table alone does not, and records no audit).
func HasAudit(db *store.DB) bool {
	_, err := db.Table(AuditTable)
	return err == nil
}

// writeAudit enters a as the audit table's next version inside tx.
func writeAudit(tx *store.WriteTx, a *Audit) error {
	w, err := tx.Table(AuditTable, store.WriteMeta{
		Operation:  "WRITE",
		Parameters: map[string]string{"mode": "Append", "outcome": a.Outcome, "file": a.File},
	})
	if err != nil {
		return err
	}
	a.ID = w.Version()
	return w.Insert(a.Values())
}

// RecordAudit commits a as one row of the audit table (its own commit);
// a.ID is set to the version it became. A store without the audit table
// records nothing.
func RecordAudit(ctx context.Context, db *store.DB, a *Audit) error {
	if !HasAudit(db) {
		return nil
	}
	if a.RecordedAt.IsZero() {
		a.RecordedAt = db.Now()
	}
	if _, err := db.WriteTables(ctx, func(tx *store.WriteTx) error { return writeAudit(tx, a) }); err != nil {
		return fmt.Errorf("audit %s %s: %w", a.Outcome, a.File, err)
	}
	return nil
}

// ScanAudit calls fn with every audit row, oldest first.
func ScanAudit(ctx context.Context, db *store.DB, fn func(Audit) error) error {
	_, err := db.Scan(ctx, AuditTable, -1, store.KeyRange{}, func(r store.Row) error { return fn(AuditOf(r)) })
	return err
}

// sha256Hex renders a file's sum for the audit.
func sha256Hex(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

// rejectReason is the reason an audit row gives for err: the ParseError's
// message when there is one.
func rejectReason(err error) string {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return err.Error()
}

// AuditOutcomeOK reports whether s is an outcome (or "all").
func AuditOutcomeOK(s string) bool { return s == "all" || slices.Contains(AuditOutcomes, s) }

// AuditFilter picks audit rows: recorded at or after Since (zero: any
// time), of Outcome ("" or "all": any).
type AuditFilter struct {
	Since   time.Time
	Outcome string
}

// Keep reports whether the audit table's row r passes f.
func (f AuditFilter) Keep(r store.Row) bool {
	if !f.Since.IsZero() && r[auditColRecordedAt].Int < f.Since.UnixMicro() {
		return false
	}
	return f.Outcome == "" || f.Outcome == "all" || r[auditColOutcome].Str == f.Outcome
}
