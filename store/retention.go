package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention.
//
// Each table has a horizon H (0 until the first vacuum): the change feed
// and notes of versions 1..H are gone, and the table stays readable at H
// and later. The rows tree is never touched, so every key's current image
// (a tombstone too) stays, and so does the commit log (one small entry per
// version). What goes are change-feed chunks, which are also each key's
// history: a record newer than H may point back at an image at or below H,
// whose chunk is gone. For each such key the image at H (the newest one at
// or below H) is copied, before its chunk goes, into the table's base
// bucket (key → image, in the rows value's encoding), so reading at H or
// later, and KeyHistory down to H, never follows a pointer into a removed
// chunk. A stream that keeps state over a source table (the processor's
// per-transaction contributions) keeps a baseline of that state at the
// source's horizon, folded forward by Vacuum in the same transaction that
// moves the horizon: recomputing a derived table (reconcile, backfill)
// starts from the baseline and replays the change feed after H.
//
// Nothing a consumer has not consumed is removed: the horizon of a table
// stays below the position of every consumer of it (a stream's checkpoint,
// a consumer registered with SetConsumer, positions the caller knows of,
// such as a Delta export's). Each table's vacuum is one bbolt transaction
// that reads those positions itself, so a micro-batch committing meanwhile
// cannot be overtaken, and a crash leaves the table vacuumed or not.

var (
	bucketConsumers = []byte("consumers")
	subBase         = []byte("base")
	subBaseline     = []byte("baseline")
	keyHorizon      = []byte("horizon")
)

// BelowHorizonError is returned for a read of versions a vacuum removed.
type BelowHorizonError struct {
	Table string
	// What was asked: "changes from version", "version", "notes of version",
	// "consumer position".
	What    string
	Version int64
	// Horizon is the table's horizon: readable at Horizon and later, change
	// feed kept from Horizon+1.
	Horizon int64
}

func (e *BelowHorizonError) Error() string {
	return fmt.Sprintf("%s %s %d is below the retention horizon (version %d): vacuum removed the change feed of versions 1..%d; "+
		"the table is readable at version %d and later and its changes from version %d",
		e.Table, e.What, e.Version, e.Horizon, e.Horizon, e.Horizon, e.Horizon+1)
}

// Is makes errors.Is(err, ErrBelowHorizon) true.
func (e *BelowHorizonError) Is(target error) bool { return target == ErrBelowHorizon }

// horizon is a table's retention state inside one transaction.
type horizon struct {
	version int64
	base    *bolt.Bucket // nil: no base images
}

func horizonOf(tb *bolt.Bucket) horizon {
	h := horizon{base: tb.Bucket(subBase)}
	if v := tb.Bucket(subMeta).Get(keyHorizon); len(v) == 8 {
		h.version = int64(beUint(v))
	}
	return h
}

// removed reports whether the chunk of version v is gone.
func (h horizon) removed(v int64) bool { return v <= h.version }

// baseImage returns the image at the horizon of key, which sits at ref at
// (a removed chunk).
func (t *table) baseImage(h horizon, key []byte, at imageRef) (image, error) {
	var v []byte
	if h.base != nil {
		v = h.base.Get(key)
	}
	if v == nil {
		return image{}, fmt.Errorf("%w: key %q: no image at the horizon (version %d) for its record of version %d", ErrCorrupt, key, h.version, at.version)
	}
	cur, err := t.decodeCurrent(key, v)
	if err != nil {
		return image{}, err
	}
	if cur.at != at {
		return image{}, fmt.Errorf("%w: key %q: image at the horizon is of version %d, its history points at version %d", ErrCorrupt, key, cur.at.version, at.version)
	}
	return imageOf(cur), nil
}

func imageOf(cur current) image {
	img := image{row: cur.row, deletedAt: cur.deletedAt, typ: Insert}
	if cur.deleted {
		img.typ = Delete
	}
	return img
}

// Horizon returns a table's horizon (0: nothing removed).
func (db *DB) Horizon(name string) (int64, error) {
	var h int64
	err := db.view(name, func(tb *bolt.Bucket, _ *table) error {
		h = horizonOf(tb).version
		return nil
	})
	return h, err
}

// Horizon is a table's horizon in the snapshot.
func (s *Snapshot) Horizon(name string) (int64, error) {
	tb, err := tableBucket(s.tx, name)
	if err != nil {
		return 0, err
	}
	return horizonOf(tb).version, nil
}

