package delta

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// A value in a [Row] is one of: nil (SQL NULL), bool, int64 (byte, short,
// integer, long), float64 (float, double), string, []byte (binary), [Date],
// time.Time (timestamp: an instant, in UTC, microsecond precision),
// [TimestampNTZ] (timestamp_ntz: a wall-clock time without a zone),
// [Decimal], or for nested types [Struct], [Array] and [Map] holding such
// values.

// Row is one row of a table: values in schema order.
type Row []any

// Date is a Delta date: days since 1970-01-01.
type Date int32

// String formats d as YYYY-MM-DD.
func (d Date) String() string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

// TimestampNTZ is a timestamp_ntz value: a date and wall-clock time with no
// time zone, microsecond precision. The time.Time holds that wall-clock time
// in UTC; it is not an instant and must not be moved to another zone.
type TimestampNTZ time.Time

// String formats t as YYYY-MM-DDTHH:MM:SS[.ffffff], without a zone.
func (t TimestampNTZ) String() string {
	return time.Time(t).UTC().Format("2006-01-02T15:04:05.999999")
}

// Decimal is an exact decimal: Unscaled × 10^-Scale.
type Decimal struct {
	Unscaled *big.Int
	Scale    int
}

// String formats d with exactly Scale decimals ("500.00").
func (d Decimal) String() string {
	if d.Unscaled == nil {
		return "0"
	}
	s := new(big.Int).Abs(d.Unscaled).String()
	neg := d.Unscaled.Sign() < 0
	if d.Scale > 0 {
		if len(s) <= d.Scale {
			s = strings.Repeat("0", d.Scale-len(s)+1) + s
		}
		s = s[:len(s)-d.Scale] + "." + s[len(s)-d.Scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Int64 returns the unscaled value if it fits in an int64.
func (d Decimal) Int64() (int64, bool) {
	if d.Unscaled == nil || !d.Unscaled.IsInt64() {
		return 0, false
	}
	return d.Unscaled.Int64(), true
}

// FormatValue renders a row value as text: timestamps as RFC 3339 UTC with
// microseconds, timestamp_ntz the same without a zone, dates as YYYY-MM-DD,
// binary as base64, floats NaN and ±Inf as NaN, Infinity and -Infinity,
// struct, array and map values as their JSON (see [AppendJSON]), NULL as "".
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	case Struct, Array, Map:
		return string(AppendJSON(nil, v, time.UTC))
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// AppendJSON appends v as JSON: NULL as null, numbers and decimals as JSON
// numbers, except NaN and ±Inf, which JSON has no numbers for, as the strings
// "NaN", "Infinity" and "-Infinity" (as Spark's to_json); timestamps as RFC
// 3339 strings in loc, timestamp_ntz as zone-less strings; structs as objects
// in field order, arrays as arrays, maps as objects keyed by the key's text.
func AppendJSON(dst []byte, v any, loc *time.Location) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case bool:
		return strconv.AppendBool(dst, x)
	case float64:
		s := formatFloat(x)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.AppendQuote(dst, s)
		}
		return append(dst, s...)
	case Decimal:
		return append(dst, x.String()...)
	case time.Time:
		return appendJSONString(dst, x.In(loc).Format("2006-01-02T15:04:05.999999Z07:00"))
	case Struct:
		dst = append(dst, '{')
		for i, f := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, f.Name)
			dst = AppendJSON(append(dst, ':'), f.Value, loc)
		}
		return append(dst, '}')
	case Array:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSON(dst, e, loc)
		}
		return append(dst, ']')
	case Map:
		dst = append(dst, '{')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			k := FormatValue(e.Key)
			if t, ok := e.Key.(time.Time); ok {
				k = t.In(loc).Format("2006-01-02T15:04:05.999999Z07:00")
			}
			dst = appendJSONString(dst, k)
			dst = AppendJSON(append(dst, ':'), e.Value, loc)
		}
		return append(dst, '}')
	}
	return appendJSONString(dst, FormatValue(v))
}

func appendJSONString(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil { // cannot happen for a string
		return append(dst, `""`...)
	}
	return append(dst, b...)
}

// converter turns one Parquet leaf value into a row value of a Delta type.
type converter func(parquet.Value) (any, error)

