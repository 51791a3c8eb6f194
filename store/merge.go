package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"
)

// MergeMeta describes the batch a MERGE applies.
type MergeMeta struct {
	Source Source
	SHA256 [32]byte
	// SourceRows is the number of data rows in the file.
	SourceRows int64
	// Parameters are extra operationParameters for the commit log.
	Parameters map[string]string
}

// AlreadyIngestedError is returned by Merge for content already in the ledger.
type AlreadyIngestedError struct{ Record FileRecord }

func (e *AlreadyIngestedError) Error() string {
	return fmt.Sprintf("%v: same sha256 as %q, merged as version %d", ErrAlreadyIngested, e.Record.Name, e.Record.Version)
}

// Is makes errors.Is(err, ErrAlreadyIngested) true.
func (e *AlreadyIngestedError) Is(target error) bool { return target == ErrAlreadyIngested }

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

// MergeTx is one MERGE inside one bbolt write transaction. Rows must be
// written in non-decreasing transaction_id order (sorted puts are what make
// a big MERGE fast in a B+tree); a transaction stepped several times in one
// file gets one change record per step.
type MergeTx struct {
	ctx     context.Context
	version int64
	rows    *bolt.Bucket
	cdf     *chunkWriter
	stale   *chunkWriter
	lastID  string
	started bool
	stats   MergeStats
	keyBuf  []byte // bbolt copies keys on Put: one buffer serves every key
	// prev is where the newest image of lastID sits, for the next image's
	// back pointer; hasPrev is false for a transaction never seen before.
	prev    imageRef
	hasPrev bool
	// looked is the id of the last Current call and what it found.
	lookedID    string
	lookedRef   imageRef
	lookedFound bool
	puts        int64
	arena       []byte // values must live until commit: carve them from slabs
}

// value returns encode's output carved from a shared slab. Carving
// values out of shared slabs instead of one allocation each keeps a 100k-row
// MERGE from feeding the garbage collector 100k small objects.
func (m *MergeTx) value(encode func([]byte) []byte) []byte {
	const slab = 256 << 10
	if cap(m.arena)-len(m.arena) < 1024 {
		m.arena = make([]byte, 0, slab)
	}
	start := len(m.arena)
	m.arena = encode(m.arena)
	v := m.arena[start:len(m.arena):len(m.arena)]
	if cap(m.arena) > slab { // encode outgrew the slab: v is its own allocation now
		m.arena = m.arena[:0:0]
	}
	return v
}

// Version is the version this MERGE commits.
func (m *MergeTx) Version() int64 { return m.version }

// Stats returns the counts so far.
func (m *MergeTx) Stats() MergeStats { return m.stats }

// Current returns the newest image of transaction id, if it has any.
func (m *MergeTx) Current(id string) (RowState, bool, error) {
	m.keyBuf = append(m.keyBuf[:0], id...)
	v := m.rows.Get(m.keyBuf)
	m.lookedID, m.lookedFound = id, v != nil
	if v == nil {
		return RowState{}, false, nil
	}
	c, err := decodeRawCurrent(id, v)
	if err != nil {
		return RowState{}, false, fmt.Errorf("transaction %q: %w", id, err)
	}
	m.lookedRef = c.at
	return RowState{Row: c.row, Version: c.at.version, Deleted: c.deleted, DeletedAt: c.deletedAt}, true, nil
}

// putImage writes r's change record of type t (with, for an update, the
// preimage record before it) and makes it id's current image.
func (m *MergeTx) putImage(t ChangeType, r *Row, before *Row, deletedAt int64) error {
	id := r.TransactionID
	switch {
	case !m.started || id > m.lastID:
		if id != m.lookedID {
			// Callers look a transaction up before changing it; do it for
			// them if not, so the back pointer is never wrong.
			if _, _, err := m.Current(id); err != nil {
				return err
			}
		}
		m.started, m.lastID = true, id
		m.hasPrev, m.prev = m.lookedFound, m.lookedRef
	case id == m.lastID:
		// Another step of the same transaction: prev already points at
		// the record written for the step before.
	default:
		return fmt.Errorf("%w: %q after %q", ErrOutOfOrder, id, m.lastID)
	}
	if m.puts++; m.puts%4096 == 0 {
		if err := m.ctx.Err(); err != nil {
			return err
		}
	}
	if before != nil {
		m.cdf.enc.rawChange(UpdatePreimage, before, nil, 0)
		if err := m.cdf.next(); err != nil {
			return err
		}
	}
	var prev *imageRef
	if m.hasPrev {
		prev = &m.prev
	}
	ref := m.cdf.pos()
	m.cdf.enc.rawChange(t, r, prev, deletedAt)
	if err := m.cdf.next(); err != nil {
		return err
	}
	m.prev, m.hasPrev = ref, true
	deleted := t == Delete
	m.keyBuf = append(m.keyBuf[:0], id...)
	cur := m.value(func(b []byte) []byte { return encodeRawCurrent(b, r, ref, deleted, deletedAt) })
	if err := m.rows.Put(m.keyBuf, cur); err != nil {
		return fmt.Errorf("transaction %q: %w", id, err)
	}
	return nil
}

