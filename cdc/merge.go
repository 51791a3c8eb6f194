package cdc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/upicdc/upicdc/store"
)

// Merger MERGEs batch files into the raw table.
type Merger struct {
	db     *store.DB
	opts   ParseOptions
	log    *slog.Logger
	origin string
}

// NewMerger returns a Merger writing to db. A nil logger discards.
func NewMerger(db *store.DB, opts ParseOptions, logger *slog.Logger) *Merger {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Merger{db: db, opts: opts, log: logger, origin: "ingest"}
}

// SetOrigin names who takes the files ("ingest", "inbox") in the audit
// rows the Merger records.
func (m *Merger) SetOrigin(origin string) { m.origin = origin }

// audit records a file outcome that wrote no data table as its own audit
// commit. A failure to record it is an error of the store, never a
// *ParseError: the file is to be tried again, not refused.
func (m *Merger) audit(ctx context.Context, a *Audit, start time.Time) error {
	a.Origin = m.origin
	a.Duration = time.Since(start)
	if err := RecordAudit(ctx, m.db, a); err != nil {
		return fmt.Errorf("ingest %s: %w", a.File, err)
	}
	return nil
}

// RecordRejected records the rejection of a file its caller refused
// before the Merger saw its content (the inbox: not a regular file, not
// readable). size is the file's size as listed.
func (m *Merger) RecordRejected(ctx context.Context, name string, size int64, cause error) error {
	return m.audit(ctx, &Audit{Outcome: OutcomeRejected, File: name, Bytes: size, Reason: rejectReason(cause)}, time.Now())
}

// rejected records a refusal by the Merger and returns the refusal, or the
// store's error if it could not be recorded.
func (m *Merger) rejected(ctx context.Context, a *Audit, start time.Time, refusal error) error {
	a.Outcome, a.Reason = OutcomeRejected, rejectReason(refusal)
	if err := m.audit(ctx, a, start); err != nil {
		return err
	}
	return refusal
}

// Result says what ingesting one file did.
type Result struct {
	File string
	// Version is the raw table version the file became (0 if none).
	Version int64
	Rows    int
	Stats   MergeStats
	// Duplicate is set when the content was already ingested; Previous says
	// as which file and version.
	Duplicate bool
	Previous  store.FileRecord
	// Empty is set for a file with a header and no rows: nothing to commit.
	Empty  bool
	Commit store.CommitInfo
}

// IngestFile reads, hashes, parses and MERGEs one file. Content already in
// the ledger is reported as a duplicate without parsing it. A file refused
// for its own sake (name, size or content) gives an error wrapping a
// *ParseError; any other error (reading, the store, ctx) does not.
func (m *Merger) IngestFile(ctx context.Context, path string) (Result, error) {
	start := time.Now()
	name := filepath.Base(path)
	if _, err := FormatFromName(name); err != nil { // not worth reading
		// "ingest b.xlsx: unsupported format: …", like a ParseError below.
		a := &Audit{File: name}
		if info, err := os.Stat(path); err == nil {
			a.Bytes = info.Size()
		}
		return Result{File: name}, m.rejected(ctx, a, start, fmt.Errorf("ingest %w", &ParseError{File: name, Err: err}))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Result{File: name}, fmt.Errorf("ingest %s: %w", name, err)
	}
	return m.IngestData(ctx, name, data)
}

// IngestData is IngestFile for content the caller has already read: name is
// the file's base name (it picks the format), data its whole content. The
// daemon's inbox uses it to read files itself, without following links.
// Every error about the content or the name is a *ParseError.
func (m *Merger) IngestData(ctx context.Context, name string, data []byte) (Result, error) {
	start := time.Now()
	a := &Audit{File: name, Bytes: int64(len(data))}
	format, err := FormatFromName(name)
	if err != nil {
		return Result{File: name}, m.rejected(ctx, a, start, fmt.Errorf("ingest %w", &ParseError{File: name, Err: err}))
	}
	sum := sha256.Sum256(data)
	a.SHA256 = sha256Hex(sum)
	if rec, found, err := m.db.IngestedFile(sum); err != nil {
		return Result{File: name}, fmt.Errorf("ingest %s: %w", name, err)
	} else if found {
		m.log.Info("file already ingested", "file", name, "as", rec.Name, "version", rec.Version)
		a.Outcome, a.Reason = OutcomeDuplicate, fmt.Sprintf("same content as %s (raw version %d)", rec.Name, rec.Version)
		return Result{File: name, Duplicate: true, Previous: rec}, m.audit(ctx, a, start)
	}
	rows, err := Parse(data, name, format, m.opts)
	if err != nil {
		// A ParseError starts with the file name: "ingest bad.csv: line 3: …".
		return Result{File: name}, m.rejected(ctx, a, start, fmt.Errorf("ingest %w", err))
	}
	data = nil
	if len(rows) >= releaseRows {
		// The file's bytes and the parser's garbage go before the MERGE
		// starts building its pages (see releaseRows).
		debug.FreeOSMemory()
	}
	return m.merge(ctx, &Batch{Name: name, Format: format, Size: a.Bytes, SHA256: sum, Rows: rows}, start, true)
}

