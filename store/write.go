package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// rows values: a format byte, a flags byte, the schema id, where the
// image's change record sits, the tombstone's ordering value when deleted,
// then the body. The rows tree holds one entry per key, not per image: the
// change feed is each key's history (every insert, update_postimage and
// delete record points at the key's previous one). Format 3 encodes the
// body's Timestamp columns compactly (encoder.putTime); format 2, which
// earlier releases wrote, as plain varints. Both are read.
const (
	rowFormat    byte = 3
	rowFormatOld byte = 2
)

// rowsFill is the rows tree's bbolt FillPercent for a commit whose new
// keys are appended (see TableWriter.flush).
const rowsFill = 0.9

// current is a decoded rows value.
type current struct {
	row       Row
	at        imageRef
	deleted   bool
	deletedAt int64
}

func encodeCurrent(dst []byte, s *Schema, id uint64, r Row, at imageRef, deleted bool, deletedAt int64) []byte {
	return encodeCurrentIn(rowFormat, dst, s, id, r, at, deleted, deletedAt)
}

// encodeCurrentIn is encodeCurrent in format f (tests write format 2).
func encodeCurrentIn(f byte, dst []byte, s *Schema, id uint64, r Row, at imageRef, deleted bool, deletedAt int64) []byte {
	e := encoder{b: dst, compactTime: f == rowFormat}
	e.byte(f)
	var flags byte
	if deleted {
		flags |= flagDeleted
	}
	e.byte(flags)
	e.uint(id)
	e.ref(at)
	if deleted {
		e.int(deletedAt)
	}
	s.body(&e, r)
	return e.b
}

func (t *table) decodeCurrent(key, v []byte) (current, error) {
	return t.decodeCurrentInto(key, v, nil)
}

// decodeCurrentInto is decodeCurrent with the row decoded into dst's
// storage when it is large enough.
func (t *table) decodeCurrentInto(key, v []byte, dst Row) (current, error) {
	d := decoder{b: v}
	switch f := d.byte(); f {
	case rowFormat:
		d.compactTime = true
	case rowFormatOld:
	default:
		return current{}, fmt.Errorf("%w: row value format %d", ErrCorrupt, f)
	}
	flags := d.byte()
	id := d.uint()
	var c current
	c.at = d.ref()
	if flags&flagDeleted != 0 {
		c.deleted = true
		c.deletedAt = d.int()
	}
	if d.err != nil {
		return c, d.err
	}
	r, err := t.decodeInto(key, id, &d, dst)
	c.row = r
	return c, err
}

// Current is the newest image of a row.
type Current struct {
	Row     Row
	Version int64
	// Deleted marks a tombstone: Row is the last image before the delete
	// and DeletedAt the delete's ordering value (see TableWriter.Delete).
	Deleted   bool
	DeletedAt int64
}

// WriteStats counts the changes a commit wrote to one table.
type WriteStats struct {
	Inserted, Updated, Deleted int64
}

// TableWriter writes one version of one table inside a bbolt write
// transaction. Rows must be written in non-decreasing key order (sorted puts
// are what make a big commit fast in a B+tree); one key may be stepped
// several times in a commit and gets one change record per step.
type TableWriter struct {
	ctx     context.Context
	t       *table
	s       *Schema
	version int64
	// ix is the table's current images, the run this commit fills (once
	// it has put a row) first; rows is where puts go: the rows tree, or
	// that run (see runs.go).
	ix   rowIndex
	rows *bolt.Bucket
	// mainKeys is the rows tree's key count; toRun makes this commit fill
	// a run, whose keys' hashes it collects for the run's filter.
	mainKeys int64
	policy   runPolicy
	toRun    bool
	run      *bolt.Bucket
	hashes   []uint64
	cdf      *chunkWriter
	notes    *chunkWriter
	lastKey  []byte
	started  bool
	stats    WriteStats
	keyBuf   []byte // bbolt copies keys on Put: one buffer serves every key
	// prev is where the newest image of lastKey sits, for the next image's
	// back pointer; hasPrev is false for a key never seen before.
	prev    imageRef
	hasPrev bool
	// prevRow is the image at prev (a copy): an update whose preimage it is
	// writes no preimage record (see recImplied).
	prevRow Row
	// looked is the key of the last Get and what it found.
	lookedKey   []byte
	lookedRef   imageRef
	lookedFound bool
	getBuf      Row // Get decodes into it: its row is valid until the next Get
	// pre looks up announced keys ahead of the writer (see Prefetch),
	// under guard, as every transaction of the store runs.
	pre   *prefetcher
	guard guardedBolt
	puts  int64
	arena arena // values must live until commit: carve them from slabs
	// tb and h are the table's bucket and horizon (see keepBase).
	tb *bolt.Bucket
	h  horizon
	// recording: keep a copy of every change written, for Changes.
	recording bool
	changes   []Change
	// tail is the rows tree's last key before this commit; appended and
	// inserted count the new keys after it and the others (see flush).
	tail               []byte
	appended, inserted int64
	// oldForm writes change records and rows values as releases before the
	// one-byte header did (a full update_preimage record per update, rows
	// format 2): tests build the stores those releases left with it.
	oldForm bool
}