// Insert adds a new row (or re-inserts a deleted one).
func (m *MergeTx) Insert(r Row) error {
	m.stats.Inserted++
	return m.putImage(Insert, &r, nil, 0)
}

// Update replaces before by after.
func (m *MergeTx) Update(before, after Row) error {
	m.stats.Updated++
	return m.putImage(UpdatePostimage, &after, &before, 0)
}

// Delete removes the row whose last image is before; at is the delete's
// transaction_time, kept so an older resend cannot resurrect the row.
func (m *MergeTx) Delete(before Row, at int64) error {
	m.stats.Deleted++
	return m.putImage(Delete, &before, nil, at)
}

// Stale records an input row skipped because the stored row is newer.
func (m *MergeTx) Stale(s StaleRow) error {
	m.stats.Stale++
	m.stale.enc.staleRow(&s)
	return m.stale.next()
}

// NoOp counts an input row that changed nothing.
func (m *MergeTx) NoOp() { m.stats.NoOp++ }

// Merge runs fn as one MERGE commit of the raw table: the rows, the change
// feed, the stale-row audit, the commit log entry and the file ledger entry
// are written in one bbolt transaction, so a crash leaves all or nothing.
// Content whose sha256 is in the ledger returns *AlreadyIngestedError.
func (db *DB) Merge(ctx context.Context, meta MergeMeta, fn func(*MergeTx) error) (CommitInfo, error) {
	var ci CommitInfo
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		if v := files.Get(meta.SHA256[:]); v != nil {
			var rec FileRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: ledger entry: %v", ErrCorrupt, err)
			}
			return &AlreadyIngestedError{Record: rec}
		}
		tb, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		last, err := lastCommit(tb)
		if err != nil {
			return err
		}
		m := &MergeTx{
			ctx:     ctx,
			version: last.Version + 1,
			rows:    tb.Bucket(subRows),
			cdf:     newChunkWriter(tb.Bucket(subCDF), last.Version+1),
			stale:   newChunkWriter(tb.Bucket(subStale), last.Version+1),
		}
		if err := fn(m); err != nil {
			return err
		}
		if err := m.cdf.flush(); err != nil {
			return err
		}
		if err := m.stale.flush(); err != nil {
			return err
		}
		s := m.stats
		params := map[string]string{
			"predicate":  "target.transaction_id = source.transaction_id",
			"sourceFile": meta.Source.Name,
		}
		maps.Copy(params, meta.Parameters)
		ci = CommitInfo{
			Version:             m.version,
			Timestamp:           db.nextTimestamp(last.Timestamp),
			Operation:           "MERGE",
			OperationParameters: params,
			OperationMetrics: map[string]int64{
				"numSourceRows":           meta.SourceRows,
				"numTargetRowsInserted":   s.Inserted,
				"numTargetRowsUpdated":    s.Updated,
				"numTargetRowsDeleted":    s.Deleted,
				"numTargetRowsStale":      s.Stale,
				"numTargetRowsNoop":       s.NoOp,
				"numOutputRows":           s.Inserted + s.Updated,
				"numTargetChangeFileRows": m.cdf.rows,
			},
			Source: &meta.Source,
		}
		if err := putCommit(tb, ci); err != nil {
			return err
		}
		rec, err := json.Marshal(FileRecord{
			SHA256:     hex.EncodeToString(meta.SHA256[:]),
			Name:       meta.Source.Name,
			Size:       meta.Source.Size,
			Version:    m.version,
			IngestedAt: ci.Timestamp,
		})
		if err != nil {
			return err
		}
		return files.Put(meta.SHA256[:], rec)
	})
	if err != nil {
		var already *AlreadyIngestedError
		if errors.As(err, &already) {
			return CommitInfo{}, err
		}
		return CommitInfo{}, fmt.Errorf("merge %s: %w", meta.Source.Name, err)
	}
	db.log.Debug("merged", "file", meta.Source.Name, "version", ci.Version, "metrics", ci.OperationMetrics)
	return ci, nil
}
