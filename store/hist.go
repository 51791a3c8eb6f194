package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Hist values: a format byte, a flags byte, then the body.
const (
	histFormat  byte = 1
	flagDeleted byte = 1 << 0
)

// rawState is the decoded newest image of a raw row.
type rawState struct {
	row       Row
	version   int64
	step      uint32
	deleted   bool
	deletedAt int64
}

func encodeRawHist(r *Row, deleted bool, deletedAt int64) []byte {
	e := encoder{b: make([]byte, 0, 16+len(r.UPIID)+len(r.MerchantID)+24)}
	e.byte(histFormat)
	if deleted {
		e.byte(flagDeleted)
	} else {
		e.byte(0)
	}
	e.rowBody(r)
	if deleted {
		e.int(deletedAt)
	}
	return e.b
}

func decodeRawHist(id string, v []byte) (Row, bool, int64, error) {
	d := decoder{b: v}
	if f := d.byte(); f != histFormat {
		return Row{}, false, 0, fmt.Errorf("%w: hist value format %d", ErrCorrupt, f)
	}
	flags := d.byte()
	r := Row{TransactionID: id}
	d.rowBody(&r)
	var at int64
	deleted := flags&flagDeleted != 0
	if deleted {
		at = d.int()
	}
	return r, deleted, at, d.err
}

func encodeAggHist(a *Aggregate) []byte {
	e := encoder{b: make([]byte, 0, 48)}
	e.byte(histFormat)
	e.byte(0)
	e.agg(a)
	return e.b
}

func decodeAggHist(id string, v []byte) (Aggregate, error) {
	d := decoder{b: v}
	if f := d.byte(); f != histFormat {
		return Aggregate{}, fmt.Errorf("%w: hist value format %d", ErrCorrupt, f)
	}
	d.byte()
	a := Aggregate{MerchantID: id}
	d.agg(&a)
	return a, d.err
}

// latestImage finds the newest hist entry of key at or below maxVersion.
func latestImage(c *bolt.Cursor, key string, maxVersion int64) (k, v []byte) {
	prefix := append([]byte(key), 0)
	seek := histKey(make([]byte, 0, len(key)+13), key, maxVersion, ^uint32(0))
	k, v = c.Seek(seek)
	if k != nil && bytes.Equal(k, seek) {
		return k, v
	}
	k, v = c.Prev()
	if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+12 {
		return nil, nil
	}
	return k, v
}

// scanLatest calls fn with the newest image ≤ maxVersion of every key, in key
// order. It walks the hist tree once: images of a key are contiguous.
func scanLatest(b *bolt.Bucket, maxVersion int64, fn func(key string, k, v []byte) error) error {
	c := b.Cursor()
	var curKey string
	var curK, curV []byte
	have := false
	for k, v := c.First(); k != nil; k, v = c.Next() {
		key, ver, _, ok := splitHistKey(k)
		if !ok {
			return fmt.Errorf("%w: hist key %x", ErrCorrupt, k)
		}
		if have && key != curKey {
			if err := fn(curKey, curK, curV); err != nil {
				return err
			}
			have = false
		}
		if ver <= maxVersion {
			curKey, curK, curV, have = key, k, v, true
		}
	}
	if have {
		return fn(curKey, curK, curV)
	}
	return nil
}
