package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// subBucket is one of a table's buckets; a missing one (a damaged file whose
// structure is sound, such as a flipped byte in a bucket's name) is ErrCorrupt.
func subBucket(tb *bolt.Bucket, name []byte) (*bolt.Bucket, error) {
	if b := tb.Bucket(name); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: no %s bucket", ErrCorrupt, name)
}

// readImage decodes the change-feed record at ref.
func (t *table) readImage(cdf *bolt.Bucket, ref imageRef) (image, error) {
	return t.recordAt(cdf.Get(chunkKey(ref.version, ref.chunk)), ref, nil, 0)
}

// imageAt walks a key's image chain back from its current image to the
// newest image at or below version. ok is false if the key did not exist
// then.
//
// version must be at or above the table's horizon h: a pointer into a
// removed chunk (at or below h) is the key's image at the horizon, which
// the base bucket keeps.
func (t *table) imageAt(cdf *bolt.Bucket, h horizon, key []byte, cur current, version int64) (image, bool, error) {
	if cur.at.version <= version {
		return imageOf(cur), true, nil
	}
	at := cur.at
	for {
		if h.removed(at.version) {
			img, err := t.baseImage(h, key, at)
			return img, err == nil, err
		}
		img, err := t.readImage(cdf, at)
		if err != nil {
			return img, false, err
		}
		if at.version <= version {
			return img, true, nil
		}
		if !img.hasPrev {
			return img, false, nil
		}
		at = img.prev
	}
}

// resolveVersion maps version < 0 to the latest and checks it exists and
// is not below the table's horizon.
func resolveVersion(tb *bolt.Bucket, name string, version int64) (int64, error) {
	last, err := lastCommit(tb)
	if err != nil {
		return 0, err
	}
	if version < 0 {
		return last.Version, nil
	}
	if version > last.Version {
		return 0, fmt.Errorf("version %d: %w (latest is %d)", version, ErrVersionNotFound, last.Version)
	}
	if h := horizonOf(tb).version; version < h {
		return 0, &BelowHorizonError{Table: name, What: "version", Version: version, Horizon: h}
	}
	return version, nil
}

// KeyRange selects rows by key: Prefix fixes the first key columns; From
// and To, when set, bound the next key column (inclusive).
type KeyRange struct {
	Prefix   Row
	From, To *Value
}

// bounds returns the encoded range of r for schema s: keys k with
// lo <= k < hi (hi nil: no upper bound), or exactly lo when exact.
func (r KeyRange) bounds(s *Schema) (lo, hi []byte, exact bool, err error) {
	n := len(r.Prefix)
	if n > s.KeyColumns || (n == s.KeyColumns && (r.From != nil || r.To != nil)) {
		return nil, nil, false, fmt.Errorf("key range: %d prefix values for %d key columns", n, s.KeyColumns)
	}
	// part encodes values as the key columns first..first+len(vals) of a
	// full key: a string column is followed by its NUL unless it is the
	// only key column.
	part := func(first int, vals Row) ([]byte, error) {
		var out []byte
		for i, v := range vals {
			c := s.Columns[first+i]
			if c.Type == String {
				if bytes.IndexByte([]byte(v.Str), 0) >= 0 {
					return nil, fmt.Errorf("key column %s: value contains NUL", c.Name)
				}
				out = append(out, v.Str...)
				if s.KeyColumns > 1 {
					out = append(out, 0)
				}
				continue
			}
			out = binary.BigEndian.AppendUint64(out, uint64(v.Int)^(1<<63))
		}
		return out, nil
	}
	pre, err := part(0, r.Prefix)
	if err != nil {
		return nil, nil, false, err
	}
	if n == s.KeyColumns {
		return pre, nil, true, nil
	}
	lo = pre
	if r.From != nil {
		b, err := part(n, Row{*r.From})
		if err != nil {
			return nil, nil, false, err
		}
		lo = append(slices.Clone(pre), b...)
	}
	switch {
	case r.To != nil:
		b, err := part(n, Row{*r.To})
		if err != nil {
			return nil, nil, false, err
		}
		hi = successor(append(slices.Clone(pre), b...))
	case len(pre) > 0:
		hi = successor(slices.Clone(pre))
	}
	return lo, hi, false, nil
}

// successor returns the smallest key greater than every key starting with
// p (nil: none).
func successor(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			p[i]++
			return p[:i+1]
		}
	}
	return nil
}

