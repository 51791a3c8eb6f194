package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Type is a column's type. The store encodes rows by their table's schema;
// it knows types, never what any column means.
type Type uint8

// Column types.
const (
	// String is UTF-8 text. A key column of type String must not contain NUL.
	String Type = iota + 1
	// Int is a 64-bit signed integer.
	Int
	// Money is exact money in integer minor units (paise), decimal(18,2)
	// outside the store.
	Money
	// Timestamp is microseconds since the Unix epoch; Column.Zone says which
	// zone it is shown in.
	Timestamp
	// Bool is true or false.
	Bool
	// Enum is one of Column.Enum's strings (or ""), stored as its index.
	Enum
)

var typeNames = [...]string{"", "string", "long", "decimal(18,2)", "timestamp", "boolean", "string"}

// String returns the type's Delta/Spark name.
func (t Type) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Column is one column of a table's schema.
type Column struct {
	Name string
	Type Type
	// Nullable columns may hold Value.Null.
	Nullable bool
	// Zone is the time zone a Timestamp column is shown in (nil: UTC).
	Zone *time.Location
	// Enum lists an Enum column's values.
	Enum []string
	// Doc is a one-line description, shown by `upicdc tables` and in SQL.
	Doc string
}

// Schema is a table's columns; the first KeyColumns of them are its key.
type Schema struct {
	Columns    []Column
	KeyColumns int
}

