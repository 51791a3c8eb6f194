package cdc

import (
	"context"
	"encoding/binary"
	"fmt"
	"iter"
	"time"

	"github.com/upicdc/upicdc/store"
)

// RawTable is the raw transactions table: one row per transaction_id, the
// newest image MERGE accepted.
const RawTable = "raw_upi_transactions_v1"

// Status is a UPI transaction's status.
type Status uint8

// The statuses a transaction can have. The zero value is invalid on
// purpose, so a row that was never given a status cannot pass for
// "initiated".
const (
	StatusInvalid Status = iota
	StatusInitiated
	StatusCompleted
	StatusFailed
	StatusRefunded
)

// statusNames is also the raw table's enum of transaction_status values.
var statusNames = []string{"initiated", "completed", "failed", "refunded"}

// String returns the lower-case status name used in files and tables.
func (s Status) String() string {
	if s > StatusInvalid && int(s) <= len(statusNames) {
		return statusNames[s-1]
	}
	if s == StatusInvalid {
		return ""
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus maps a lower-case status name to its Status.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if n == s {
			return Status(i + 1), true
		}
	}
	return StatusInvalid, false
}

// Row is one row of raw_upi_transactions_v1.
type Row struct {
	TransactionID string
	UPIID         string
	MerchantID    string
	Amount        store.Paise
	// Time is transaction_time in microseconds since the Unix epoch, UTC
	// (Delta's TIMESTAMP precision).
	Time   int64
	Status Status
}

// TimeUTC returns the row's transaction_time as a time.Time in UTC.
func (r Row) TimeUTC() time.Time { return time.UnixMicro(r.Time).UTC() }

// The raw table's columns, in schema order.
const (
	rawColTransactionID = iota
	rawColUPIID
	rawColMerchantID
	rawColAmount
	rawColTime
	rawColStatus
	rawNumColumns
)

// RawDef declares the raw table to the store.
func RawDef() store.TableDef {
	return store.TableDef{
		Name: RawTable,
		Doc:  "UPI transactions as MERGEd from batch files: the newest image of each transaction_id",
		Schema: store.Schema{KeyColumns: 1, Columns: []store.Column{
			{Name: "transaction_id", Type: store.String, Doc: "the transaction's id (the key)"},
			{Name: "upi_id", Type: store.String, Doc: "payer's UPI id"},
			{Name: "merchant_id", Type: store.String, Doc: "merchant the transaction counts under"},
			{Name: "transaction_amount", Type: store.Money, Doc: "amount in rupees"},
			{Name: "transaction_time", Type: store.Timestamp, Doc: "when the status was reached"},
			{Name: "transaction_status", Type: store.Enum, Enum: statusNames, Doc: "initiated, completed, failed or refunded"},
		}},
	}
}

// Values returns r as a store row; dst (if big enough) is reused.
func (r *Row) Values(dst store.Row) store.Row {
	if cap(dst) < rawNumColumns {
		dst = make(store.Row, rawNumColumns)
	}
	dst = dst[:rawNumColumns]
	dst[rawColTransactionID] = store.Value{Str: r.TransactionID}
	dst[rawColUPIID] = store.Value{Str: r.UPIID}
	dst[rawColMerchantID] = store.Value{Str: r.MerchantID}
	dst[rawColAmount] = store.Value{Int: int64(r.Amount)}
	dst[rawColTime] = store.Value{Int: r.Time}
	dst[rawColStatus] = store.Value{Str: r.Status.String()}
	return dst
}

// RowOf converts a store row of the raw table back.
func RowOf(v store.Row) Row {
	st, _ := ParseStatus(v[rawColStatus].Str)
	return Row{TransactionID: v[rawColTransactionID].Str, UPIID: v[rawColUPIID].Str, MerchantID: v[rawColMerchantID].Str,
		Amount: store.Paise(v[rawColAmount].Int), Time: v[rawColTime].Int, Status: st}
}

// Change is one change-feed row of the raw table.
type Change struct {
	Type      store.ChangeType
	Version   int64
	Timestamp int64 // ms since the Unix epoch
	Row       Row
}

// RawChanges streams the raw table's change feed of versions from..to.
func RawChanges(ctx context.Context, db *store.DB, from, to int64, fn func(Change) error) error {
	return db.Changes(ctx, RawTable, from, to, func(c store.Change) error {
		return fn(Change{Type: c.Type, Version: c.Version, Timestamp: c.Timestamp, Row: RowOf(c.Row)})
	})
}

