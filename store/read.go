package store

import (
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// TxnHistory returns every image of one transaction, oldest first, with
// commit timestamps: one rows lookup, then one change-feed chunk lookup per
// image (following each record's pointer to the previous one).
func (db *DB) TxnHistory(id string) ([]RowVersion, error) {
	var out []RowVersion
	err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		v := tb.Bucket(subRows).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		cur, err := decodeRawCurrent(id, v)
		if err != nil {
			return err
		}
		cdf := tb.Bucket(subCDF)
		ts := commitTimes(tb)
		at, ok := cur.at, true
		for ok {
			img, err := readImage(cdf, at)
			if err != nil {
				return err
			}
			t, err := ts(at.version)
			if err != nil {
				return err
			}
			out = append(out, RowVersion{Version: at.version, Timestamp: t,
				Deleted: img.deleted(), DeletedAt: img.deletedAt, Row: img.row})
			at, ok = img.prev, img.hasPrev
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
		return nil, fmt.Errorf("transaction %q: %w", id, err)
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
		k, v := latestImage(tb.Bucket(subHist).Cursor(), nil, merchantID, last.Version)
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
// latest) in transaction_id order, and returns the version read. Reading an
// old version walks each changed row's history back.
func (db *DB) ScanRows(ctx context.Context, version int64, fn func(Row) error) (int64, error) {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, RawTable)
		if err != nil {
			return err
		}
		if version, err = resolveVersion(tb, version); err != nil {
			return err
		}
		cdf := tb.Bucket(subCDF)
		c := tb.Bucket(subRows).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			id := string(k)
			cur, err := decodeRawCurrent(id, v)
			if err != nil {
				return err
			}
			img, ok, err := imageAt(cdf, cur, version)
			if err != nil {
				return err
			}
			if !ok || img.deleted() {
				continue
			}
			if err := fn(img.row); err != nil {
				return err
			}
		}
		return nil
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