func newTableWriter(ctx context.Context, db *DB, t *table, tb *bolt.Bucket, version int64) (*TableWriter, error) {
	p := db.runs
	ix, err := openIndex(tb)
	if err != nil {
		return nil, err
	}
	mainKeys, err := keyCount(ix.main)
	if err != nil {
		return nil, err
	}
	return &TableWriter{tail: slices.Clone(ix.last()),
		ctx: ctx, t: t, s: t.schema(), version: version,
		ix: ix, rows: ix.main, mainKeys: mainKeys, policy: p,
		toRun: p.takesRuns(mainKeys, len(ix.runs), scattered(tb.Bucket(subMeta))),
		cdf:   newChunkWriter(tb.Bucket(subCDF), version),
		notes: newChunkWriter(tb.Bucket(subNotes), version),
		tb:    tb, h: horizonOf(tb), guard: db.bolt,
	}, nil
}

// value returns encode's output carved from a shared slab. Carving values
// out of shared slabs instead of one allocation each keeps a 100k-row commit
// from feeding the garbage collector 100k small objects.
func (w *TableWriter) value(encode func([]byte) []byte) []byte { return w.arena.carve(encode) }

// arena hands out byte slices carved from shared slabs.
type arena []byte

// carve returns encode's output, carved from the current slab (or a new
// one); it never moves once returned.
func (a *arena) carve(encode func([]byte) []byte) []byte {
	const slab = 256 << 10
	if cap(*a)-len(*a) < 1024 {
		*a = make([]byte, 0, slab)
	}
	start := len(*a)
	*a = encode(*a)
	v := (*a)[start:len(*a):len(*a)]
	if cap(*a) > slab { // encode outgrew the slab: v is its own allocation now
		*a = (*a)[:0:0]
	}
	return v
}

// RecordChanges makes the writer keep a copy of every change it writes
// from now on (Changes returns them). A table another derived table builds
// on is recorded so the later table can apply the same micro-batch's rows.
func (w *TableWriter) RecordChanges() { w.recording = true }

// Changes returns the changes recorded since RecordChanges, in the order
// written: each Insert and UpdatePostimage carries the row's after-image, a
// Delete the row's last image. Preimages are not recorded. Version is the
// writer's version; Timestamp is unset (the commit has not happened yet).
func (w *TableWriter) Changes() []Change { return w.changes }

// Version is the version this writer commits.
func (w *TableWriter) Version() int64 { return w.version }

// Stats returns the counts so far.
func (w *TableWriter) Stats() WriteStats { return w.stats }

// Schema is the table's schema.
func (w *TableWriter) Schema() *Schema { return w.s }