// ScanRows calls fn with every live raw row at version (< 0: latest), in
// transaction_id order, and returns the version read.
func ScanRows(ctx context.Context, db *store.DB, version int64, fn func(Row) error) (int64, error) {
	return db.Scan(ctx, RawTable, version, store.KeyRange{}, func(r store.Row) error { return fn(RowOf(r)) })
}

// RowVersion is one image in a transaction's history.
type RowVersion struct {
	Version   int64
	Step      uint32 // order of images within one version
	Timestamp int64  // commit timestamp, ms
	Deleted   bool   // a tombstone: Row is the last image, DeletedAt the delete's transaction_time
	DeletedAt int64
	Row       Row
}

// TxnHistory returns every image of one transaction, oldest first.
func TxnHistory(db *store.DB, id string) ([]RowVersion, error) {
	h, err := db.KeyHistory(RawTable, store.Row{{Str: id}})
	if err != nil {
		return nil, err
	}
	out := make([]RowVersion, len(h))
	for i, v := range h {
		out[i] = RowVersion{Version: v.Version, Step: v.Step, Timestamp: v.Timestamp, Deleted: v.Deleted,
			DeletedAt: v.DeletedAt, Row: RowOf(v.Row)}
	}
	return out, nil
}

// RowState is the newest image of a raw row.
type RowState struct {
	Row       Row
	Version   int64
	Deleted   bool
	DeletedAt int64 // transaction_time of the delete, when Deleted
}

// MergeStats counts what a MERGE did.
type MergeStats struct {
	Inserted, Updated, Deleted, Stale, NoOp int64
}

// MergeTx is one MERGE of the raw table: the MERGE rules' view of a
// store.TableWriter, plus the audit of stale rows and the no-op count.
type MergeTx struct {
	w             *store.TableWriter
	stale, noop   int64
	buf, buf2     store.Row
	key           store.Row
	staleEncoding []byte
	applied       StatusTotals
}

// Version is the version this MERGE commits.
func (m *MergeTx) Version() int64 { return m.w.Version() }

// Stats returns the counts so far.
func (m *MergeTx) Stats() MergeStats {
	s := m.w.Stats()
	return MergeStats{Inserted: s.Inserted, Updated: s.Updated, Deleted: s.Deleted, Stale: m.stale, NoOp: m.noop}
}

// Current returns the newest image of transaction id, if it has any.
func (m *MergeTx) Current(id string) (RowState, bool, error) {
	if m.key == nil {
		m.key = make(store.Row, 1)
	}
	m.key[0] = store.Value{Str: id}
	c, found, err := m.w.Get(m.key)
	if err != nil || !found {
		return RowState{}, found, err
	}
	return RowState{Row: RowOf(c.Row), Version: c.Version, Deleted: c.Deleted, DeletedAt: c.DeletedAt}, true, nil
}

// Prefetch announces the transactions (in id order) the MERGE is about to
// look up with Current, so that the store looks them up ahead of it (see
// store.TableWriter.Prefetch).
func (m *MergeTx) Prefetch(ids iter.Seq[string]) error {
	key := make(store.Row, 1)
	return m.w.Prefetch(func(yield func(store.Row) bool) {
		for id := range ids {
			key[0] = store.Value{Str: id}
			if !yield(key) {
				return
			}
		}
	})
}

// Insert adds a new row (or re-inserts a deleted one).
func (m *MergeTx) Insert(r Row) error {
	m.buf = r.Values(m.buf)
	m.applied.Add(r.Status, r.Amount)
	return m.w.Insert(m.buf)
}

// Update replaces before by after.
func (m *MergeTx) Update(before, after Row) error {
	m.buf = before.Values(m.buf)
	m.buf2 = after.Values(m.buf2)
	m.applied.Add(after.Status, after.Amount)
	return m.w.Update(m.buf, m.buf2)
}

// Delete removes the row whose last image is before; at is the delete's
// transaction_time, kept so an older resend cannot resurrect the row.
func (m *MergeTx) Delete(before Row, at int64) error {
	m.buf = before.Values(m.buf)
	return m.w.Delete(m.buf, at)
}

// Stale records an input row skipped because the stored row is newer.
func (m *MergeTx) Stale(s StaleRow) error {
	m.stale++
	m.staleEncoding = encodeStale(m.staleEncoding[:0], &s)
	return m.w.Note(m.staleEncoding)
}