// Consumer is a reader of a table's change feed whose position retention
// respects: the table's horizon stays below Version.
type Consumer struct {
	Name  string `json:"name"`
	Table string `json:"table"`
	// Version is the oldest version the consumer has not consumed yet (its
	// next read); it has consumed every version before.
	Version int64 `json:"version"`
	// Kind is "stream" (a stream's checkpoint), "registered" (SetConsumer),
	// "delivery" (a consumer with a Position, such as the alert notifier)
	// or what the caller says of a position it passes in (e.g. "export").
	Kind      string `json:"kind"`
	UpdatedAt int64  `json:"updatedAt"` // ms since the Unix epoch
}

// SetConsumer registers consumer name of table at version (the oldest
// version it has not read), or moves it. A version whose change feed a
// vacuum already removed is refused with a *BelowHorizonError.
func (db *DB) SetConsumer(name, tableName string, version int64) error {
	if name == "" || strings.ContainsAny(name, "\x00") {
		return fmt.Errorf("consumer name %q: must be non-empty text", name)
	}
	if _, err := db.table(tableName); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, tableName)
		if err != nil {
			return err
		}
		last, err := lastCommit(tb)
		if err != nil {
			return err
		}
		if version < 0 || version > last.Version+1 {
			return fmt.Errorf("version %d: must be 0..%d (the next version of %s)", version, last.Version+1, tableName)
		}
		if h := horizonOf(tb).version; h > 0 && version <= h {
			return &BelowHorizonError{Table: tableName, What: "consumer position", Version: version, Horizon: h}
		}
		b, err := tx.CreateBucketIfNotExists(bucketConsumers)
		if err != nil {
			return err
		}
		return putJSON(b, []byte(name), Consumer{Name: name, Table: tableName, Version: version, Kind: "registered", UpdatedAt: db.now().UnixMilli()})
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", name, err)
	}
	return nil
}

// RemoveConsumer removes a registered consumer: retention no longer waits
// for it.
func (db *DB) RemoveConsumer(name string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketConsumers)
		if b == nil || b.Get([]byte(name)) == nil {
			return ErrNoConsumer
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", name, err)
	}
	return nil
}

// Consumers lists every consumer the store knows of: each stream (at its
// checkpoint) and each registered consumer, by name.
func (db *DB) Consumers() ([]Consumer, error) {
	var out []Consumer
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		out, err = consumersIn(tx)
		return err
	})
	return out, err
}