// Scan calls fn with every live row of table name at version (< 0: latest)
// whose key is in kr (the zero KeyRange: all), in key order, and returns
// the version read. Reading an old version walks each changed row's
// history back.
func (db *DB) Scan(ctx context.Context, name string, version int64, kr KeyRange, fn func(Row) error) (int64, error) {
	err := db.view(name, func(tb *bolt.Bucket, t *table) error {
		var err error
		if version, err = resolveVersion(tb, name, version); err != nil {
			return err
		}
		return t.scan(ctx, tb, version, kr, fn)
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	return version, nil
}

func (t *table) scan(ctx context.Context, tb *bolt.Bucket, version int64, kr KeyRange, fn func(Row) error) error {
	lo, hi, exact, err := kr.bounds(t.schema())
	if err != nil {
		return err
	}
	cdf, err := subBucket(tb, subCDF)
	if err != nil {
		return err
	}
	ix, err := openIndex(tb)
	if err != nil {
		return err
	}
	h := horizonOf(tb)
	c := ix.cursor()
	n := 0
	mapped := mappedMeter{tx: tb.Tx()}
	var k, v []byte
	if len(lo) > 0 {
		k, v = c.seek(lo)
	} else {
		k, v = c.first()
	}
	for ; k != nil; k, v = c.next() {
		if exact && !bytes.Equal(k, lo) {
			break
		}
		if hi != nil && bytes.Compare(k, hi) >= 0 {
			break
		}
		mapped.touch(len(k) + len(v) + 16) // and its leaf element
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		cur, err := t.decodeCurrent(k, v)
		if err != nil {
			return err
		}
		img, ok, err := t.imageAt(cdf, h, k, cur, version)
		if err != nil {
			return err
		}
		if !ok || img.typ == Delete {
			continue
		}
		if err := fn(img.row); err != nil {
			return err
		}
	}
	return nil
}

// Get returns the live row of table name whose key columns are key, at
// version (< 0: latest).
func (db *DB) Get(name string, version int64, key Row) (Row, bool, error) {
	var out Row
	var found bool
	_, err := db.Scan(context.Background(), name, version, KeyRange{Prefix: key}, func(r Row) error {
		out, found = r, true
		return nil
	})
	return out, found, err
}

// KeyHistory returns every image of one row, oldest first, with commit
// timestamps: one rows lookup, then one change-feed chunk lookup per image
// (following each record's pointer to the previous one).
func (db *DB) KeyHistory(name string, key Row) ([]RowVersion, error) {
	var out []RowVersion
	err := db.view(name, func(tb *bolt.Bucket, t *table) error {
		k, err := t.schema().EncodeKey(nil, key)
		if err != nil {
			return err
		}
		ix, err := openIndex(tb)
		if err != nil {
			return err
		}
		cdf, err := subBucket(tb, subCDF)
		if err != nil {
			return err
		}
		v := ix.get(k)
		if v == nil {
			return ErrNotFound
		}
		cur, err := t.decodeCurrent(k, v)
		if err != nil {
			return err
		}
		h := horizonOf(tb)
		ts := commitTimes(tb)
		at, ok := cur.at, true
		for ok {
			var img image
			switch {
			case at == cur.at && h.removed(at.version):
				img = imageOf(cur) // last changed at or below the horizon: the current image is all that is kept
			case h.removed(at.version):
				img, err = t.baseImage(h, k, at) // the image at the horizon; the history before it is gone
			default:
				img, err = t.readImage(cdf, at)
			}
			if err != nil {
				return err
			}
			stamp, err := ts(at.version)
			if err != nil {
				return err
			}
			out = append(out, RowVersion{Version: at.version, Timestamp: stamp,
				Deleted: img.typ == Delete, DeletedAt: img.deletedAt, Row: img.row})
			at, ok = img.prev, img.hasPrev && !h.removed(at.version)
		}
		slices.Reverse(out)
		for i := 1; i < len(out); i++ {
			if out[i].Version == out[i-1].Version {
				out[i].Step = out[i-1].Step + 1
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w", name, keyString(key), err)
	}
	return out, nil
}

func keyString(key Row) string {
	var b []byte
	for i, v := range key {
		if i > 0 {
			b = append(b, ',')
		}
		if v.Str != "" {
			b = fmt.Appendf(b, "%q", v.Str)
		} else {
			b = fmt.Appendf(b, "%d", v.Int)
		}
	}
	return string(b)
}

// BeforeFirstCommitError is returned by VersionAsOf for a time before the
// table's first commit.
type BeforeFirstCommitError struct {
	Table string
	At    time.Time
	First time.Time
}

func (e *BeforeFirstCommitError) Error() string {
	return fmt.Sprintf("%s: %s is before the table's first commit (%s)", e.Table,
		e.At.Format(time.RFC3339Nano), e.First.Format(time.RFC3339Nano))
}

// VersionAsOf returns the newest version of table name committed at or
// before at (Delta's timestampAsOf). Commit timestamps increase with
// versions, so this is a binary search over the times bucket.
func (db *DB) VersionAsOf(name string, at time.Time) (int64, error) {
	var out int64
	err := db.view(name, func(tb *bolt.Bucket, _ *table) error {
		var err error
		out, err = versionAsOf(tb, name, at)
		return err
	})
	return out, err
}

// versionAsOf is VersionAsOf on a table bucket.
func versionAsOf(tb *bolt.Bucket, name string, at time.Time) (int64, error) {
	ms := at.UnixMilli()
	last, err := lastCommit(tb)
	if err != nil {
		return 0, err
	}
	times := tb.Bucket(subTimes)
	tsOf := func(v int64) (int64, error) {
		b := times.Get(be64(v))
		if len(b) != 8 {
			return 0, fmt.Errorf("%w: no timestamp for version %d", ErrCorrupt, v)
		}
		return int64(beUint(b)), nil
	}
	first, err := tsOf(0)
	if err != nil {
		return 0, err
	}
	if ms < first {
		return 0, &BeforeFirstCommitError{Table: name, At: at, First: time.UnixMilli(first).UTC()}
	}
	lo, hi := int64(0), last.Version // invariant: ts(lo) <= ms
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		ts, err := tsOf(mid)
		if err != nil {
			return 0, err
		}
		if ts <= ms {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// Files returns the ledger of ingested files, ordered by version.
func (db *DB) Files() ([]FileRecord, error) {
	var out []FileRecord
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(_, v []byte) error {
			var rec FileRecord
			if err := jsonUnmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b FileRecord) int { return int(a.Version - b.Version) })
	return out, err
}

// Snapshot is a consistent read of several tables at once: one bbolt read
// transaction. Close it when done; keep it short, as a long read keeps the
// pages it sees from being reused.
type Snapshot struct {
	db *DB
	tx *bolt.Tx
}

// Snapshot begins a read-only snapshot.
func (db *DB) Snapshot() (*Snapshot, error) {
	tx, err := db.bolt.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &Snapshot{db: db, tx: tx}, nil
}

// Close ends the snapshot.
func (s *Snapshot) Close() error { return s.tx.Rollback() }

// LatestVersion is a table's newest version in the snapshot.
func (s *Snapshot) LatestVersion(name string) (int64, error) {
	tb, err := tableBucket(s.tx, name)
	if err != nil {
		return 0, err
	}
	return resolveVersion(tb, name, -1)
}

// Scan is DB.Scan inside the snapshot.
func (s *Snapshot) Scan(ctx context.Context, name string, version int64, kr KeyRange, fn func(Row) error) (int64, error) {
	t, err := s.db.table(name)
	if err != nil {
		return 0, err
	}
	tb, err := tableBucket(s.tx, name)
	if err != nil {
		return 0, err
	}
	if version, err = resolveVersion(tb, name, version); err != nil {
		return 0, err
	}
	return version, s.db.bolt.guard(func() error { return t.scan(ctx, tb, version, kr, fn) })
}

// Changes is DB.Changes inside the snapshot.
func (s *Snapshot) Changes(ctx context.Context, name string, from, to int64, fn func(Change) error) error {
	return s.feed(ctx, name, from, to, feedOpts{}, fn)
}

func (s *Snapshot) feed(ctx context.Context, name string, from, to int64, opts feedOpts, fn func(Change) error) error {
	t, err := s.db.table(name)
	if err != nil {
		return err
	}
	tb, err := tableBucket(s.tx, name)
	if err != nil {
		return err
	}
	return s.db.bolt.guard(func() error { return t.feed(ctx, tb, from, to, opts, fn) })
}

// Checkpoint is a stream's checkpoint in the snapshot.
func (s *Snapshot) Checkpoint(stream string) (Checkpoint, error) {
	return readCheckpoint(s.tx.Bucket(bucketStreams).Bucket([]byte(stream)), stream)
}

// History is DB.History inside the snapshot.
func (s *Snapshot) History(name string) ([]CommitInfo, error) {
	tb, err := tableBucket(s.tx, name)
	if err != nil {
		return nil, err
	}
	out, err := history(tb)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", name, err)
	}
	return out, nil
}

// VersionAsOf is DB.VersionAsOf inside the snapshot.
func (s *Snapshot) VersionAsOf(name string, at time.Time) (int64, error) {
	tb, err := tableBucket(s.tx, name)
	if err != nil {
		return 0, err
	}
	return versionAsOf(tb, name, at)
}

// Fold streams a table's change feed of from..to for a reader that folds
// it (a recompute): without update_preimage rows, which repeat each key's
// previous image, and with every Change's Row sharing one storage, valid
// until fn returns (its strings are its own).
func (s *Snapshot) Fold(ctx context.Context, name string, from, to int64, fn func(Change) error) error {
	return s.feed(ctx, name, from, to, feedOpts{reuse: true, noPreimages: true}, fn)
}
