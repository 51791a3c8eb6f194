package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Checkpoint is a stream's progress: everything up to SourceVersion of its
// source table is reflected in its derived tables, at Versions.
type Checkpoint struct {
	Stream        string           `json:"stream"`
	Source        string           `json:"source"`
	BatchID       int64            `json:"batchId"` // last committed micro-batch; -1 before the first
	SourceVersion int64            `json:"sourceVersion"`
	Versions      map[string]int64 `json:"versions"`  // derived table → its version at this checkpoint
	UpdatedAt     int64            `json:"updatedAt"` // ms since the Unix epoch
}

func initialCheckpoint(stream string) Checkpoint {
	return Checkpoint{Stream: stream, BatchID: -1, Versions: map[string]int64{}}
}

// ProcessTx is one micro-batch of a stream inside one bbolt write
// transaction: it reads the source's change feed and its keys' histories,
// writes derived tables and, through Commit, advances the checkpoint.
type ProcessTx struct {
	ctx     context.Context
	db      *DB
	tx      *bolt.Tx
	cp      Checkpoint
	src     *table
	srcTB   *bolt.Bucket
	srcLast int64
	srcH    horizon
	srcCDF  *bolt.Bucket
	earlier Row         // Earlier's row storage
	omit    uint64      // the columns SourceFeed's reader omits
	mapped  mappedMeter // file bytes read since the mapping was last released
	stream  *bolt.Bucket
	writers map[string]*TableWriter
	buckets map[string]*bolt.Bucket
	props   map[string]map[string]string
	commit  *commitReq
}

type commitReq struct {
	toVersion int64
	operation string
	params    map[string]string
	metrics   map[string]int64
	txn       bool
}

// Checkpoint is the stream's checkpoint before this micro-batch.
func (p *ProcessTx) Checkpoint() Checkpoint { return p.cp }

// SourceLatest is the source table's newest version.
func (p *ProcessTx) SourceLatest() int64 { return p.srcLast }

// SourceChanges streams the source table's change feed of from..to
// without its update_preimage rows (what a stream folds needs none). Every
// Change's Row shares one storage, valid until fn returns: copy what must
// be kept (a micro-batch reads millions of rows and keeps few).
func (p *ProcessTx) SourceChanges(from, to int64, fn func(Change) error) error {
	return p.src.feed(p.ctx, p.srcTB, from, to, feedOpts{reuse: true, noPreimages: true}, fn)
}

// Table returns the writer of derived table name's next version. Every
// table whose writer was asked for gets a version at Commit, changed or not.
func (p *ProcessTx) Table(name string) (*TableWriter, error) {
	if w := p.writers[name]; w != nil {
		return w, nil
	}
	t, err := p.db.table(name)
	if err != nil {
		return nil, err
	}
	if !t.derived {
		return nil, fmt.Errorf("table %s is not a derived table", name)
	}
	tb, err := tableBucket(p.tx, name)
	if err != nil {
		return nil, err
	}
	last, err := lastCommit(tb)
	if err != nil {
		return nil, err
	}
	w, err := newTableWriter(p.ctx, p.db, t, tb, last.Version+1)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", name, err)
	}
	p.writers[name], p.buckets[name] = w, tb
	return w, nil
}

// Properties returns a derived table's properties as stored.
func (p *ProcessTx) Properties(name string) (map[string]string, error) {
	if props, ok := p.props[name]; ok {
		return props, nil
	}
	tb, err := tableBucket(p.tx, name)
	if err != nil {
		return nil, err
	}
	var props map[string]string
	return props, jsonUnmarshal(tb.Bucket(subMeta).Get(keyProps), &props)
}

// SetProperties replaces a table's properties with this commit (the
// parameters it is now computed with).
func (p *ProcessTx) SetProperties(name string, props map[string]string) {
	p.props[name] = maps.Clone(props)
}

