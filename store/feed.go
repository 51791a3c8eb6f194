package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A stream folds each source row into what the row's key contributes to
// its derived tables. The contribution before a micro-batch is a function
// of the key's earlier images, which the change feed already keeps as a
// chain (every record points at the key's previous one): SourceFeed hands
// each record with a handle on that chain and Earlier walks it, so a
// stream needs no per-key state of its own, and a micro-batch writes only
// its derived tables' rows.

// FeedRecord is one insert, update_postimage or delete record of a source
// table's change feed, as SourceFeed reads it.
type FeedRecord struct {
	Type    ChangeType
	Version int64
	// Row shares one storage with every record SourceFeed reads: it is
	// valid until fn returns.
	Row Row

	prev    imageRef
	hasPrev bool
}

// HasEarlier reports whether the record's key had an image before it.
func (r *FeedRecord) HasEarlier() bool { return r.hasPrev }

var errFeedFull = errors.New("micro-batch full")

// residentBudget is how many bytes of the mapped file a long read (a
// micro-batch, a change feed, a scan) reads before it hands the mapping's
// pages back (see releaseMapped): the resident set stays within about this
// much of file pages.
const residentBudget = 128 << 20

// mappedMeter counts the bytes of the mapped file a long read touches and
// hands the mapping's pages back every residentBudget of them.
type mappedMeter struct {
	tx      *bolt.Tx
	touched int
}

// touch counts n bytes of the mapped file read.
func (m *mappedMeter) touch(n int) {
	if m.touched += n; m.touched >= residentBudget {
		releaseMapped(m.tx)
		m.touched = 0
	}
}

// FeedOptions says what SourceFeed reads.
type FeedOptions struct {
	// From and To are the source versions to read.
	From, To int64
	// MaxRows > 0 stops the feed at the end of the first version by which
	// it has read MaxRows change rows, preimages counted: a single version
	// larger than MaxRows is still read whole.
	MaxRows int64
	// Columns, if set, are the columns the reader uses; the others are
	// left zero (their strings are never allocated), in SourceFeed's rows
	// and in Earlier's.
	Columns []string
}

// SourceFeed streams the source table's change feed of o.From..o.To
// without its update_preimage rows (each repeats the key's previous image,
// which Earlier reaches). It returns the last version read (every version
// up to it was read whole) and the change rows read.
func (p *ProcessTx) SourceFeed(o FeedOptions, fn func(*FeedRecord) error) (int64, int64, error) {
	from, to, err := clampRange(p.srcTB, p.src.name, o.From, o.To)
	if err != nil {
		return 0, 0, err
	}
	s := p.src.schema()
	p.omit = 0
	if o.Columns != nil {
		p.omit = ^uint64(0)
		for _, name := range o.Columns {
			i := s.Index(name)
			if i < 0 {
				return 0, 0, fmt.Errorf("%s has no column %q", p.src.name, name)
			}
			p.omit &^= 1 << i
		}
	}
	f := &feedReader{t: p.src, cdf: p.srcCDF, h: p.srcH, opts: feedOpts{reuse: true, noPreimages: true, omit: p.omit}}
	var rec FeedRecord
	cur, last := from-1, to
	err = forChunks(p.ctx, p.srcCDF, from, to, func(ver int64, chunk []byte) error {
		if ver != cur {
			if o.MaxRows > 0 && f.rows >= o.MaxRows {
				last = ver - 1
				return errFeedFull
			}
			cur = ver
		}
		err := f.records(chunk, func(img *image) error {
			rec = FeedRecord{Type: img.typ, Version: ver, Row: img.row, prev: img.prev, hasPrev: img.hasPrev}
			return fn(&rec)
		})
		if err != nil {
			return fmt.Errorf("change feed of %s version %d: %w", p.src.name, ver, err)
		}
		p.mapped.touch(len(chunk))
		return nil
	})
	if errors.Is(err, errFeedFull) {
		err = nil
	}
	if err != nil {
		return 0, 0, err
	}
	return last, f.rows, nil
}

// Earlier walks the images of r's key before r, newest first, calling fn
// with each (its Row shares storage with the next call's) until fn returns
// false or the chain ends. Its rows leave the key columns zero (they are
// r's) and the columns SourceFeed was told to omit. It reports whether the
// walk reached the source's retention horizon: a vacuum removed the images
// at and before it, and what they added up to is the stream's baseline
// (BaselineValue).
func (p *ProcessTx) Earlier(r *FeedRecord, fn func(ChangeType, Row) (bool, error)) (bool, error) {
	omit := p.omit | (1<<p.src.schema().KeyColumns - 1)
	at, ok := r.prev, r.hasPrev
	for ok {
		if p.srcH.removed(at.version) {
			return true, nil
		}
		img, err := p.src.recordAt(p.srcCDF.Get(chunkKey(at.version, at.chunk)), at, p.earlier, omit)
		if err != nil {
			return false, fmt.Errorf("%s history at version %d: %w", p.src.name, at.version, err)
		}
		p.earlier = img.row
		p.mapped.touch(64 << 10) // a read faults in a page and, around it, up to 64 KiB
		more, err := fn(img.typ, img.row)
		if err != nil || !more {
			return false, err
		}
		at, ok = img.prev, img.hasPrev
	}
	return false, nil
}

// BaselineValue returns the stream's baseline value for key (nil if none),
// valid until the transaction ends. The baseline is kept by the stream's
// Vacuum folder (see VacuumOptions.Baseline).
func (p *ProcessTx) BaselineValue(key []byte) []byte {
	b := p.stream.Bucket(subBaseline)
	if b == nil {
		return nil
	}
	return b.Get(key)
}

// SourceRows is the number of change rows the source's commit log says
// versions from..to wrote (versions it says nothing of count 0): a reader
// sizes its buffers with it.
func (p *ProcessTx) SourceRows(from, to int64) int64 {
	var n int64
	for v := max(from, 1); v <= to; v++ {
		ci, err := getCommit(p.srcTB, v)
		if err != nil {
			continue
		}
		n += ci.OperationMetrics["numTargetChangeFileRows"]
	}
	return n
}
