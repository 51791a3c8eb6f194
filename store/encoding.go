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

type encoder struct {
	b []byte
	// compactTime encodes Timestamp columns with putTime (the new record
	// form and rows format 3); without it they are plain varints.
	compactTime bool
}

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
	// compactTime: Timestamp columns were encoded with putTime.
	compactTime bool
	// omit marks columns (bit i: column i of the table's current schema)
	// whose values a reader does not want: they are skipped, and left
	// zero, which spares allocating their strings.
	omit uint64
}

// skipStr steps over a string.
func (d *decoder) skipStr() {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.fail()
		return
	}
	d.b = d.b[k+int(n):]
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

func (e *encoder) bytes(b []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(b)))
	e.b = append(e.b, b...)
}

// rawBytes returns the next length-prefixed byte string, aliasing d's buffer.
func (d *decoder) rawBytes() []byte {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.fail()
		return nil
	}
	b := d.b[k : k+int(n)]
	d.b = d.b[k+int(n):]
	return b
}

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

// timeEpoch is 2024-01-01T00:00:00Z in microseconds: compact timestamps are
// counted from it.
const timeEpoch int64 = 1_704_067_200_000_000

// putTime encodes a Timestamp (µs) compactly: the offset from timeEpoch in
// whole seconds, milliseconds or microseconds, whichever is exact, zigzagged,
// with the unit in the low two bits of one uvarint (3: a plain varint of the
// value follows). A time of 2025 to the second takes 4 bytes, to the
// millisecond 6, against 8 as a plain varint.
func (e *encoder) putTime(v int64) {
	d := v - timeEpoch // wraps for far-off values; getTime wraps it back
	unit, x := uint64(0), d
	switch {
	case d%1_000_000 == 0:
		unit, x = 2, d/1_000_000
	case d%1_000 == 0:
		unit, x = 1, d/1_000
	}
	z := uint64(x<<1) ^ uint64(x>>63)
	if z >= 1<<62 {
		e.uint(3)
		e.int(v)
		return
	}
	e.uint(z<<2 | unit)
}

func (d *decoder) getTime() int64 {
	u := d.uint()
	if u&3 == 3 {
		return d.int()
	}
	z := u >> 2
	x := int64(z>>1) ^ -int64(z&1)
	switch u & 3 {
	case 2:
		x *= 1_000_000
	case 1:
		x *= 1_000
	}
	return x + timeEpoch
}