// Commit marks the micro-batch as done up to source version toVersion;
// params and metrics go to each written table's commit log, with a Delta
// txn action (appId = stream, version = batch id). Without Commit (or
// Rebuilt) the micro-batch is rolled back.
func (p *ProcessTx) Commit(toVersion int64, params map[string]string, metrics map[string]int64) {
	p.commit = &commitReq{toVersion: toVersion, operation: "STREAMING UPDATE", params: params, metrics: metrics, txn: true}
}

// Rebuilt commits the written tables as versions of operation (e.g.
// "BACKFILL") without moving the checkpoint's source version: the tables
// were recomputed at the position the stream already had.
func (p *ProcessTx) Rebuilt(operation string, params map[string]string, metrics map[string]int64) {
	p.commit = &commitReq{toVersion: p.cp.SourceVersion, operation: operation, params: params, metrics: metrics}
}

var errRollback = errors.New("rollback")

func readCheckpoint(sb *bolt.Bucket, stream string) (Checkpoint, error) {
	cp := initialCheckpoint(stream)
	if sb == nil {
		return cp, nil
	}
	if b := sb.Bucket(subCheckpoint); b != nil {
		if v := b.Get(subCheckpoint); v != nil {
			if err := jsonUnmarshal(v, &cp); err != nil {
				return cp, err
			}
		}
	}
	if cp.Versions == nil {
		cp.Versions = map[string]int64{}
	}
	return cp, nil
}

// Checkpoint returns a stream's checkpoint (the initial one if it never ran).
func (db *DB) Checkpoint(stream string) (Checkpoint, error) {
	var cp Checkpoint
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		cp, err = readCheckpoint(tx.Bucket(bucketStreams).Bucket([]byte(stream)), stream)
		return err
	})
	if err != nil {
		return cp, fmt.Errorf("checkpoint of stream %q: %w", stream, err)
	}
	return cp, nil
}

