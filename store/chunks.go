package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// chunkTarget is about the size at which a change-feed chunk is written
// out. Big enough that a 100k-row commit is a few dozen sequential puts,
// small enough that readers stream a version without holding it whole.
const chunkTarget = 64 << 10

// chunkSlack is what a chunk leaves of its pages for bbolt's page header and
// leaf element and key, and for the record that takes it past its target
// (one of up to about 250 bytes). A chunk written out once past 64 KiB
// itself spilled into one more page by a few bytes: bbolt stores a value in
// whole pages, so 6% of the change feed was pages holding almost nothing.
const chunkSlack = 300

// chunkWriter appends records to the chunks of one version in an
// append-only bucket (cdf or stale).
type chunkWriter struct {
	b       *bolt.Bucket
	version int64
	n       uint32
	rows    int64
	enc     encoder
	target  int // write a chunk out once it is this big
}

func newChunkWriter(b *bolt.Bucket, version int64) *chunkWriter {
	b.FillPercent = 1.0 // keys only ever grow: pack pages full
	// The whole pages chunkTarget takes, less chunkSlack.
	ps := b.Tx().DB().Info().PageSize
	target := (chunkTarget+ps-1)/ps*ps - chunkSlack
	return &chunkWriter{b: b, version: version, target: target}
}

