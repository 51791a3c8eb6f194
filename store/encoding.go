package store

import (
	"encoding/binary"
	"fmt"
)

// The encodings here are private, compact and append-only: a varint-framed
// list of fields. Values carry a leading format byte so a later release can
// change them without a rewrite.

func be64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

// chunkKey is the key of chunk n of version v in the cdf and stale buckets.
func chunkKey(v int64, n uint32) []byte {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(v))
	binary.BigEndian.PutUint32(b[8:], n)
	return b[:]
}

// histKey is key 0x00 version step. Keys never contain 0x00 (cdc refuses
// control characters), so all images of a key are contiguous and sort by
// (version, step), and "key" sorts before "key2" and its images.
func histKey(dst []byte, key string, v int64, step uint32) []byte {
	dst = append(dst, key...)
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	return binary.BigEndian.AppendUint32(dst, step)
}

// splitHistKey returns the row key, version and step of a hist key.
func splitHistKey(k []byte) (string, int64, uint32, bool) {
	if len(k) < 13 || k[len(k)-13] != 0 {
		return "", 0, 0, false
	}
	n := len(k) - 13
	return string(k[:n]), int64(binary.BigEndian.Uint64(k[n+1:])), binary.BigEndian.Uint32(k[n+9:]), true
}

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) byte(v byte)   { e.b = append(e.b, v) }

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated value", ErrCorrupt)
	}
	d.b = nil
}

func (d *decoder) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.fail()
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func (d *decoder) int() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) uint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// rowBody encodes every field of r but the transaction id.
func (e *encoder) rowBody(r *Row) {
	e.str(r.UPIID)
	e.str(r.MerchantID)
	e.int(int64(r.Amount))
	e.int(r.Time)
	e.byte(byte(r.Status))
}

func (d *decoder) rowBody(r *Row) {
	r.UPIID = d.str()
	r.MerchantID = d.str()
	r.Amount = Paise(d.int())
	r.Time = d.int()
	r.Status = Status(d.byte())
}

func (e *encoder) agg(a *Aggregate) {
	e.int(int64(a.TotalSales))
	e.int(int64(a.TotalRefunds))
	e.int(int64(a.NetSales))
	e.uint(uint64(a.Initiated))
	e.uint(uint64(a.Completed))
	e.uint(uint64(a.Failed))
	e.uint(uint64(a.Refunded))
	e.int(a.LastRawVersion)
}

func (d *decoder) agg(a *Aggregate) {
	a.TotalSales = Paise(d.int())
	a.TotalRefunds = Paise(d.int())
	a.NetSales = Paise(d.int())
	a.Initiated = int64(d.uint())
	a.Completed = int64(d.uint())
	a.Failed = int64(d.uint())
	a.Refunded = int64(d.uint())
	a.LastRawVersion = d.int()
}