// NoOp counts an input row that changed nothing.
func (m *MergeTx) NoOp() { m.noop++ }

// MergeMeta describes the batch a MERGE applies.
type MergeMeta struct {
	Source store.Source
	SHA256 [32]byte
	// SourceRows is the number of data rows in the file.
	SourceRows int64
	// Parameters are extra operationParameters for the commit log.
	Parameters map[string]string
	// Audit, when set (and the store has the audit table), is completed
	// with the MERGE's counts, totals and raw version and written as the
	// audit table's next version in the MERGE's own transaction.
	Audit *Audit
}

// Merge runs fn as one MERGE commit of the raw table: rows, change feed,
// stale-row audit, commit log entry and file ledger entry in one bbolt
// transaction. Content already in the ledger returns
// *store.AlreadyIngestedError.
func Merge(ctx context.Context, db *store.DB, meta MergeMeta, fn func(*MergeTx) error) (store.CommitInfo, error) {
	var m *MergeTx
	params := map[string]string{
		"predicate":  "target.transaction_id = source.transaction_id",
		"sourceFile": meta.Source.Name,
	}
	for k, v := range meta.Parameters {
		params[k] = v
	}
	metrics := map[string]int64{"numSourceRows": meta.SourceRows}
	src := meta.Source
	start := time.Now()
	cis, err := db.WriteTables(ctx, func(tx *store.WriteTx) error {
		w, err := tx.Table(RawTable, store.WriteMeta{
			Operation: "MERGE", Parameters: params, Metrics: metrics, Source: &src, SHA256: &meta.SHA256,
		})
		if err != nil {
			return err
		}
		m = &MergeTx{w: w}
		if err := fn(m); err != nil {
			return err
		}
		metrics["numTargetRowsStale"] = m.stale
		metrics["numTargetRowsNoop"] = m.noop
		if a := meta.Audit; a != nil && HasAudit(db) {
			st := m.Stats()
			a.RawVersion = w.Version()
			a.Inserted, a.Updated, a.Deleted, a.Stale, a.NoOp = st.Inserted, st.Updated, st.Deleted, st.Stale, st.NoOp
			a.Applied = m.applied
			a.Duration += time.Since(start)
			if err := writeAudit(tx, a); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return store.CommitInfo{}, err
	}
	return cis[RawTable], nil
}

// StaleRow is an input row a MERGE skipped because the stored row is newer.
type StaleRow struct {
	Pos        int    // line (CSV/JSONL) or row (Parquet) in the source file
	Op         string // upsert or delete
	Row        Row
	StoredTime int64 // transaction_time (or delete time) of the stored row that won
}

// Stale notes: pos, op, the row's fields, stored time; varint-framed.
func encodeStale(dst []byte, s *StaleRow) []byte {
	e := noteEncoder{b: dst}
	e.uint(uint64(s.Pos))
	e.str(s.Op)
	e.str(s.Row.TransactionID)
	e.str(s.Row.UPIID)
	e.str(s.Row.MerchantID)
	e.int(int64(s.Row.Amount))
	e.int(s.Row.Time)
	e.uint(uint64(s.Row.Status))
	e.int(s.StoredTime)
	return e.b
}

func decodeStale(b []byte) (StaleRow, error) {
	d := noteDecoder{b: b}
	var s StaleRow
	s.Pos = int(d.uint())
	s.Op = d.str()
	s.Row.TransactionID = d.str()
	s.Row.UPIID = d.str()
	s.Row.MerchantID = d.str()
	s.Row.Amount = store.Paise(d.int())
	s.Row.Time = d.int()
	s.Row.Status = Status(d.uint())
	s.StoredTime = d.int()
	if d.bad {
		return s, fmt.Errorf("%w: stale-row note", store.ErrCorrupt)
	}
	return s, nil
}

// StaleRows returns the rows the MERGE at version skipped as out of order.
func StaleRows(ctx context.Context, db *store.DB, version int64) ([]StaleRow, error) {
	var out []StaleRow
	err := db.Notes(ctx, RawTable, version, func(b []byte) error {
		s, err := decodeStale(b)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stale rows: %w", err)
	}
	return out, nil
}

type noteEncoder struct{ b []byte }

func (e *noteEncoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *noteEncoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *noteEncoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

type noteDecoder struct {
	b   []byte
	bad bool
}

func (d *noteDecoder) uint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *noteDecoder) int() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *noteDecoder) str() string {
	n := d.uint()
	if d.bad || uint64(len(d.b)) < n {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