// Get returns the newest image (a tombstone too) of the row whose key
// columns are key (the first KeyColumns values; the rest are ignored). The
// returned Row shares storage with the next Get's: use or copy it before.
func (w *TableWriter) Get(key Row) (Current, bool, error) {
	var err error
	w.keyBuf, err = w.s.EncodeKey(w.keyBuf[:0], key)
	if err != nil {
		return Current{}, false, err
	}
	v, ok := []byte(nil), false
	if w.pre != nil && (!w.started || bytes.Compare(w.keyBuf, w.lastKey) > 0) {
		// Not put in this commit: the state the commit started from,
		// which the prefetcher reads, is the writer's too.
		if v, ok, err = w.pre.get(w.keyBuf); err != nil {
			return Current{}, false, err
		}
	}
	if !ok {
		v = w.ix.get(w.keyBuf)
	}
	w.lookedKey = append(w.lookedKey[:0], w.keyBuf...)
	w.lookedFound = v != nil
	if v == nil {
		return Current{}, false, nil
	}
	c, err := w.t.decodeCurrentInto(w.keyBuf, v, w.getBuf)
	if err != nil {
		return Current{}, false, fmt.Errorf("key %q: %w", w.keyBuf, err)
	}
	w.getBuf = c.row
	w.lookedRef = c.at
	return Current{Row: c.row, Version: c.at.version, Deleted: c.deleted, DeletedAt: c.deletedAt}, true, nil
}

// put writes r's change record of type t (with, for an update, the
// preimage record before it) and makes it the key's current image.
func (w *TableWriter) put(t ChangeType, r Row, before Row, deletedAt int64) error {
	if err := w.s.check(r); err != nil {
		return err
	}
	var err error
	w.keyBuf, err = w.s.EncodeKey(w.keyBuf[:0], r)
	if err != nil {
		return err
	}
	switch cmp := bytes.Compare(w.keyBuf, w.lastKey); {
	case !w.started || cmp > 0:
		if !w.lookedFoundFor(w.keyBuf) {
			// Callers look a row up before changing it; do it for them if
			// not, so the back pointer is never wrong.
			key := append([]byte(nil), w.keyBuf...)
			if _, _, err := w.Get(r); err != nil {
				return err
			}
			w.keyBuf = append(w.keyBuf[:0], key...)
		}
		if w.toRun {
			if err := w.startRun(); err != nil {
				return err
			}
			w.hashes = append(w.hashes, keyHash(w.keyBuf))
		}
		w.started = true
		w.lastKey = append(w.lastKey[:0], w.keyBuf...)
		w.hasPrev, w.prev = w.lookedFound, w.lookedRef
		switch {
		case w.hasPrev:
		case bytes.Compare(w.keyBuf, w.tail) > 0:
			w.appended++
		default:
			w.inserted++
		}
		if w.hasPrev {
			w.prevRow = append(w.prevRow[:0], w.getBuf...) // what Get decoded: the image at prev
		}
		if w.hasPrev && w.h.removed(w.prev.version) {
			if err := w.keepBase(); err != nil {
				return err
			}
		}
	case cmp == 0:
		// Another step of the same key: prev already points at the record
		// written for the step before.
	default:
		return fmt.Errorf("%w: %q after %q", ErrOutOfOrder, w.keyBuf, w.lastKey)
	}
	if w.puts++; w.puts%4096 == 0 {
		if err := w.ctx.Err(); err != nil {
			return err
		}
	}
	id := w.t.schemaID()
	if w.oldForm {
		return w.putOld(t, r, before, id, deletedAt)
	}
	implied := false
	if before != nil {
		// The preimage is the key's previous image, which the postimage's
		// back pointer reaches: write it only if it is not.
		if implied = w.hasPrev && rowsEqual(before, w.prevRow); !implied {
			w.cdf.enc.record(w.s, id, UpdatePreimage, w.keyBuf, before, nil, false, 0)
			if err := w.cdf.next(); err != nil {
				return err
			}
		} else {
			w.cdf.rows++ // still a change-feed row, read from the previous image
		}
	}
	var prev *imageRef
	if w.hasPrev {
		prev = &w.prev
	}
	ref := w.cdf.pos()
	w.cdf.enc.record(w.s, id, t, w.keyBuf, r, prev, implied, deletedAt)
	if err := w.cdf.next(); err != nil {
		return err
	}
	w.prevRow = append(w.prevRow[:0], r...)
	w.prev, w.hasPrev = ref, true
	if w.recording {
		w.changes = append(w.changes, Change{Type: t, Version: w.version, Row: slices.Clone(r)})
	}
	deleted := t == Delete
	cur := w.value(func(b []byte) []byte { return encodeCurrent(b, w.s, id, r, ref, deleted, deletedAt) })
	if err := w.rows.Put(w.keyBuf, cur); err != nil {
		return fmt.Errorf("key %q: %w", w.keyBuf, err)
	}
	return nil
}