// converterFor picks the conversion from a Parquet leaf to Delta type typ.
func converterFor(typ string, leaf parquet.Node) (converter, error) {
	pt := leaf.Type()
	kind := pt.Kind()
	intOf := func(v parquet.Value) int64 {
		switch v.Kind() {
		case parquet.Int32:
			return int64(v.Int32())
		case parquet.Int64:
			return v.Int64()
		case parquet.Boolean:
			if v.Boolean() {
				return 1
			}
		}
		return 0
	}
	switch typ {
	case "byte", "short", "integer", "long":
		if kind != parquet.Int32 && kind != parquet.Int64 {
			return nil, fmt.Errorf("type %s stored as %s", typ, kind)
		}
		return func(v parquet.Value) (any, error) { return intOf(v), nil }, nil
	case "float", "double":
		return func(v parquet.Value) (any, error) {
			switch v.Kind() {
			case parquet.Float:
				return float64(v.Float()), nil
			case parquet.Double:
				return v.Double(), nil
			}
			return float64(intOf(v)), nil
		}, nil
	case "boolean":
		return func(v parquet.Value) (any, error) { return v.Boolean(), nil }, nil
	case "string":
		return func(v parquet.Value) (any, error) { return string(v.ByteArray()), nil }, nil
	case "binary":
		return func(v parquet.Value) (any, error) { return append([]byte(nil), v.ByteArray()...), nil }, nil
	case "date":
		return func(v parquet.Value) (any, error) { return Date(intOf(v)), nil }, nil
	case "timestamp", "timestamp_ntz":
		wrap := func(t time.Time) any { return t }
		if typ == "timestamp_ntz" {
			wrap = func(t time.Time) any { return TimestampNTZ(t) }
		}
		if kind == parquet.Int96 {
			return func(v parquet.Value) (any, error) {
				x := v.Int96()
				nanos := int64(x[1])<<32 | int64(x[0])
				days := int64(x[2]) - 2440588 // Julian day of 1970-01-01
				return wrap(time.UnixMicro(days*86_400_000_000 + nanos/1000).UTC()), nil
			}, nil
		}
		mult, div := int64(1), int64(1) // to micros
		switch unitOf(pt) {
		case "millis":
			mult = 1000
		case "nanos":
			div = 1000
		}
		return func(v parquet.Value) (any, error) {
			return wrap(time.UnixMicro(intOf(v) * mult / div).UTC()), nil
		}, nil
	}
	if _, scale, ok := decimalType(typ); ok {
		return func(v parquet.Value) (any, error) {
			switch v.Kind() {
			case parquet.Int32, parquet.Int64:
				return Decimal{Unscaled: big.NewInt(intOf(v)), Scale: scale}, nil
			case parquet.ByteArray, parquet.FixedLenByteArray:
				b := v.ByteArray()
				n := new(big.Int).SetBytes(b)
				if len(b) > 0 && b[0]&0x80 != 0 { // two's complement
					n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
				}
				return Decimal{Unscaled: n, Scale: scale}, nil
			}
			return nil, fmt.Errorf("decimal stored as %s", v.Kind())
		}, nil
	}
	return nil, fmt.Errorf("%w: column type %q", ErrUnsupported, typ)
}

// unitOf returns a Parquet timestamp's unit: "millis", "micros" or "nanos".
func unitOf(t parquet.Type) string {
	if lt := t.LogicalType(); lt != nil {
		if ts, ok := lt.Value.(*format.TimestampType); ok {
			switch ts.Unit.Value.(type) {
			case *format.MilliSeconds:
				return "millis"
			case *format.NanoSeconds:
				return "nanos"
			}
			return "micros"
		}
	}
	if ct := t.ConvertedType(); ct != nil && *ct == deprecated.TimestampMillis {
		return "millis"
	}
	return "micros"
}

// parsePartitionValue parses a partition value's string form as Delta type typ.
func parsePartitionValue(typ string, s *string) (any, error) {
	if s == nil {
		return nil, nil
	}
	v := *s
	switch typ {
	case "string":
		return v, nil
	case "byte", "short", "integer", "long":
		if v == "" {
			return nil, nil
		}
		return strconv.ParseInt(v, 10, 64)
	case "float", "double":
		if v == "" {
			return nil, nil
		}
		return strconv.ParseFloat(v, 64)
	case "boolean":
		if v == "" {
			return nil, nil
		}
		return strconv.ParseBool(v)
	case "binary":
		return []byte(v), nil
	case "date":
		if v == "" {
			return nil, nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return nil, err
		}
		return Date(t.Unix() / 86400), nil
	case "timestamp", "timestamp_ntz":
		if v == "" {
			return nil, nil
		}
		// ISO 8601 with a zone is what new writers write; zone-less values are
		// read as UTC, as Delta Kernel does (for timestamp_ntz: as the wall-clock
		// time they are).
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
			if t, err := time.Parse(layout, v); err == nil {
				t = t.UTC().Truncate(time.Microsecond)
				if typ == "timestamp_ntz" {
					return TimestampNTZ(t), nil
				}
				return t, nil
			}
		}
		return nil, fmt.Errorf("timestamp partition value %q", v)
	}
	if _, scale, ok := decimalType(typ); ok {
		if v == "" {
			return nil, nil
		}
		return parseDecimal(v, scale)
	}
	return nil, fmt.Errorf("%w: partition column type %q", ErrUnsupported, typ)
}

// parseDecimal parses "123.45" into a Decimal of the given scale.
func parseDecimal(s string, scale int) (Decimal, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return Decimal{}, fmt.Errorf("decimal %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !r.IsInt() {
		return Decimal{}, fmt.Errorf("decimal %q has more than %d decimals", s, scale)
	}
	return Decimal{Unscaled: new(big.Int).Set(r.Num()), Scale: scale}, nil
}