// Index returns the position of the named column, or -1.
func (s *Schema) Index(name string) int {
	for i, c := range s.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// KeyNames returns the key columns' names.
func (s *Schema) KeyNames() []string {
	out := make([]string, s.KeyColumns)
	for i := range out {
		out[i] = s.Columns[i].Name
	}
	return out
}

// Value is one cell. Which field holds it is decided by the column's type:
// Str for String and Enum, Int for Int, Money (paise), Timestamp (µs) and
// Bool (0/1).
type Value struct {
	Str  string
	Int  int64
	Null bool
}

// Row is one row of a table: one Value per schema column, in order.
type Row []Value

// S, I, M, T and B build Values.
func S(s string) Value             { return Value{Str: s} }
func I(i int64) Value              { return Value{Int: i} }
func M(p Paise) Value              { return Value{Int: int64(p)} }
func T(t time.Time) Value          { return Value{Int: t.UnixMicro()} }
func B(b bool) Value               { return Value{Int: boolInt(b)} }
func Null() Value                  { return Value{Null: true} }
func (v Value) Paise() Paise       { return Paise(v.Int) }
func (v Value) Bool() bool         { return v.Int != 0 }
func (v Value) Micros() int64      { return v.Int }
func (v Value) Time() time.Time    { return time.UnixMicro(v.Int).UTC() }
func (v Value) Equal(o Value) bool { return v == o }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Paise is an amount of money in integer minor units (1 rupee = 100 paise).
// Money never passes through floating point anywhere in upicdc.
type Paise int64

// MaxPaise is the largest amount a decimal(18,2) column can hold, in paise.
const MaxPaise Paise = 999_999_999_999_999_999

// String formats p the way the seed's tables do: whole rupees without a
// fraction ("500", "-500"), otherwise exactly two decimals ("500.50").
func (p Paise) String() string {
	s := p.Decimal()
	if len(s) > 3 && s[len(s)-3:] == ".00" {
		return s[:len(s)-3]
	}
	return s
}

// Decimal formats p with exactly two decimals ("500.00"), as decimal(18,2).
func (p Paise) Decimal() string {
	u := uint64(p)
	sign := ""
	if p < 0 {
		u, sign = uint64(-p), "-"
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// EncodeKey appends the order-preserving encoding of a row's key columns:
// strings end with 0x00 (so "a" sorts before "a\x00…" and "ab"), integers
// are big-endian with the sign bit flipped. A single String key is its
// bytes alone, so the common one-column key costs nothing to encode.
func (s *Schema) EncodeKey(dst []byte, r Row) ([]byte, error) {
	if len(r) < s.KeyColumns {
		return dst, fmt.Errorf("row has %d values, key needs %d", len(r), s.KeyColumns)
	}
	for i := 0; i < s.KeyColumns; i++ {
		c, v := s.Columns[i], r[i]
		if c.Type == String {
			for j := 0; j < len(v.Str); j++ {
				if v.Str[j] == 0 {
					return dst, fmt.Errorf("key column %s: value contains NUL", c.Name)
				}
			}
			dst = append(dst, v.Str...)
			if s.KeyColumns > 1 {
				dst = append(dst, 0)
			}
			continue
		}
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Int)^(1<<63))
	}
	return dst, nil
}

// decodeKey fills r's key columns from k.
func (s *Schema) decodeKey(k []byte, r Row) error {
	if s.KeyColumns == 1 && s.Columns[0].Type == String {
		r[0] = Value{Str: string(k)}
		return nil
	}
	for i := 0; i < s.KeyColumns; i++ {
		if s.Columns[i].Type == String {
			n := 0
			for n < len(k) && k[n] != 0 {
				n++
			}
			if n == len(k) {
				return fmt.Errorf("%w: key %x", ErrCorrupt, k)
			}
			r[i] = Value{Str: string(k[:n])}
			k = k[n+1:]
			continue
		}
		if len(k) < 8 {
			return fmt.Errorf("%w: key %x", ErrCorrupt, k)
		}
		r[i] = Value{Int: int64(binary.BigEndian.Uint64(k) ^ (1 << 63))}
		k = k[8:]
	}
	return nil
}

// body encodes the non-key columns.
func (s *Schema) body(e *encoder, r Row) {
	for i := s.KeyColumns; i < len(s.Columns); i++ {
		v := r[i]
		if s.Columns[i].Nullable {
			if v.Null {
				e.byte(0)
				continue
			}
			e.byte(1)
		}
		switch c := &s.Columns[i]; c.Type {
		case String:
			e.str(v.Str)
		case Enum:
			e.uint(uint64(enumIndex(c.Enum, v.Str)))
		case Timestamp:
			if e.compactTime {
				e.putTime(v.Int)
			} else {
				e.int(v.Int)
			}
		default:
			e.int(v.Int)
		}
	}
}

// enumIndex returns 1 + the index of s in values, 0 for "" or unknown
// (check refuses unknown values before anything is encoded).
func enumIndex(values []string, s string) int {
	for i, v := range values {
		if v == s {
			return i + 1
		}
	}
	return 0
}

func (s *Schema) decodeBody(d *decoder, r Row) {
	for i := s.KeyColumns; i < len(s.Columns); i++ {
		if s.Columns[i].Nullable && d.byte() == 0 {
			r[i] = Value{Null: true}
			continue
		}
		switch c := &s.Columns[i]; c.Type {
		case String:
			if d.omit&(1<<i) != 0 {
				d.skipStr()
				r[i] = Value{}
				continue
			}
			r[i] = Value{Str: d.str()}
		case Enum:
			if j := d.uint(); j > 0 && j <= uint64(len(c.Enum)) {
				r[i] = Value{Str: c.Enum[j-1]}
			} else if j != 0 && d.err == nil {
				d.err = fmt.Errorf("%w: column %s: enum index %d", ErrCorrupt, c.Name, j)
			}
		case Timestamp:
			if d.compactTime {
				r[i] = Value{Int: d.getTime()}
			} else {
				r[i] = Value{Int: d.int()}
			}
		default:
			r[i] = Value{Int: d.int()}
		}
	}
}

// check verifies that r fits the schema.
func (s *Schema) check(r Row) error {
	if len(r) != len(s.Columns) {
		return fmt.Errorf("row has %d values, schema %d columns", len(r), len(s.Columns))
	}
	for i, v := range r {
		c := &s.Columns[i]
		if v.Null && !c.Nullable {
			return fmt.Errorf("column %s: null in a non-nullable column", c.Name)
		}
		if c.Type == Enum && !v.Null && v.Str != "" && enumIndex(c.Enum, v.Str) == 0 {
			return fmt.Errorf("column %s: %q is not one of %v", c.Name, v.Str, c.Enum)
		}
	}
	return nil
}