// putOld is put's tail in the old record form.
func (w *TableWriter) putOld(t ChangeType, r, before Row, id uint64, deletedAt int64) error {
	if before != nil {
		w.cdf.enc.recordOld(w.s, id, UpdatePreimage, w.keyBuf, before, nil, 0)
		if err := w.cdf.next(); err != nil {
			return err
		}
	}
	var prev *imageRef
	if w.hasPrev {
		prev = &w.prev
	}
	ref := w.cdf.pos()
	w.cdf.enc.recordOld(w.s, id, t, w.keyBuf, r, prev, deletedAt)
	if err := w.cdf.next(); err != nil {
		return err
	}
	w.prev, w.hasPrev = ref, true
	w.prevRow = append(w.prevRow[:0], r...)
	deleted := t == Delete
	cur := w.value(func(b []byte) []byte {
		return encodeCurrentIn(rowFormatOld, b, w.s, id, r, ref, deleted, deletedAt)
	})
	if err := w.rows.Put(w.keyBuf, cur); err != nil {
		return fmt.Errorf("key %q: %w", w.keyBuf, err)
	}
	return nil
}

// lookedFoundFor reports whether the last Get was for key.
func (w *TableWriter) lookedFoundFor(key []byte) bool { return bytes.Equal(w.lookedKey, key) }

// Insert adds a new row (or re-inserts a deleted one).
func (w *TableWriter) Insert(r Row) error {
	w.stats.Inserted++
	return w.put(Insert, r, nil, 0)
}

// Update replaces before by after (same key).
func (w *TableWriter) Update(before, after Row) error {
	w.stats.Updated++
	return w.put(UpdatePostimage, after, before, 0)
}

// Delete removes the row whose last image is before. at is an ordering
// value kept with the tombstone (the raw table keeps the delete's event
// time, so an older resend cannot resurrect the row).
func (w *TableWriter) Delete(before Row, at int64) error {
	w.stats.Deleted++
	return w.put(Delete, before, nil, at)
}

// Upsert writes r as an insert, or as an update of the current live row;
// it writes nothing when r equals that row. It reports whether it wrote.
func (w *TableWriter) Upsert(r Row) (bool, error) {
	cur, found, err := w.Get(r)
	if err != nil {
		return false, err
	}
	if found && !cur.Deleted {
		if rowsEqual(cur.Row, r) {
			return false, nil
		}
		return true, w.Update(cur.Row, r)
	}
	return true, w.Insert(r)
}

// Note records an opaque audit record with this version (read back with
// DB.Notes), such as a row a MERGE skipped.
func (w *TableWriter) Note(b []byte) error {
	w.notes.enc.bytes(b)
	return w.notes.next()
}

// startRun creates the run this commit fills, at its first put.
func (w *TableWriter) startRun() error {
	if w.run != nil {
		return nil
	}
	b, err := newRun(w.tb, w.version)
	if err != nil {
		return err
	}
	w.run, w.rows = b, b
	w.ix.runs = slices.Insert(w.ix.runs, 0, run{version: w.version, b: b}) // no filter: tried for every key
	return nil
}

// sweepDue reports whether the table's runs should be swept after this
// commit, or a sweep is under way.
func (w *TableWriter) sweepDue() bool {
	return w.tb.Bucket(subMeta).Get(keySweep) != nil || w.ix.sweepDue(w.mainKeys, w.policy)
}

func (w *TableWriter) flush() error {
	news := newKeys{appended: w.appended, inserted: w.inserted}
	if news.total() > 0 {
		if err := w.tb.Bucket(subMeta).Put(keyNewKeys, news.encode()); err != nil {
			return fmt.Errorf("meta: %w", err)
		}
	}
	if w.run != nil {
		if err := finishRun(w.tb, w.run, w.version, runInfo(news, w.hashes), len(w.hashes)); err != nil {
			return err
		}
	} else if news.total() > 0 {
		if err := w.rows.SetSequence(uint64(w.mainKeys + news.total())); err != nil {
			return fmt.Errorf("rows: %w", err)
		}
	}
	// bbolt splits a page at FillPercent (default half) when the commit
	// writes it out: keys appended past the tree's last one (UPI ids grow
	// with time) fill the last page and split it, and each page a split
	// leaves behind keeps that fill for good. A commit that mostly appends
	// packs pages full; one that inserts among existing keys keeps bbolt's
	// half, which leaves room for the next inserts there.
	if w.run == nil && news.mostlyAppended() {
		w.rows.FillPercent = rowsFill
	}
	if err := w.cdf.flush(); err != nil {
		return err
	}
	return w.notes.flush()
}