func consumersIn(tx *bolt.Tx) ([]Consumer, error) {
	var out []Consumer
	if b := tx.Bucket(bucketConsumers); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			if v == nil { // a delivering consumer (consumer.go): its position holds the feed
				var p Position
				if pv := b.Bucket(k).Get(subPosition); pv != nil {
					if err := jsonUnmarshal(pv, &p); err != nil {
						return err
					}
				}
				if p.Table != "" {
					out = append(out, Consumer{Name: string(k), Table: p.Table, Version: p.Version, Kind: "delivery"})
				}
				return nil
			}
			var c Consumer
			if err := jsonUnmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	streams := tx.Bucket(bucketStreams)
	if streams != nil {
		if err := streams.ForEachBucket(func(k []byte) error {
			cp, err := readCheckpoint(streams.Bucket(k), string(k))
			if err != nil {
				return err
			}
			if cp.Source == "" {
				return nil
			}
			out = append(out, Consumer{Name: cp.Stream, Table: cp.Source, Version: cp.SourceVersion + 1, Kind: "stream", UpdatedAt: cp.UpdatedAt})
			return nil
		}); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Consumer) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Retention is a retention policy. A version's change feed is removed only
// when every rule that is set allows it; with no rule set nothing is.
type Retention struct {
	// History keeps the change feed of versions committed within this long.
	History time.Duration
	// Versions keeps the change feed of the newest this many versions.
	Versions int64
}

// Off reports whether the policy removes nothing.
func (r Retention) Off() bool { return r.History <= 0 && r.Versions <= 0 }

// TableRetention is a table's retention state.
type TableRetention struct {
	Table   string
	Latest  int64
	Horizon int64 // now
	// Target is where a vacuum would move the horizon now, and HeldBy what
	// keeps it from going further: "policy", "latest" or a consumer's name.
	Target int64
	HeldBy string
	// Consumers are the table's consumers.
	Consumers []Consumer
	// ChangeFeedBytes are the change feed and notes kept now; Reclaimable
	// the part of them a vacuum would remove now. Removed bytes become free
	// pages of the file, which later writes reuse; only a compaction gives
	// them back to the file system.
	ChangeFeedBytes int64
	Reclaimable     int64
}

// retentionPlan computes a table's target horizon inside tx.
func retentionPlan(tx *bolt.Tx, tb *bolt.Bucket, name string, policy Retention, now time.Time, consumers []Consumer) (TableRetention, error) {
	last, err := lastCommit(tb)
	if err != nil {
		return TableRetention{}, err
	}
	tr := TableRetention{Table: name, Latest: last.Version, Horizon: horizonOf(tb).version}
	tr.Target, tr.HeldBy = tr.Horizon, "policy"
	if !policy.Off() {
		target := last.Version
		tr.HeldBy = "latest"
		if policy.Versions > 0 && last.Version-policy.Versions < target {
			target, tr.HeldBy = last.Version-policy.Versions, "policy"
		}
		if policy.History > 0 {
			// The newest version committed before the cutoff.
			cutoff := now.Add(-policy.History).UnixMilli()
			v := int64(-1)
			c := tb.Bucket(subTimes).Cursor()
			for k, ts := c.Last(); k != nil; k, ts = c.Prev() {
				if len(ts) == 8 && int64(beUint(ts)) < cutoff {
					v = int64(beUint(k))
					break
				}
			}
			if v < target {
				target, tr.HeldBy = v, "policy"
			}
		}
		tr.Target = target
	}
	for _, c := range consumers {
		if c.Table != name {
			continue
		}
		tr.Consumers = append(tr.Consumers, c)
		if c.Version-1 < tr.Target {
			tr.Target, tr.HeldBy = c.Version-1, c.Name
		}
	}
	if tr.Target < tr.Horizon {
		tr.Target = tr.Horizon
	}
	for _, sub := range [][]byte{subCDF, subNotes} {
		c := tb.Bucket(sub).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			tr.ChangeFeedBytes += int64(len(v))
			if int64(binary.BigEndian.Uint64(k[:8])) <= tr.Target {
				tr.Reclaimable += int64(len(v))
			}
		}
	}
	return tr, nil
}