// Merge applies a parsed batch as one commit.
// The file's outcome is recorded in the audit table (a merged file's row in
// the MERGE's own transaction).
func (m *Merger) Merge(ctx context.Context, b *Batch) (Result, error) {
	return m.merge(ctx, b, time.Now(), false)
}

// releaseRows is the file size (in rows) from which ingest collects the
// garbage after parsing, after copying the rows into apply order (the
// copy and the parsed slice are both live while it runs) and once the rows
// are applied, before the commit. The collector sets its next target from
// what was live when it last ran, so one run in the middle of such a
// moment lets the heap grow well past what is live afterwards; and what is
// live peaks twice: the parsed rows beside the pages the MERGE builds, then
// those pages beside their copies the commit writes. A collection costs a
// few milliseconds per 100 MB live.
const releaseRows = 200_000

// mergeGCPercent is the collector's target (GOGC) while a big MERGE runs.
// What is live then only grows (the parsed rows beside the pages the MERGE
// builds) and the garbage beside it is small and short-lived (bbolt's
// cursors, encoding buffers), so a target below the process's own (50,
// see cmd/upicdc) bounds the heap closer to what is live for a few more
// collections: ~60 MB less at the peak of a 1M-row file for about 5% more
// time.
const mergeGCPercent = 25

// tightGC lowers the collector's target to mergeGCPercent unless it is
// lower already (or off) and returns what puts it back.
func tightGC() (restore func()) {
	prev := debug.SetGCPercent(mergeGCPercent)
	if prev <= mergeGCPercent { // lower already, or off (< 0)
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() { debug.SetGCPercent(prev) }
}

// merge MERGEs b. With own (b is the Merger's own, made from a file it
// read), b.Rows is released once applied: the commit that follows holds
// every page the MERGE dirtied in memory, and the parsed rows (about 200
// bytes a row) need not stay beside them.
func (m *Merger) merge(ctx context.Context, b *Batch, start time.Time, own bool) (Result, error) {
	res := Result{File: b.Name, Rows: len(b.Rows)}
	a := &Audit{File: b.Name, SHA256: sha256Hex(b.SHA256), Bytes: b.Size, RowsRead: int64(len(b.Rows)),
		FileTotals: FileTotals(b.Rows), Origin: m.origin}
	if len(b.Rows) == 0 {
		res.Empty = true
		m.log.Info("file has no rows; nothing to commit", "file", b.Name)
		a.Outcome = OutcomeEmpty
		return res, m.audit(ctx, a, start)
	}
	if HasAudit(m.db) {
		a.Outcome = OutcomeMerged
		a.RecordedAt = m.db.Now()
		a.Duration = time.Since(start) // the MERGE's own time is added in Merge
	}
	chunks := inApplyOrder(b.Rows, applyOrder(b.Rows))
	if own {
		b.Rows = nil // the chunks hold the rows now, and drop them once applied
		if res.Rows >= releaseRows {
			debug.FreeOSMemory() // the parsed slice (see releaseRows)
		}
	}
	meta := MergeMeta{
		Source: store.Source{
			Name:   b.Name,
			SHA256: hex.EncodeToString(b.SHA256[:]),
			Size:   b.Size,
			Format: b.Format.String(),
		},
		SHA256:     b.SHA256,
		SourceRows: int64(res.Rows),
		Audit:      a,
		Parameters: map[string]string{"sourceRows": strconv.Itoa(res.Rows)},
	}
	if res.Rows >= releaseRows {
		defer tightGC()()
	}
	ci, err := Merge(ctx, m.db, meta, func(tx *MergeTx) error {
		err := applyRows(tx, chunks, own) // with own, it drops each chunk once applied
		if own && res.Rows >= releaseRows && err == nil {
			debug.FreeOSMemory()
		}
		return err
	})
	if err != nil {
		var dup *store.AlreadyIngestedError
		if errors.As(err, &dup) {
			res.Duplicate, res.Previous = true, dup.Record
			a.Outcome, a.Reason, a.RawVersion = OutcomeDuplicate, fmt.Sprintf("same content as %s (raw version %d)", dup.Record.Name, dup.Record.Version), 0
			a.Inserted, a.Updated, a.Deleted, a.Stale, a.NoOp, a.Applied = 0, 0, 0, 0, 0, StatusTotals{}
			return res, m.audit(ctx, a, start)
		}
		return res, fmt.Errorf("ingest %s: %w", b.Name, err)
	}
	res.Version = ci.Version
	res.Commit = ci
	res.Stats = MergeStats{
		Inserted: ci.OperationMetrics["numTargetRowsInserted"],
		Updated:  ci.OperationMetrics["numTargetRowsUpdated"],
		Deleted:  ci.OperationMetrics["numTargetRowsDeleted"],
		Stale:    ci.OperationMetrics["numTargetRowsStale"],
		NoOp:     ci.OperationMetrics["numTargetRowsNoop"],
	}
	m.log.Info("file merged", "file", b.Name, "version", ci.Version, "rows", res.Rows,
		"inserted", res.Stats.Inserted, "updated", res.Stats.Updated, "deleted", res.Stats.Deleted,
		"stale", res.Stats.Stale, "noop", res.Stats.NoOp)
	return res, nil
}

// applyChunk is how many rows, in apply order, inApplyOrder copies into
// one chunk.
const applyChunk = 8192

// inApplyOrder copies rows into chunks of applyChunk rows in the order
// given. Applied in that order and dropped once applied (applyRows with
// release), the parsed rows shrink as the pages the MERGE builds grow
// instead of staying whole beside them to the end: one slice of rows can
// only be collected whole.
func inApplyOrder(rows []Input, order []int32) [][]Input {
	chunks := make([][]Input, 0, (len(order)+applyChunk-1)/applyChunk)
	for s := 0; s < len(order); s += applyChunk {
		c := make([]Input, min(applyChunk, len(order)-s))
		for j := range c {
			c[j] = rows[order[s+j]]
		}
		chunks = append(chunks, c)
	}
	return chunks
}

// applyRows runs the MERGE rules for every row of chunks, which hold the
// rows in apply order (see applyOrder): grouped by transaction. With
// release, each chunk is dropped once applied, so that it and what its rows
// alone reference (their ids, their CSV records, their JSON strings) can be
// collected while the MERGE goes on.
func applyRows(tx *MergeTx, chunks [][]Input, release bool) error {
	var (
		state  RowState
		exists bool
		curID  string
		seen   bool
	)
	err := tx.Prefetch(func(yield func(string) bool) {
		var (
			last    string
			started bool
		)
		for _, c := range chunks {
			for i := range c {
				id := c[i].Row.TransactionID
				if started && id == last {
					continue
				}
				last, started = id, true
				if !yield(id) {
					return
				}
			}
		}
	})
	if err != nil {
		return err
	}
	for n, c := range chunks {
		for i := range c {
			in := &c[i]
			id := in.Row.TransactionID
			if !seen || id != curID {
				var err error
				if state, exists, err = tx.Current(id); err != nil {
					return err
				}
				curID, seen = id, true
			}
			if err := applyOne(tx, in, &state, &exists); err != nil {
				return fmt.Errorf("transaction %q (input position %d): %w", id, in.Pos, err)
			}
		}
		if release {
			chunks[n] = nil
		}
	}
	return nil
}

// applyOne applies one input row to the transaction's state.
func applyOne(tx *MergeTx, in *Input, st *RowState, exists *bool) error {
	live := *exists && !st.Deleted
	switch in.Op {
	case OpDelete:
		if !live {
			tx.NoOp() // nothing to delete: unknown or already deleted
			return nil
		}
		if in.Row.Time < st.Row.Time {
			return tx.Stale(StaleRow{Pos: in.Pos, Op: in.Op.String(), Row: in.Row, StoredTime: st.Row.Time})
		}
		if err := tx.Delete(st.Row, in.Row.Time); err != nil {
			return err
		}
		st.Deleted, st.DeletedAt = true, in.Row.Time
		return nil
	default:
		switch {
		case !*exists:
			if err := tx.Insert(in.Row); err != nil {
				return err
			}
		case st.Deleted:
			if in.Row.Time < st.DeletedAt {
				return tx.Stale(StaleRow{Pos: in.Pos, Op: in.Op.String(), Row: in.Row, StoredTime: st.DeletedAt})
			}
			if err := tx.Insert(in.Row); err != nil {
				return err
			}
		case in.Row.Time < st.Row.Time:
			return tx.Stale(StaleRow{Pos: in.Pos, Op: in.Op.String(), Row: in.Row, StoredTime: st.Row.Time})
		case in.Row == st.Row:
			tx.NoOp()
			return nil
		default:
			if err := tx.Update(st.Row, in.Row); err != nil {
				return err
			}
		}
		*exists = true
		st.Row, st.Deleted, st.DeletedAt = in.Row, false, 0
		return nil
	}
}
