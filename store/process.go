package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Checkpoint is a stream's progress: everything up to RawVersion of the raw
// table is reflected in the aggregated table at AggVersion.
type Checkpoint struct {
	Stream     string `json:"stream"`
	BatchID    int64  `json:"batchId"` // last committed micro-batch; -1 before the first
	RawVersion int64  `json:"rawVersion"`
	AggVersion int64  `json:"aggVersion"`
	UpdatedAt  int64  `json:"updatedAt"` // ms since the Unix epoch
}

// Contribution is what one transaction currently adds to its merchant's
// aggregate. Keeping it per transaction is what makes replays and no-op
// updates unable to double count: a new image replaces the old contribution,
// it never adds to it.
type Contribution struct {
	MerchantID string
	Sale       Paise  // amount of the newest completed image, 0 if none
	Refund     Paise  // amount of the newest refunded image, 0 if none
	Status     Status // current status
	Live       bool   // false once deleted
}

func encodeContribution(c *Contribution) []byte {
	e := encoder{b: make([]byte, 0, 24+len(c.MerchantID))}
	e.byte(histFormat)
	var flags byte
	if !c.Live {
		flags |= flagDeleted
	}
	e.byte(flags)
	e.str(c.MerchantID)
	e.int(int64(c.Sale))
	e.int(int64(c.Refund))
	e.byte(byte(c.Status))
	return e.b
}

func decodeContribution(v []byte) (Contribution, error) {
	d := decoder{b: v}
	if f := d.byte(); f != histFormat {
		return Contribution{}, fmt.Errorf("%w: contribution format %d", ErrCorrupt, f)
	}
	flags := d.byte()
	c := Contribution{MerchantID: d.str(), Sale: Paise(d.int()), Refund: Paise(d.int()), Status: Status(d.byte())}
	c.Live = flags&flagDeleted == 0
	return c, d.err
}

// ProcessTx is one micro-batch of a stream inside one bbolt write
// transaction: it reads the raw change feed, replaces contributions, writes
// aggregate rows and, through Commit, advances the checkpoint.
type ProcessTx struct {
	ctx        context.Context
	tx         *bolt.Tx
	cp         Checkpoint
	rawLatest  int64
	aggVersion int64
	contrib    *bolt.Bucket
	hist       *bolt.Bucket
	histCur    *bolt.Cursor
	cdf        *chunkWriter
	lastContr  string
	lastAgg    string
	inserted   int64
	updated    int64

	committed bool
	toVersion int64
	params    map[string]string
	metrics   map[string]int64
}

// Checkpoint is the stream's checkpoint before this micro-batch.
func (p *ProcessTx) Checkpoint() Checkpoint { return p.cp }

// RawLatest is the raw table's newest version.
func (p *ProcessTx) RawLatest() int64 { return p.rawLatest }

// AggVersion is the aggregated table version this micro-batch would commit.
func (p *ProcessTx) AggVersion() int64 { return p.aggVersion }

// RawChanges streams the raw change feed of from..to, as DB.Changes.
func (p *ProcessTx) RawChanges(from, to int64, fn func(Change) error) error {
	return rawChanges(p.ctx, p.tx, from, to, fn)
}

// Contribution returns a transaction's stored contribution.
func (p *ProcessTx) Contribution(id string) (Contribution, bool, error) {
	v := p.contrib.Get([]byte(id))
	if v == nil {
		return Contribution{}, false, nil
	}
	c, err := decodeContribution(v)
	if err != nil {
		return c, false, fmt.Errorf("contribution of %q: %w", id, err)
	}
	return c, true, nil
}

// PutContribution stores a transaction's contribution. Ids must come in
// increasing order.
func (p *ProcessTx) PutContribution(id string, c Contribution) error {
	if p.lastContr != "" && id <= p.lastContr {
		return fmt.Errorf("contribution %q after %q: %w", id, p.lastContr, ErrOutOfOrder)
	}
	p.lastContr = id
	return p.contrib.Put([]byte(id), encodeContribution(&c))
}

