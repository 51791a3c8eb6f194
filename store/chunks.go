package store

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// chunkTarget is the size at which a change-feed chunk is written out. Big
// enough that a 100k-row commit is a few dozen sequential puts, small enough
// that readers stream a version without holding it whole.
const chunkTarget = 64 << 10

// chunkWriter appends records to the chunks of one version in an
// append-only bucket (cdf or stale).
type chunkWriter struct {
	b       *bolt.Bucket
	version int64
	n       uint32
	rows    int64
	enc     encoder
}

func newChunkWriter(b *bolt.Bucket, version int64) *chunkWriter {
	b.FillPercent = 1.0 // keys only ever grow: pack pages full
	return &chunkWriter{b: b, version: version}
}

// next is called after each record is encoded into w.enc.
func (w *chunkWriter) next() error {
	w.rows++
	if len(w.enc.b) >= chunkTarget {
		return w.flush()
	}
	return nil
}

func (w *chunkWriter) flush() error {
	if len(w.enc.b) == 0 {
		return nil
	}
	// bbolt keeps a reference to the value until commit: hand it a copy-free
	// buffer that we never touch again.
	if err := w.b.Put(chunkKey(w.version, w.n), w.enc.b); err != nil {
		return fmt.Errorf("write chunk %d of version %d: %w", w.n, w.version, err)
	}
	w.n++
	w.enc.b = make([]byte, 0, chunkTarget+256)
	return nil
}

// forChunks calls fn with each chunk of versions from..to in order.
func forChunks(ctx context.Context, b *bolt.Bucket, from, to int64, fn func(version int64, chunk []byte) error) error {
	c := b.Cursor()
	for k, v := c.Seek(chunkKey(from, 0)); k != nil; k, v = c.Next() {
		ver := int64(binary.BigEndian.Uint64(k[:8]))
		if ver > to {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ver, v); err != nil {
			return err
		}
	}
	return nil
}

// pos is where the next record will start.
func (w *chunkWriter) pos() imageRef {
	return imageRef{version: w.version, chunk: w.n, offset: uint32(len(w.enc.b))}
}

// Raw change record: type, flags, transaction id, row body, then for
// insert/update_postimage/delete the pointer to the transaction's previous
// image record (if any), and for delete the delete's transaction_time.
func (e *encoder) rawChange(t ChangeType, r *Row, prev *imageRef, deletedAt int64) {
	e.byte(byte(t))
	var flags byte
	if prev != nil {
		flags |= flagHasPrev
	}
	e.byte(flags)
	e.str(r.TransactionID)
	e.rowBody(r)
	if prev != nil {
		e.ref(*prev)
	}
	if t == Delete {
		e.int(deletedAt)
	}
}

func (d *decoder) rawRecord() (rawImage, error) {
	var img rawImage
	img.typ = ChangeType(d.byte())
	flags := d.byte()
	img.row.TransactionID = d.str()
	d.rowBody(&img.row)
	if flags&flagHasPrev != 0 {
		img.hasPrev = true
		img.prev = d.ref()
	}
	if img.typ == Delete {
		img.deletedAt = d.int()
	}
	if d.err == nil && (img.typ < Insert || img.typ > Delete) {
		d.err = fmt.Errorf("%w: change type %d", ErrCorrupt, img.typ)
	}
	return img, d.err
}

func decodeRawChunk(chunk []byte, fn func(ChangeType, Row) error) error {
	d := decoder{b: chunk}
	for len(d.b) > 0 {
		img, err := d.rawRecord()
		if err != nil {
			return err
		}
		if err := fn(img.typ, img.row); err != nil {
			return err
		}
	}
	return nil
}

// Aggregate change record: type, merchant id, aggregate body.
func (e *encoder) aggChange(t ChangeType, a *Aggregate) {
	e.byte(byte(t))
	e.str(a.MerchantID)
	e.agg(a)
}

func decodeAggChunk(chunk []byte, fn func(ChangeType, Aggregate) error) error {
	d := decoder{b: chunk}
	for len(d.b) > 0 {
		t := ChangeType(d.byte())
		var a Aggregate
		a.MerchantID = d.str()
		d.agg(&a)
		if d.err != nil {
			return d.err
		}
		if err := fn(t, a); err != nil {
			return err
		}
	}
	return nil
}

// Stale record: pos, op, row with id, stored time.
func (e *encoder) staleRow(s *StaleRow) {
	e.uint(uint64(s.Pos))
	e.str(s.Op)
	e.str(s.Row.TransactionID)
	e.rowBody(&s.Row)
	e.int(s.StoredTime)
}