// RetentionStatus reports every table's retention state under policy at
// now; extra are consumer positions kept outside the store (a Delta
// export's).
func (db *DB) RetentionStatus(policy Retention, now time.Time, extra []Consumer) ([]TableRetention, error) {
	var out []TableRetention
	err := db.bolt.View(func(tx *bolt.Tx) error {
		consumers, err := consumersIn(tx)
		if err != nil {
			return err
		}
		consumers = append(consumers, extra...)
		for _, name := range db.order {
			tb, err := tableBucket(tx, name)
			if err != nil {
				return err
			}
			tr, err := retentionPlan(tx, tb, name, policy, now, consumers)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			out = append(out, tr)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	return out, nil
}

// BaselineTx folds a stream's baseline (its state as of its source's
// horizon) forward, inside Vacuum's transaction, over the source versions
// whose change feed is about to go.
type BaselineTx struct {
	ctx      context.Context
	stream   string
	from, to int64
	src      *table
	srcTB    *bolt.Bucket
	b        *bolt.Bucket
	arena    []byte
}

// Stream is the stream whose baseline this is.
func (b *BaselineTx) Stream() string { return b.stream }

// Range is the source versions to fold: the baseline is at from-1 now and
// must be at to when the function returns.
func (b *BaselineTx) Range() (from, to int64) { return b.from, b.to }

// Changes streams the source's change feed of the range without its
// update_preimage rows (a baseline folds after-images). Every Change's Row
// shares one storage, valid until fn returns.
func (b *BaselineTx) Changes(fn func(Change) error) error {
	return b.src.feed(b.ctx, b.srcTB, b.from, b.to, feedOpts{reuse: true, noPreimages: true}, fn)
}

// Get returns the baseline's value for key (nil if none), valid until the
// transaction ends.
func (b *BaselineTx) Get(key []byte) []byte { return b.b.Get(key) }

// Put stores the baseline's value for key; the value is copied.
func (b *BaselineTx) Put(key, value []byte) error {
	if cap(b.arena)-len(b.arena) < len(value) {
		b.arena = make([]byte, 0, max(256<<10, len(value)))
	}
	start := len(b.arena)
	b.arena = append(b.arena, value...)
	return b.b.Put(key, b.arena[start:len(b.arena):len(b.arena)])
}

func forBaseline(sb *bolt.Bucket, fn func(k, v []byte) error) error {
	if sb == nil {
		return nil
	}
	b := sb.Bucket(subBaseline)
	if b == nil {
		return nil
	}
	return b.ForEach(fn)
}

// Baseline walks the stream's baseline (its state as of the source's
// horizon, written by Vacuum) and returns that horizon; with no vacuum yet
// it is empty at version 0.
func (s *Snapshot) Baseline(stream string, fn func(k, v []byte) error) (int64, error) {
	sb := s.tx.Bucket(bucketStreams).Bucket([]byte(stream))
	cp, err := readCheckpoint(sb, stream)
	if err != nil || cp.Source == "" {
		return 0, err
	}
	h, err := s.Horizon(cp.Source)
	if err != nil {
		return 0, err
	}
	return h, forBaseline(sb, fn)
}

// Baseline is Snapshot.Baseline inside the micro-batch (for a rebuild).
func (p *ProcessTx) Baseline(fn func(k, v []byte) error) (int64, error) {
	return horizonOf(p.srcTB).version, forBaseline(p.tx.Bucket(bucketStreams).Bucket([]byte(p.cp.Stream)), fn)
}

// VacuumOptions configures Vacuum.
type VacuumOptions struct {
	Policy Retention
	// Now is the time History counts back from (default the store's clock).
	Now time.Time
	// Consumers are positions kept outside the store (a Delta export's).
	Consumers []Consumer
	// Baseline folds a stream's baseline forward (see BaselineTx). A source
	// table that a stream reads is not vacuumed without it.
	Baseline func(*BaselineTx) error
	// Hook, if set, is called inside each table's transaction once its
	// work is done, before it commits; an error rolls that table back.
	// Tests use it to crash a vacuum half way.
	Hook func(table string) error
}

// TableVacuum is what Vacuum did to one table.
type TableVacuum struct {
	Table           string
	From, To        int64 // the horizon before and after
	Chunks          int   // change-feed and note chunks removed
	Bytes           int64 // their bytes
	BaseImages      int   // images kept at the horizon
	BaselinesFolded int   // streams whose baseline moved with it
	HeldBy          string
}

// Vacuum moves every table's horizon as far as the policy and the
// consumers allow and removes what is below it (see the comment at the top
// of retention.go). Each table is one bbolt transaction.
func (db *DB) Vacuum(ctx context.Context, opts VacuumOptions) ([]TableVacuum, error) {
	if opts.Now.IsZero() {
		opts.Now = db.now()
	}
	var out []TableVacuum
	for _, name := range db.order {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		res, err := db.vacuumTable(ctx, name, opts)
		if err != nil {
			return out, fmt.Errorf("vacuum %s: %w", name, err)
		}
		out = append(out, res)
		if res.To > res.From {
			db.log.Info("vacuumed", "table", name, "horizon", res.To, "previous", res.From, "chunks", res.Chunks,
				"bytes", res.Bytes, "base_images", res.BaseImages, "held_by", res.HeldBy)
		}
	}
	return out, nil
}

func (db *DB) vacuumTable(ctx context.Context, name string, opts VacuumOptions) (TableVacuum, error) {
	t, err := db.table(name)
	if err != nil {
		return TableVacuum{}, err
	}
	res := TableVacuum{Table: name}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, name)
		if err != nil {
			return err
		}
		consumers, err := consumersIn(tx)
		if err != nil {
			return err
		}
		plan, err := retentionPlan(tx, tb, name, opts.Policy, opts.Now, append(consumers, opts.Consumers...))
		if err != nil {
			return err
		}
		res.From, res.To, res.HeldBy = plan.Horizon, plan.Target, plan.HeldBy
		if plan.Target <= plan.Horizon {
			return errRollback
		}
		from, to := plan.Horizon, plan.Target
		// Streams reading this table fold their baselines over from+1..to
		// while that change feed is still here.
		for _, c := range consumers {
			if c.Kind != "stream" || c.Table != name {
				continue
			}
			if opts.Baseline == nil {
				return fmt.Errorf("stream %s keeps state over %s: vacuum needs its baseline folder", c.Name, name)
			}
			sb := tx.Bucket(bucketStreams).Bucket([]byte(c.Name))
			bb, err := sb.CreateBucketIfNotExists(subBaseline)
			if err != nil {
				return err
			}
			if err := opts.Baseline(&BaselineTx{ctx: ctx, stream: c.Name, from: from + 1, to: to, src: t, srcTB: tb, b: bb}); err != nil {
				return fmt.Errorf("baseline of stream %s: %w", c.Name, err)
			}
			res.BaselinesFolded++
		}
		n, err := db.keepBaseImages(ctx, t, tb, from, to, plan.Latest)
		if err != nil {
			return err
		}
		res.BaseImages = n
		for _, sub := range [][]byte{subCDF, subNotes} {
			chunks, size, err := removeChunks(tb.Bucket(sub), to)
			if err != nil {
				return err
			}
			res.Chunks += chunks
			res.Bytes += size
		}
		if err := tb.Bucket(subMeta).Put(keyHorizon, be64(to)); err != nil {
			return err
		}
		if opts.Hook != nil {
			return opts.Hook(name)
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		return res, nil
	}
	return res, err
}

// keepBaseImages rebuilds the base bucket for a horizon moving from..to:
// every record after to whose back pointer reaches at or below to makes the
// image it points at the key's image at the horizon (each key has at most
// one such record: the oldest after to).
func (db *DB) keepBaseImages(ctx context.Context, t *table, tb *bolt.Bucket, from, to, latest int64) (int, error) {
	cdf := tb.Bucket(subCDF)
	old := horizon{version: from, base: tb.Bucket(subBase)}
	type kept struct{ key, value []byte }
	var base []kept
	s, id := t.schema(), t.schemaID()
	err := forChunks(ctx, cdf, to+1, latest, func(_ int64, chunk []byte) error {
		d := decoder{b: chunk}
		for len(d.b) > 0 {
			img, err := t.decodeRecord(&d)
			if err != nil {
				return err
			}
			if img.typ == UpdatePreimage || !img.hasPrev || img.prev.version > to {
				continue
			}
			key, err := s.EncodeKey(nil, img.row)
			if err != nil {
				return err
			}
			var v []byte
			if old.removed(img.prev.version) {
				if v = old.baseValue(key); v == nil {
					return fmt.Errorf("%w: key %q: no image at the horizon (version %d)", ErrCorrupt, key, from)
				}
				v = slices.Clone(v)
			} else {
				prev, err := t.readImage(cdf, img.prev)
				if err != nil {
					return err
				}
				v = encodeCurrent(nil, s, id, prev.row, img.prev, prev.typ == Delete, prev.deletedAt)
			}
			base = append(base, kept{key, v})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if tb.Bucket(subBase) != nil {
		if err := tb.DeleteBucket(subBase); err != nil {
			return 0, err
		}
	}
	if len(base) == 0 {
		return 0, nil
	}
	b, err := tb.CreateBucket(subBase)
	if err != nil {
		return 0, err
	}
	slices.SortFunc(base, func(a, b kept) int { return bytes.Compare(a.key, b.key) })
	for _, k := range base {
		if err := b.Put(k.key, k.value); err != nil {
			return 0, err
		}
	}
	return len(base), nil
}

func (h horizon) baseValue(key []byte) []byte {
	if h.base == nil {
		return nil
	}
	return h.base.Get(key)
}

// removeChunks deletes the chunks of versions up to to.
func removeChunks(b *bolt.Bucket, to int64) (int, int64, error) {
	var keys [][]byte
	var size int64
	c := b.Cursor()
	for k, v := c.First(); k != nil && int64(binary.BigEndian.Uint64(k[:8])) <= to; k, v = c.Next() {
		keys = append(keys, slices.Clone(k))
		size += int64(len(v))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, 0, err
		}
	}
	return len(keys), size, nil
}

// keepBase is called before the first change of a key in a commit whose
// current image is at or below the horizon: the new record's back pointer
// will reach a removed chunk, so the image it points at (the current one,
// in the rows value) becomes the key's image at the horizon.
func (w *TableWriter) keepBase() error {
	if w.h.base == nil {
		b, err := w.tb.CreateBucketIfNotExists(subBase)
		if err != nil {
			return err
		}
		w.h.base = b
		w.h.base.FillPercent = 0.9
	}
	if w.h.base.Get(w.keyBuf) != nil {
		return nil
	}
	v := w.ix.get(w.keyBuf)
	if v == nil {
		return fmt.Errorf("%w: key %q: no current image", ErrCorrupt, w.keyBuf)
	}
	kept := w.value(func(b []byte) []byte { return append(b, v...) })
	return w.h.base.Put(w.keyBuf, kept)
}