// Aggregate returns a merchant's current aggregate row.
func (p *ProcessTx) Aggregate(merchantID string) (Aggregate, bool, error) {
	k, v := latestImage(p.histCur, nil, merchantID, p.aggVersion)
	if k == nil {
		return Aggregate{}, false, nil
	}
	a, err := decodeAggHist(merchantID, v)
	return a, err == nil, err
}

// PutAggregate writes a merchant's new aggregate row with its change-feed
// rows (insert, or update_preimage + update_postimage). Merchants must come
// in increasing order.
func (p *ProcessTx) PutAggregate(a Aggregate) error {
	if p.lastAgg != "" && a.MerchantID <= p.lastAgg {
		return fmt.Errorf("merchant %q after %q: %w", a.MerchantID, p.lastAgg, ErrOutOfOrder)
	}
	p.lastAgg = a.MerchantID
	before, found, err := p.Aggregate(a.MerchantID)
	if err != nil {
		return err
	}
	if found && before == a {
		return nil
	}
	k := histKey(make([]byte, 0, len(a.MerchantID)+13), a.MerchantID, p.aggVersion, 0)
	if err := p.hist.Put(k, encodeAggHist(&a)); err != nil {
		return fmt.Errorf("merchant %q: %w", a.MerchantID, err)
	}
	if found {
		p.updated++
		p.cdf.enc.aggChange(UpdatePreimage, &before)
		if err := p.cdf.next(); err != nil {
			return err
		}
		p.cdf.enc.aggChange(UpdatePostimage, &a)
	} else {
		p.inserted++
		p.cdf.enc.aggChange(Insert, &a)
	}
	return p.cdf.next()
}

// Commit marks the micro-batch as done up to raw version toVersion; params
// and metrics go to the aggregated table's commit log. Without Commit the
// micro-batch is rolled back.
func (p *ProcessTx) Commit(toVersion int64, params map[string]string, metrics map[string]int64) {
	p.committed, p.toVersion, p.params, p.metrics = true, toVersion, params, metrics
}

var errRollback = errors.New("rollback")

func initialCheckpoint(stream string) Checkpoint {
	return Checkpoint{Stream: stream, BatchID: -1}
}

// Checkpoint returns a stream's checkpoint (the initial one if it never ran).
func (db *DB) Checkpoint(stream string) (Checkpoint, error) {
	cp := initialCheckpoint(stream)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketStreams).Bucket([]byte(stream))
		if sb == nil {
			return nil
		}
		if v := sb.Bucket(subCheckpoint).Get(subCheckpoint); v != nil {
			return jsonUnmarshal(v, &cp)
		}
		return nil
	})
	if err != nil {
		return cp, fmt.Errorf("checkpoint of stream %q: %w", stream, err)
	}
	return cp, nil
}