func rowsEqual(a, b Row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// metrics are the commit-log metrics of what w wrote.
func (w *TableWriter) metrics() map[string]int64 {
	s := w.stats
	return map[string]int64{
		"numTargetRowsInserted":   s.Inserted,
		"numTargetRowsUpdated":    s.Updated,
		"numTargetRowsDeleted":    s.Deleted,
		"numOutputRows":           s.Inserted + s.Updated,
		"numTargetChangeFileRows": w.cdf.rows,
	}
}

// WriteMeta describes a commit made with Write.
type WriteMeta struct {
	// Operation is the commit log's operation, e.g. "MERGE".
	Operation  string
	Parameters map[string]string
	// Metrics are added to the store's own (rows inserted, updated, ...).
	Metrics map[string]int64
	// Source is the file the commit came from, if any.
	Source *Source
	// SHA256, when set, is entered in the ingested-files ledger with the
	// commit; content already there fails with *AlreadyIngestedError.
	SHA256 *[32]byte
}

// AlreadyIngestedError is returned by Write for content already in the ledger.
type AlreadyIngestedError struct{ Record FileRecord }

func (e *AlreadyIngestedError) Error() string {
	return fmt.Sprintf("%v: same sha256 as %q, merged as version %d", ErrAlreadyIngested, e.Record.Name, e.Record.Version)
}

// Is makes errors.Is(err, ErrAlreadyIngested) true.
func (e *AlreadyIngestedError) Is(target error) bool { return target == ErrAlreadyIngested }

// Write runs fn as one commit of table name: its rows, change feed, notes,
// commit log entry and the ledger entry are written in one bbolt
// transaction, so a crash leaves all or nothing.
func (db *DB) Write(ctx context.Context, name string, meta WriteMeta, fn func(*TableWriter) error) (CommitInfo, error) {
	if _, err := db.table(name); err != nil {
		return CommitInfo{}, err
	}
	cis, err := db.WriteTables(ctx, func(tx *WriteTx) error {
		w, err := tx.Table(name, meta)
		if err != nil {
			return err
		}
		return fn(w)
	})
	if err != nil {
		return CommitInfo{}, err
	}
	return cis[name], nil
}

// WriteTx is one commit of one or more tables (see WriteTables).
type WriteTx struct {
	ctx     context.Context
	db      *DB
	tx      *bolt.Tx
	names   []string // in the order they were asked for
	writers map[string]*TableWriter
	buckets map[string]*bolt.Bucket
	metas   map[string]WriteMeta
	sweeps  []string // tables whose runs to sweep after the commit
}

// Table returns the writer of table name's next version, described
// by meta. Every table asked for gets a version, changed or not. A meta
// with SHA256 set whose content is already in the ledger fails with
// *AlreadyIngestedError (and the whole commit with it).
func (tx *WriteTx) Table(name string, meta WriteMeta) (*TableWriter, error) {
	if tx.writers[name] != nil {
		return nil, fmt.Errorf("table %s asked for twice in one commit", name)
	}
	t, err := tx.db.table(name)
	if err != nil {
		return nil, err
	}
	if meta.SHA256 != nil {
		if v := tx.tx.Bucket(bucketFiles).Get(meta.SHA256[:]); v != nil {
			var rec FileRecord
			if err := jsonUnmarshal(v, &rec); err != nil {
				return nil, fmt.Errorf("ledger entry: %w", err)
			}
			return nil, &AlreadyIngestedError{Record: rec}
		}
		for _, other := range tx.metas {
			if other.SHA256 != nil && *other.SHA256 == *meta.SHA256 {
				return nil, fmt.Errorf("table %s: sha256 already entered by another table of this commit", name)
			}
		}
	}
	tb, err := tableBucket(tx.tx, name)
	if err != nil {
		return nil, err
	}
	last, err := lastCommit(tb)
	if err != nil {
		return nil, err
	}
	w, err := newTableWriter(tx.ctx, tx.db, t, tb, last.Version+1)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", name, err)
	}
	tx.names = append(tx.names, name)
	tx.writers[name], tx.buckets[name], tx.metas[name] = w, tb, meta
	return w, nil
}