// Process runs fn as one micro-batch of stream over source. If fn commits,
// the new version of every derived table it wrote (rows, change feed,
// commit info with the txn identifier) and the advanced checkpoint are written in ONE bbolt transaction: a crash at any
// instant leaves either all of it or none. It reports whether it committed.
func (db *DB) Process(ctx context.Context, stream, source string, fn func(*ProcessTx) error) (Checkpoint, bool, error) {
	src, err := db.table(source)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("stream %s: %w", stream, err)
	}
	var next Checkpoint
	var sweeps []string
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		sb, err := tx.Bucket(bucketStreams).CreateBucketIfNotExists([]byte(stream))
		if err != nil {
			return fmt.Errorf("stream bucket: %w", err)
		}
		cpb, err := sb.CreateBucketIfNotExists(subCheckpoint)
		if err != nil {
			return err
		}
		// Releases before this one kept every transaction's contribution
		// in a state bucket written each micro-batch; the key histories
		// of the change feed replace it (see Earlier). Its pages go back
		// to the free list.
		if sb.Bucket(subState) != nil {
			if err := sb.DeleteBucket(subState); err != nil {
				return fmt.Errorf("drop the old state bucket: %w", err)
			}
		}
		cp, err := readCheckpoint(sb, stream)
		if err != nil {
			return err
		}
		if cp.Source == "" {
			cp.Source = source
		}
		if cp.Source != source {
			return fmt.Errorf("stream %s reads %s, not %s", stream, cp.Source, source)
		}
		srcTB, err := tableBucket(tx, source)
		if err != nil {
			return err
		}
		srcCDF, err := subBucket(srcTB, subCDF)
		if err != nil {
			return err
		}
		srcLast, err := lastCommit(srcTB)
		if err != nil {
			return err
		}
		p := &ProcessTx{
			ctx: ctx, db: db, tx: tx, cp: cp, src: src, srcTB: srcTB, srcLast: srcLast.Version,
			srcH: horizonOf(srcTB), srcCDF: srcCDF, stream: sb, writers: map[string]*TableWriter{}, buckets: map[string]*bolt.Bucket{},
			props: map[string]map[string]string{}, mapped: mappedMeter{tx: tx},
		}
		defer stopPrefetch(p.writers)
		if err := fn(p); err != nil {
			return err
		}
		req := p.commit
		if req == nil {
			return errRollback
		}
		batchID := cp.BatchID
		if req.txn {
			if req.toVersion <= cp.SourceVersion || req.toVersion > srcLast.Version {
				return fmt.Errorf("commit to %s version %d: outside %d..%d", source, req.toVersion, cp.SourceVersion+1, srcLast.Version)
			}
			batchID++
		}
		next = Checkpoint{Stream: stream, Source: source, BatchID: batchID, SourceVersion: req.toVersion,
			Versions: maps.Clone(cp.Versions)}
		names := slices.Sorted(maps.Keys(p.writers))
		for name := range p.props {
			if p.writers[name] == nil {
				return fmt.Errorf("properties of %s set without writing it", name)
			}
		}
		for _, name := range names {
			w, tb := p.writers[name], p.buckets[name]
			if err := w.flush(); err != nil {
				return err
			}
			if w.sweepDue() {
				sweeps = append(sweeps, name)
			}
			last, err := lastCommit(tb)
			if err != nil {
				return err
			}
			params := map[string]string{
				"queryId":         stream,
				"startingVersion": strconv.FormatInt(cp.SourceVersion+1, 10),
				"endingVersion":   strconv.FormatInt(req.toVersion, 10),
			}
			if req.txn {
				params["outputMode"] = "Update"
				params["epochId"] = strconv.FormatInt(batchID, 10)
			}
			maps.Copy(params, req.params)
			if props, ok := p.props[name]; ok {
				if err := putJSON(tb.Bucket(subMeta), keyProps, props); err != nil {
					return err
				}
				for k, v := range props {
					params["properties."+k] = v
				}
			}
			metrics := w.metrics()
			maps.Copy(metrics, req.metrics)
			ci := CommitInfo{
				Version:             w.version,
				Timestamp:           db.nextTimestamp(last.Timestamp),
				Operation:           req.operation,
				OperationParameters: params,
				OperationMetrics:    metrics,
			}
			if req.txn {
				ci.Txn = &TxnID{AppID: stream, Version: batchID}
			}
			if err := putCommit(tb, ci); err != nil {
				return err
			}
			next.Versions[name] = w.version
			next.UpdatedAt = max(next.UpdatedAt, ci.Timestamp)
		}
		if next.UpdatedAt == 0 {
			next.UpdatedAt = db.now().UnixMilli()
		}
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		return cpb.Put(subCheckpoint, data)
	})
	if errors.Is(err, errRollback) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("stream %s: %w", stream, err)
	}
	db.sweepAfter(ctx, sweeps)
	return next, true, nil
}

// Progress is a stream's position against its source and tables, read in
// one transaction so the numbers belong together.
type Progress struct {
	Checkpoint Checkpoint
	// SourceVersion is the source table's latest version.
	SourceVersion int64
	// Latest is every table's latest version.
	Latest map[string]int64
	// OldestPending is the commit timestamp (ms) of the first source
	// version the stream has not processed; 0 when it is caught up.
	OldestPending int64
}

// Progress reads a stream's checkpoint and every table's latest version in
// one read transaction.
func (db *DB) Progress(stream, source string) (Progress, error) {
	p := Progress{Latest: map[string]int64{}}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		if p.Checkpoint, err = readCheckpoint(tx.Bucket(bucketStreams).Bucket([]byte(stream)), stream); err != nil {
			return err
		}
		for _, name := range db.order {
			tb, err := tableBucket(tx, name)
			if err != nil {
				return err
			}
			k, _ := tb.Bucket(subLog).Cursor().Last()
			if k == nil {
				return fmt.Errorf("%w: %s has no commits", ErrCorrupt, name)
			}
			p.Latest[name] = int64(beUint(k))
		}
		p.SourceVersion = p.Latest[source]
		if p.Checkpoint.SourceVersion < p.SourceVersion {
			tb, err := tableBucket(tx, source)
			if err != nil {
				return err
			}
			if p.OldestPending, err = commitTimes(tb)(p.Checkpoint.SourceVersion + 1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("progress of stream %q: %w", stream, err)
	}
	return p, nil
}
