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

// Change record: type, flags, schema id, key, body, then for insert,
// update_postimage and delete the pointer to the key's previous image
// record (if any), and for delete the tombstone's ordering value.
const (
	flagHasPrev byte = 1 << 1
	flagDeleted byte = 1 << 0
)

func (e *encoder) record(s *Schema, id uint64, t ChangeType, key []byte, r Row, prev *imageRef, deletedAt int64) {
	e.byte(byte(t))
	var flags byte
	if prev != nil {
		flags |= flagHasPrev
	}
	e.byte(flags)
	e.uint(id)
	e.bytes(key)
	s.body(e, r)
	if prev != nil {
		e.ref(*prev)
	}
	if t == Delete {
		e.int(deletedAt)
	}
}

// image is one decoded change record.
type image struct {
	typ       ChangeType
	row       Row
	prev      imageRef
	hasPrev   bool
	deletedAt int64
}

func (t *table) decodeRecord(d *decoder) (image, error) { return t.decodeRecordInto(d, nil) }

// decodeRecordInto is decodeRecord with the row decoded into dst's storage
// when it is large enough.
func (t *table) decodeRecordInto(d *decoder, dst Row) (image, error) {
	var img image
	img.typ = ChangeType(d.byte())
	flags := d.byte()
	id := d.uint()
	key := d.rawBytes()
	if d.err != nil {
		return img, d.err
	}
	row, err := t.decodeInto(key, id, d, dst)
	if err != nil {
		return img, err
	}
	img.row = row
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

// decodeChunk calls fn with each record of chunk. With reuse, every row is
// decoded into the same storage: fn must not keep it.
func (t *table) decodeChunk(chunk []byte, reuse bool, fn func(ChangeType, Row) error) error {
	d := decoder{b: chunk}
	var buf Row
	for len(d.b) > 0 {
		img, err := t.decodeRecordInto(&d, buf)
		if err != nil {
			return err
		}
		if reuse {
			buf = img.row
		}
		if err := fn(img.typ, img.row); err != nil {
			return err
		}
	}
	return nil
}

// Note record: a length-prefixed opaque byte string.
func decodeNoteChunk(chunk []byte, fn func([]byte) error) error {
	d := decoder{b: chunk}
	for len(d.b) > 0 {
		b := d.rawBytes()
		if d.err != nil {
			return d.err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// clampRange checks from..to against a table's latest version; to < 0 or past
// the latest means "to the latest".
func clampRange(tb *bolt.Bucket, name string, from, to int64) (int64, int64, error) {
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
	if h := horizonOf(tb).version; from <= h && h > 0 {
		return 0, 0, &BelowHorizonError{Table: name, What: "changes from version", Version: from, Horizon: h}
	}
	return from, to, nil
}

// changes streams table t's change feed of versions from..to inside tx.
// With reuse, every Change's Row shares one storage: fn must not keep it.
func (t *table) changes(ctx context.Context, tb *bolt.Bucket, from, to int64, reuse bool, fn func(Change) error) error {
	from, to, err := clampRange(tb, t.name, from, to)
	if err != nil {
		return err
	}
	times := commitTimes(tb)
	return forChunks(ctx, tb.Bucket(subCDF), from, to, func(ver int64, chunk []byte) error {
		ts, err := times(ver)
		if err != nil {
			return err
		}
		return t.decodeChunk(chunk, reuse, func(ct ChangeType, r Row) error {
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

// Changes streams a table's change feed for versions from..to (inclusive;
// to < 0 means the latest) in commit order. Within a version rows are in
// key order, a key's rows in applied order.
func (db *DB) Changes(ctx context.Context, name string, from, to int64, fn func(Change) error) error {
	err := db.view(name, func(tb *bolt.Bucket, t *table) error {
		return t.changes(ctx, tb, from, to, false, fn)
	})
	if err != nil {
		return fmt.Errorf("changes %s: %w", name, err)
	}
	return nil
}

// Notes streams the notes a commit of a table left (opaque records such as
// a MERGE's skipped rows).
func (db *DB) Notes(ctx context.Context, name string, version int64, fn func([]byte) error) error {
	err := db.view(name, func(tb *bolt.Bucket, _ *table) error {
		if _, err := getCommit(tb, version); err != nil {
			return err
		}
		if h := horizonOf(tb).version; version <= h && h > 0 {
			return &BelowHorizonError{Table: name, What: "notes of version", Version: version, Horizon: h}
		}
		return forChunks(ctx, tb.Bucket(subNotes), version, version, func(_ int64, chunk []byte) error {
			return decodeNoteChunk(chunk, fn)
		})
	})
	if err != nil {
		return fmt.Errorf("notes of %s version %d: %w", name, version, err)
	}
	return nil
}