// next is called after each record is encoded into w.enc.
func (w *chunkWriter) next() error {
	w.rows++
	if len(w.enc.b) >= w.target {
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

// Change records come in two forms; readers decode both.
//
// The old form (written by releases up to the first with store format
// "2"): a type byte (1..4), a flags byte (flagHasPrev), the schema id, the
// key, the body, then for insert, update_postimage and delete the back
// pointer to the key's previous record (if any), and for delete the
// tombstone's ordering value. An update wrote an update_preimage record (a
// full copy of the old row) before its update_postimage.
//
// The new form has one header byte, recNew | type-1 | flags | schema id
// (ids 0..6 inline, 7: a uvarint follows with the id), then the key, body
// (its Timestamp columns in putTime's compact encoding), back pointer and
// ordering value as before. An update_postimage with
// recImplied has no update_preimage record: its preimage is the image its
// back pointer reaches (the key's previous image, which is what an update's
// preimage is), so an update stores its row once in the change feed instead
// of twice. Readers that want preimages (Changes, the Delta export) read
// that record; readers that skip them (the stream processor) pay nothing. A
// writer whose preimage is not the previous image (no caller does that)
// writes it as a full update_preimage record, in the new form, and leaves
// recImplied off.
const (
	flagHasPrev byte = 1 << 1
	flagDeleted byte = 1 << 0

	recNew      byte = 0x80
	recTypeMask byte = 0x03 // type-1
	recPrev     byte = 0x04
	recImplied  byte = 0x08
	recIDShift       = 4
	recIDInline      = 7 // ids below this sit in the header
)

func (e *encoder) record(s *Schema, id uint64, t ChangeType, key []byte, r Row, prev *imageRef, implied bool, deletedAt int64) {
	h := recNew | byte(t-1)&recTypeMask
	if prev != nil {
		h |= recPrev
	}
	if implied {
		h |= recImplied
	}
	if id < recIDInline {
		e.byte(h | byte(id)<<recIDShift)
	} else {
		e.byte(h | recIDInline<<recIDShift)
		e.uint(id)
	}
	e.bytes(key)
	e.compactTime = true
	s.body(e, r)
	if prev != nil {
		e.ref(*prev)
	}
	if t == Delete {
		e.int(deletedAt)
	}
}

// recordOld encodes a record in the old form (tests write old stores with it).
func (e *encoder) recordOld(s *Schema, id uint64, t ChangeType, key []byte, r Row, prev *imageRef, deletedAt int64) {
	e.byte(byte(t))
	var flags byte
	if prev != nil {
		flags |= flagHasPrev
	}
	e.byte(flags)
	e.uint(id)
	e.bytes(key)
	e.compactTime = false
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
	// implied marks an update_postimage whose preimage is the image at prev
	// (no update_preimage record was written); key is the record's encoded
	// key, aliasing the chunk.
	implied bool
	key     []byte
}

func (t *table) decodeRecord(d *decoder) (image, error) { return t.decodeRecordInto(d, nil) }

// decodeRecordInto is decodeRecord with the row decoded into dst's storage
// when it is large enough.
func (t *table) decodeRecordInto(d *decoder, dst Row) (image, error) {
	var img image
	var id uint64
	var hasPrev bool
	if h := d.byte(); h&recNew != 0 {
		img.typ = ChangeType(h&recTypeMask) + 1
		hasPrev = h&recPrev != 0
		img.implied = h&recImplied != 0
		if id = uint64(h>>recIDShift) & 7; id == recIDInline {
			id = d.uint()
		}
		d.compactTime = true
		if img.implied && (img.typ != UpdatePostimage || !hasPrev) && d.err == nil {
			d.err = fmt.Errorf("%w: implied preimage on a %s record", ErrCorrupt, img.typ)
		}
	} else {
		img.typ = ChangeType(h)
		hasPrev = d.byte()&flagHasPrev != 0
		id = d.uint()
		d.compactTime = false
	}
	key := d.rawBytes()
	if d.err != nil {
		return img, d.err
	}
	img.key = key
	row, err := t.decodeInto(key, id, d, dst)
	if err != nil {
		return img, err
	}
	img.row = row
	if hasPrev {
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

// feedOpts says how a change feed is read.
type feedOpts struct {
	// reuse: every Change's Row shares one storage (two: a preimage's and
	// the rest), valid until fn returns.
	reuse bool
	// noPreimages leaves update_preimage rows out: an update then costs its
	// postimage alone (no read of the previous image).
	noPreimages bool
	// omit marks the columns left zero (see decoder.omit).
	omit uint64
}

// feedReader decodes change-feed chunks and finds implied preimages.
type feedReader struct {
	t      *table
	cdf    *bolt.Bucket
	h      horizon
	opts   feedOpts
	buf    Row // the rows' storage with reuse
	preBuf Row // the preimages' storage with reuse
	// the chunk read last for a preimage: updates of recent rows point into
	// a few recent chunks.
	lastKey   [12]byte
	lastChunk []byte
	// rows counts the change rows read, preimages included (stored, or
	// implied by their postimage) whether or not they were handed on.
	rows int64
	img  image // the record records hands on (one, not one a record on the heap)
}

// records calls fn with each record of chunk as decoded, its
// update_preimage records left out with opts.noPreimages (and then decoded
// only as far as stepping over them takes).
func (f *feedReader) records(chunk []byte, fn func(*image) error) error {
	d := decoder{b: chunk}
	for len(d.b) > 0 {
		skip := f.opts.noPreimages && recordType(d.b[0]) == UpdatePreimage
		d.omit = f.opts.omit
		if skip {
			d.omit = ^uint64(0)
		}
		var err error
		if f.img, err = f.t.decodeRecordInto(&d, f.buf); err != nil {
			return err
		}
		if f.opts.reuse {
			f.buf = f.img.row
		}
		if f.rows++; f.img.implied {
			f.rows++
		}
		if skip {
			continue
		}
		if err := fn(&f.img); err != nil {
			return err
		}
	}
	return nil
}

// chunk calls fn with each change of chunk, preimages included unless
// opts.noPreimages.
func (f *feedReader) chunk(chunk []byte, fn func(ChangeType, Row) error) error {
	return f.records(chunk, func(img *image) error {
		if img.implied && !f.opts.noPreimages {
			pre, err := f.preimage(*img)
			if err != nil {
				return err
			}
			if err := fn(UpdatePreimage, pre); err != nil {
				return err
			}
		}
		return fn(img.typ, img.row)
	})
}

// recordType is the change type of the record whose first byte is b.
func recordType(b byte) ChangeType {
	if b&recNew != 0 {
		return ChangeType(b&recTypeMask) + 1
	}
	return ChangeType(b)
}

// preimage returns the image post's back pointer reaches: the record there,
// or the key's image at the horizon when that chunk is gone.
func (f *feedReader) preimage(post image) (Row, error) {
	var dst Row
	if f.opts.reuse {
		dst = f.preBuf
	}
	at := post.prev
	if f.h.removed(at.version) {
		img, err := f.t.baseImage(f.h, post.key, at)
		if err != nil {
			return nil, err
		}
		return img.row, nil
	}
	k := chunkKey(at.version, at.chunk)
	if f.lastChunk == nil || !bytes.Equal(k, f.lastKey[:]) {
		f.lastChunk = f.cdf.Get(k)
		copy(f.lastKey[:], k)
	}
	img, err := f.t.recordAt(f.lastChunk, at, dst, 0)
	if err != nil {
		return nil, err
	}
	if f.opts.reuse {
		f.preBuf = img.row
	}
	return img.row, nil
}

// recordAt decodes the record at ref in chunk (ref's chunk), into dst's
// storage when it is large enough, leaving the columns omit marks zero.
func (t *table) recordAt(chunk []byte, ref imageRef, dst Row, omit uint64) (image, error) {
	if chunk == nil || int(ref.offset) >= len(chunk) {
		return image{}, fmt.Errorf("%w: no change record at %d/%d/%d", ErrCorrupt, ref.version, ref.chunk, ref.offset)
	}
	d := decoder{b: chunk[ref.offset:], omit: omit}
	return t.decodeRecordInto(&d, dst)
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

// changes streams table t's change feed of versions from..to inside tx,
// preimages included. With reuse, every Change's Row shares one storage:
// fn must not keep it.
func (t *table) changes(ctx context.Context, tb *bolt.Bucket, from, to int64, reuse bool, fn func(Change) error) error {
	return t.feed(ctx, tb, from, to, feedOpts{reuse: reuse}, fn)
}

// feed streams table t's change feed of versions from..to inside tx, read
// as opts says.
func (t *table) feed(ctx context.Context, tb *bolt.Bucket, from, to int64, opts feedOpts, fn func(Change) error) error {
	from, to, err := clampRange(tb, t.name, from, to)
	if err != nil {
		return err
	}
	cdf, err := subBucket(tb, subCDF)
	if err != nil {
		return err
	}
	times := commitTimes(tb)
	f := &feedReader{t: t, cdf: cdf, h: horizonOf(tb), opts: opts}
	mapped := mappedMeter{tx: tb.Tx()}
	return forChunks(ctx, f.cdf, from, to, func(ver int64, chunk []byte) error {
		ts, err := times(ver)
		if err != nil {
			return err
		}
		mapped.touch(len(chunk))
		return f.chunk(chunk, func(ct ChangeType, r Row) error {
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