// stopPrefetch ends every writer's prefetcher and its read transaction.
// Every commit's function defers it, so that it runs before bbolt's
// commit, which may remap the file and would wait for those transactions.
func stopPrefetch(writers map[string]*TableWriter) {
	for _, w := range writers {
		w.pre.close()
	}
}

// commit flushes every writer and enters each table's commit (and ledger
// entry) in the transaction.
func (tx *WriteTx) commit() (map[string]CommitInfo, error) {
	cis := make(map[string]CommitInfo, len(tx.names))
	for _, name := range tx.names {
		w, tb, meta := tx.writers[name], tx.buckets[name], tx.metas[name]
		if err := w.flush(); err != nil {
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
		if w.sweepDue() {
			tx.sweeps = append(tx.sweeps, name)
		}
		last, err := lastCommit(tb)
		if err != nil {
			return nil, err
		}
		metrics := w.metrics()
		maps.Copy(metrics, meta.Metrics)
		ci := CommitInfo{
			Version:             w.version,
			Timestamp:           tx.db.nextTimestamp(last.Timestamp),
			Operation:           meta.Operation,
			OperationParameters: maps.Clone(meta.Parameters),
			OperationMetrics:    metrics,
			Source:              meta.Source,
		}
		if ci.OperationParameters == nil {
			ci.OperationParameters = map[string]string{}
		}
		if err := putCommit(tb, ci); err != nil {
			return nil, err
		}
		cis[name] = ci
		if meta.SHA256 == nil {
			continue
		}
		rec := FileRecord{SHA256: hex.EncodeToString(meta.SHA256[:]), Version: w.version, IngestedAt: ci.Timestamp}
		if meta.Source != nil {
			rec.Name, rec.Size = meta.Source.Name, meta.Source.Size
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		if err := tx.tx.Bucket(bucketFiles).Put(meta.SHA256[:], data); err != nil {
			return nil, err
		}
	}
	return cis, nil
}

// WriteTables runs fn as one commit of every table it asks for with
// tx.Table: each gets its own version and commit log entry, and all of
// them (rows, change feeds, notes, commit log and ledger entries) are
// written in one bbolt transaction, so a crash leaves all or nothing. The
// result is each written table's commit. A commit that asks for no table
// writes nothing.
func (db *DB) WriteTables(ctx context.Context, fn func(*WriteTx) error) (map[string]CommitInfo, error) {
	var cis map[string]CommitInfo
	var names, sweeps []string
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		tx := &WriteTx{ctx: ctx, db: db, tx: btx, writers: map[string]*TableWriter{},
			buckets: map[string]*bolt.Bucket{}, metas: map[string]WriteMeta{}}
		defer stopPrefetch(tx.writers)
		err := fn(tx)
		names = tx.names
		if err != nil {
			return err
		}
		cis, err = tx.commit()
		sweeps = tx.sweeps
		return err
	})
	if err != nil {
		var already *AlreadyIngestedError
		if errors.As(err, &already) {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("commit: %w", err)
		}
		return nil, fmt.Errorf("commit to %s: %w", strings.Join(names, ", "), err)
	}
	for _, name := range names {
		ci := cis[name]
		db.log.Debug("committed", "table", name, "version", ci.Version, "operation", ci.Operation, "metrics", ci.OperationMetrics)
	}
	db.sweepAfter(ctx, sweeps)
	return cis, nil
}

// ScanCurrent calls fn with every live row of the table as it stands in
// this transaction, in key order. Call it before writing: a write while
// scanning would move the cursor.
func (w *TableWriter) ScanCurrent(fn func(Row) error) error {
	c := w.ix.cursor()
	for k, v := c.first(); k != nil; k, v = c.next() {
		cur, err := w.t.decodeCurrent(k, v)
		if err != nil {
			return err
		}
		if cur.deleted {
			continue
		}
		if err := fn(cur.row); err != nil {
			return err
		}
	}
	return nil
}