func decodeStaleChunk(chunk []byte, fn func(StaleRow) error) error {
	d := decoder{b: chunk}
	for len(d.b) > 0 {
		var s StaleRow
		s.Pos = int(d.uint())
		s.Op = d.str()
		s.Row.TransactionID = d.str()
		d.rowBody(&s.Row)
		s.StoredTime = d.int()
		if d.err != nil {
			return d.err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// clampRange checks from..to against a table's latest version; to < 0 or past
// the latest means "to the latest".
func clampRange(tb *bolt.Bucket, from, to int64) (int64, int64, error) {
	last, err := lastCommit(tb)
	if err != nil {
		return 0, 0, err
	}
	if from < 0 {
		return 0, 0, fmt.Errorf("from version %d: must be >= 0", from)
	}
	if from > last.Version {
		return 0, 0, fmt.Errorf("from version %d: %w (latest is %d)", from, ErrVersionNotFound, last.Version)
	}
	if to < 0 || to > last.Version {
		to = last.Version
	}
	if to < from {
		return 0, 0, fmt.Errorf("to version %d is before from version %d", to, from)
	}
	return from, to, nil
}

// changeChunks streams table t's change-feed chunks of versions from..to
// inside tx, each with its version's commit timestamp.
func changeChunks(ctx context.Context, tx *bolt.Tx, t Table, from, to int64, fn func(ver, ts int64, chunk []byte) error) error {
	tb, err := tableBucket(tx, t)
	if err != nil {
		return err
	}
	from, to, err = clampRange(tb, from, to)
	if err != nil {
		return err
	}
	times := commitTimes(tb)
	return forChunks(ctx, tb.Bucket(subCDF), from, to, func(ver int64, chunk []byte) error {
		ts, err := times(ver)
		if err != nil {
			return err
		}
		return fn(ver, ts, chunk)
	})
}

// rawChanges streams the raw change feed of from..to inside tx.
func rawChanges(ctx context.Context, tx *bolt.Tx, from, to int64, fn func(Change) error) error {
	return changeChunks(ctx, tx, RawTable, from, to, func(ver, ts int64, chunk []byte) error {
		return decodeRawChunk(chunk, func(ct ChangeType, r Row) error {
			return fn(Change{Type: ct, Version: ver, Timestamp: ts, Row: r})
		})
	})
}

// commitTimes returns a memoised lookup of a version's commit timestamp.
func commitTimes(tb *bolt.Bucket) func(int64) (int64, error) {
	lastV, lastT := int64(-1), int64(0)
	return func(v int64) (int64, error) {
		if v == lastV {
			return lastT, nil
		}
		t := tb.Bucket(subTimes).Get(be64(v))
		if len(t) != 8 {
			return 0, fmt.Errorf("version %d: %w", v, ErrVersionNotFound)
		}
		lastV, lastT = v, int64(beUint(t))
		return lastT, nil
	}
}

// Changes streams the raw table's change feed for versions from..to
// (inclusive; to < 0 means the latest) in commit order. Within a version,
// rows are in transaction_id order, a transaction's rows in applied order.
func (db *DB) Changes(ctx context.Context, from, to int64, fn func(Change) error) error {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return rawChanges(ctx, tx, from, to, fn)
	})
	if err != nil {
		return fmt.Errorf("changes %s: %w", RawTable, err)
	}
	return nil
}

// AggChanges streams the aggregated table's change feed for from..to.
func (db *DB) AggChanges(ctx context.Context, from, to int64, fn func(AggChange) error) error {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return changeChunks(ctx, tx, AggTable, from, to, func(ver, ts int64, chunk []byte) error {
			return decodeAggChunk(chunk, func(ct ChangeType, a Aggregate) error {
				return fn(AggChange{Type: ct, Version: ver, Timestamp: ts, Agg: a})
			})
		})
	})
	if err != nil {
		return fmt.Errorf("changes %s: %w", AggTable, err)
	}
	return nil
}

// StaleRows returns the rows a MERGE at version skipped as out of order.
func (db *DB) StaleRows(ctx context.Context, version int64) ([]StaleRow, error) {
	var out []StaleRow
	err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		if _, err := getCommit(tb, version); err != nil {
			return err
		}
		return forChunks(ctx, tb.Bucket(subStale), version, version, func(_ int64, chunk []byte) error {
			return decodeStaleChunk(chunk, func(s StaleRow) error {
				out = append(out, s)
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("stale rows of version %d: %w", version, err)
	}
	return out, nil
}