// Process runs fn as one micro-batch of stream. If fn calls Commit, the new
// aggregated-table version (rows, change feed, commit info with the txn
// identifier appId=stream, version=batch id), the contributions and the
// advanced checkpoint are written in ONE bbolt transaction: a crash at any
// instant leaves either all of it or none. It reports whether it committed.
func (db *DB) Process(ctx context.Context, stream string, fn func(*ProcessTx) error) (CommitInfo, bool, error) {
	var ci CommitInfo
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		sb, err := tx.Bucket(bucketStreams).CreateBucketIfNotExists([]byte(stream))
		if err != nil {
			return fmt.Errorf("stream bucket: %w", err)
		}
		cpb, err := sb.CreateBucketIfNotExists(subCheckpoint)
		if err != nil {
			return err
		}
		contrib, err := sb.CreateBucketIfNotExists(subContrib)
		if err != nil {
			return err
		}
		cp := initialCheckpoint(stream)
		if v := cpb.Get(subCheckpoint); v != nil {
			if err := jsonUnmarshal(v, &cp); err != nil {
				return err
			}
		}
		rawTB, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		rawLast, err := lastCommit(rawTB)
		if err != nil {
			return err
		}
		aggTB, err := tableBucket(tx, AggTable)
		if err != nil {
			return err
		}
		aggLast, err := lastCommit(aggTB)
		if err != nil {
			return err
		}
		hist := aggTB.Bucket(subHist)
		p := &ProcessTx{
			ctx: ctx, tx: tx, cp: cp,
			rawLatest:  rawLast.Version,
			aggVersion: aggLast.Version + 1,
			contrib:    contrib,
			hist:       hist,
			histCur:    hist.Cursor(),
			cdf:        newChunkWriter(aggTB.Bucket(subCDF), aggLast.Version+1),
		}
		if err := fn(p); err != nil {
			return err
		}
		if !p.committed {
			return errRollback
		}
		if p.toVersion <= cp.RawVersion || p.toVersion > rawLast.Version {
			return fmt.Errorf("commit to raw version %d: outside %d..%d", p.toVersion, cp.RawVersion+1, rawLast.Version)
		}
		if err := p.cdf.flush(); err != nil {
			return err
		}
		batchID := cp.BatchID + 1
		params := map[string]string{
			"outputMode":      "Update",
			"queryId":         stream,
			"epochId":         strconv.FormatInt(batchID, 10),
			"startingVersion": strconv.FormatInt(cp.RawVersion+1, 10),
			"endingVersion":   strconv.FormatInt(p.toVersion, 10),
		}
		maps.Copy(params, p.params)
		metrics := map[string]int64{
			"numTargetRowsInserted":   p.inserted,
			"numTargetRowsUpdated":    p.updated,
			"numOutputRows":           p.inserted + p.updated,
			"numTargetChangeFileRows": p.cdf.rows,
		}
		maps.Copy(metrics, p.metrics)
		ci = CommitInfo{
			Version:             p.aggVersion,
			Timestamp:           db.nextTimestamp(aggLast.Timestamp),
			Operation:           "STREAMING UPDATE",
			OperationParameters: params,
			OperationMetrics:    metrics,
			Txn:                 &TxnID{AppID: stream, Version: batchID},
		}
		if err := putCommit(aggTB, ci); err != nil {
			return err
		}
		next := Checkpoint{Stream: stream, BatchID: batchID, RawVersion: p.toVersion, AggVersion: p.aggVersion, UpdatedAt: ci.Timestamp}
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		return cpb.Put(subCheckpoint, data)
	})
	if errors.Is(err, errRollback) {
		return CommitInfo{}, false, nil
	}
	if err != nil {
		return CommitInfo{}, false, fmt.Errorf("stream %s: %w", stream, err)
	}
	return ci, true, nil
}

// Progress is a stream's position against both tables, read in one
// transaction so the numbers belong together.
type Progress struct {
	Checkpoint Checkpoint
	RawVersion int64 // the raw table's latest version
	AggVersion int64 // the aggregated table's latest version
	// OldestPending is the commit timestamp (ms) of the first raw version
	// the stream has not processed; 0 when it is caught up.
	OldestPending int64
}

// Progress reads a stream's checkpoint and both tables' latest versions in
// one read transaction.
func (db *DB) Progress(stream string) (Progress, error) {
	p := Progress{Checkpoint: initialCheckpoint(stream)}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if sb := tx.Bucket(bucketStreams).Bucket([]byte(stream)); sb != nil {
			if v := sb.Bucket(subCheckpoint).Get(subCheckpoint); v != nil {
				if err := jsonUnmarshal(v, &p.Checkpoint); err != nil {
					return err
				}
			}
		}
		raw, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		last, err := lastCommit(raw)
		if err != nil {
			return err
		}
		p.RawVersion = last.Version
		if p.Checkpoint.RawVersion < p.RawVersion {
			if p.OldestPending, err = commitTimes(raw)(p.Checkpoint.RawVersion + 1); err != nil {
				return err
			}
		}
		aggTB, err := tableBucket(tx, AggTable)
		if err != nil {
			return err
		}
		k, _ := aggTB.Bucket(subLog).Cursor().Last()
		if k == nil {
			return fmt.Errorf("%w: %s has no commits", ErrCorrupt, AggTable)
		}
		p.AggVersion = int64(beUint(k))
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("progress of stream %q: %w", stream, err)
	}
	return p, nil
}
