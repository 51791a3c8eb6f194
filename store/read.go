package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// TxnHistory returns every image of one transaction, oldest first, with
// commit timestamps. It is a key-range read, not a scan.
func (db *DB) TxnHistory(id string) ([]RowVersion, error) {
	var out []RowVersion
	err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		ts := commitTimes(tb)
		prefix := append([]byte(id), 0)
		c := tb.Bucket(subHist).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			_, ver, step, ok := splitHistKey(k)
			if !ok || len(k) != len(prefix)+12 {
				continue
			}
			r, del, at, err := decodeRawHist(id, v)
			if err != nil {
				return err
			}
			t, err := ts(ver)
			if err != nil {
				return err
			}
			out = append(out, RowVersion{Version: ver, Step: step, Timestamp: t, Deleted: del, DeletedAt: at, Row: r})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("transaction %q: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("transaction %q: %w", id, ErrNotFound)
	}
	return out, nil
}

// resolveVersion maps version < 0 to the latest and checks it exists.
func resolveVersion(tb *bolt.Bucket, version int64) (int64, error) {
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
	return version, nil
}

// Aggregates returns the aggregated table at version (< 0: latest), ordered
// by merchant_id, and the version read.
func (db *DB) Aggregates(version int64) ([]Aggregate, int64, error) {
	var out []Aggregate
	err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, AggTable)
		if err != nil {
			return err
		}
		if version, err = resolveVersion(tb, version); err != nil {
			return err
		}
		return scanLatest(tb.Bucket(subHist), version, func(key string, _, v []byte) error {
			a, err := decodeAggHist(key, v)
			if err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", AggTable, err)
	}
	return out, version, nil
}

// Aggregate returns one merchant's current row.
func (db *DB) Aggregate(merchantID string) (Aggregate, error) {
	var a Aggregate
	err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, AggTable)
		if err != nil {
			return err
		}
		last, err := lastCommit(tb)
		if err != nil {
			return err
		}
		k, v := latestImage(tb.Bucket(subHist).Cursor(), merchantID, last.Version)
		if k == nil {
			return ErrNotFound
		}
		a, err = decodeAggHist(merchantID, v)
		return err
	})
	if err != nil {
		return a, fmt.Errorf("merchant %q: %w", merchantID, err)
	}
	return a, nil
}

// ScanRows calls fn with every live row of the raw table at version (< 0:
// latest) in transaction_id order, and returns the version read.
func (db *DB) ScanRows(ctx context.Context, version int64, fn func(Row) error) (int64, error) {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		if version, err = resolveVersion(tb, version); err != nil {
			return err
		}
		n := 0
		return scanLatest(tb.Bucket(subHist), version, func(key string, _, v []byte) error {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			r, del, _, err := decodeRawHist(key, v)
			if err != nil || del {
				return err
			}
			return fn(r)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", RawTable, err)
	}
	return version, nil
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
