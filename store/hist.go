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

// The raw table keeps its current rows and its history apart:
//
//   rows: transaction_id → current image and where that image's change-feed
//         record sits. One random-key put per applied change; the tree holds
//         one entry per transaction, not per image.
//   cdf:  the change feed, append-only chunks. Every insert, update_postimage
//         and delete record carries a pointer to the previous such record of
//         the same transaction, so the change feed doubles as each row's
//         history: TxnHistory is one rows lookup and one chunk lookup per
//         image, and a MERGE writes no second random-key tree.

const flagHasPrev byte = 1 << 1

// imageRef locates a change-feed record: chunk key (version, chunk) and the
// record's byte offset inside the chunk.
type imageRef struct {
	version int64
	chunk   uint32
	offset  uint32
}

func (e *encoder) ref(r imageRef) {
	e.uint(uint64(r.version))
	e.uint(uint64(r.chunk))
	e.uint(uint64(r.offset))
}

func (d *decoder) ref() imageRef {
	return imageRef{version: int64(d.uint()), chunk: uint32(d.uint()), offset: uint32(d.uint())}
}

// rawCurrent is a decoded rows value.
type rawCurrent struct {
	row       Row
	at        imageRef
	deleted   bool
	deletedAt int64
}

func encodeRawCurrent(dst []byte, r *Row, at imageRef, deleted bool, deletedAt int64) []byte {
	e := encoder{b: dst}
	e.byte(histFormat)
	var flags byte
	if deleted {
		flags |= flagDeleted
	}
	e.byte(flags)
	e.ref(at)
	if deleted {
		e.int(deletedAt)
	}
	e.rowBody(r)
	return e.b
}

func decodeRawCurrent(id string, v []byte) (rawCurrent, error) {
	d := decoder{b: v}
	if f := d.byte(); f != histFormat {
		return rawCurrent{}, fmt.Errorf("%w: row value format %d", ErrCorrupt, f)
	}
	flags := d.byte()
	c := rawCurrent{row: Row{TransactionID: id}}
	c.at = d.ref()
	if flags&flagDeleted != 0 {
		c.deleted = true
		c.deletedAt = d.int()
	}
	d.rowBody(&c.row)
	return c, d.err
}

// rawImage is one image of a transaction, read from its change-feed record.
type rawImage struct {
	typ       ChangeType
	row       Row
	prev      imageRef
	hasPrev   bool
	deletedAt int64
}

func (img *rawImage) deleted() bool { return img.typ == Delete }

// readImage decodes the change-feed record at ref.
func readImage(cdf *bolt.Bucket, ref imageRef) (rawImage, error) {
	chunk := cdf.Get(chunkKey(ref.version, ref.chunk))
	if chunk == nil || int(ref.offset) >= len(chunk) {
		return rawImage{}, fmt.Errorf("%w: no change record at %d/%d/%d", ErrCorrupt, ref.version, ref.chunk, ref.offset)
	}
	d := decoder{b: chunk[ref.offset:]}
	img, err := d.rawRecord()
	return img, err
}

// imageAt walks id's image chain back from its current image to the newest
// image at or below version. ok is false if id did not exist then.
func imageAt(cdf *bolt.Bucket, cur rawCurrent, version int64) (rawImage, bool, error) {
	if cur.at.version <= version {
		img := rawImage{row: cur.row, deletedAt: cur.deletedAt, typ: Insert}
		if cur.deleted {
			img.typ = Delete
		}
		return img, true, nil
	}
	at := cur.at
	for {
		img, err := readImage(cdf, at)
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
// buf is scratch space for the seek key (may be nil).
func latestImage(c *bolt.Cursor, buf []byte, key string, maxVersion int64) (k, v []byte) {
	seek := histKey(buf[:0], key, maxVersion, ^uint32(0))
	k, v = c.Seek(seek)
	if k != nil && bytes.Equal(k, seek) {
		return k, v
	}
	k, v = c.Prev()
	// The entry must be key 0x00 version step: same prefix, same length.
	if k == nil || len(k) != len(seek) || !bytes.Equal(k[:len(key)+1], seek[:len(key)+1]) {
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
