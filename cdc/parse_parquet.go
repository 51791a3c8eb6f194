package cdc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// maxDecimalScale bounds a DECIMAL column's scale. Parquet allows at most 38
// digits, so a larger scale is a corrupt schema; the bound also keeps a
// crafted scale from making us pad a number with billions of zeros.
const maxDecimalScale = 38

// parquetDecoder reads one Parquet column's values into a rawRow.
type parquetDecoder struct {
	col    column
	decode func(v parquet.Value, r *rawRow) error
}

// parseParquet parses a Parquet batch. Columns are found by name among the
// schema's top-level fields; each column's physical and logical type picks
// how its values are read (see the decoders below). Rows are read in file
// order across row groups, and Pos is the 1-based row number.
func parseParquet(data []byte, name string, loc *time.Location) (rows []Input, err error) {
	fail := func(pos int, field string, err error) ([]Input, error) {
		return nil, &ParseError{File: name, Format: FormatParquet, Pos: pos, Field: field, Err: err}
	}
	// parquet-go panics on some malformed schemas and pages (for example a
	// FIXED_LEN_BYTE_ARRAY decimal without a length). A bad file must be a
	// rejected file, never a crashed daemon, so the panic becomes an error.
	defer func() {
		if p := recover(); p != nil {
			rows, err = fail(0, "", reasonf(ErrMalformed, "corrupt Parquet file: %s", errText(fmt.Errorf("%v", p))))
		}
	}()

	if err := checkParquetFrame(data); err != nil {
		return fail(0, "", err)
	}
	// Page indexes and bloom filters only speed up lookups; every row is
	// read here, so skip them and parse less of an untrusted file.
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fail(0, "", causef(ErrMalformed, err, "not a readable Parquet file: %s", errText(err)))
	}
	decoders, cols, err := parquetDecoders(f.Schema(), loc)
	if err != nil {
		return fail(0, "schema", err)
	}
	if err := checkParquetPages(f.Metadata(), data); err != nil {
		return fail(0, "", err)
	}

	rows = make([]Input, 0, rowsHint(f.NumRows()))
	pos := 0
	for i, rg := range f.RowGroups() {
		if rg.NumRows() == 0 {
			// pyarrow writes an empty table as one row group of no rows
			// whose column chunks have no pages, and parquet-go fails to
			// seek into them. checkParquetPages has checked that the
			// chunks claim no values, so there is nothing to read.
			continue
		}
		var ferr *ParseError
		rows, pos, ferr = readRowGroup(rg, rows, pos, decoders, cols, loc)
		if ferr != nil {
			ferr.File = name
			if errors.Is(ferr.Err, ErrMalformed) && ferr.Pos == 0 {
				ferr.Err = causef(ErrMalformed, ferr.Err, "row group %d: %s", i, ferr.Err.Error())
			}
			return nil, ferr
		}
	}
	return rows, nil
}

// checkParquetFrame checks the magic bytes and that the footer length fits
// in the file. parquet-go allocates whatever footer length the last bytes
// claim before comparing it with the file size, so a corrupt length would
// cost gigabytes just to be refused.
func checkParquetFrame(data []byte) error {
	const magic = "PAR1"
	n := len(data)
	if n < 12 || string(data[:4]) != magic || string(data[n-4:]) != magic {
		if n >= 4 && (string(data[:4]) == "PARE" || string(data[n-4:]) == "PARE") {
			return reasonf(ErrMalformed, "not a readable Parquet file: encrypted Parquet is not supported")
		}
		return reasonf(ErrMalformed, "not a readable Parquet file: no PAR1 magic bytes at both ends (truncated, or not Parquet)")
	}
	if footer := binary.LittleEndian.Uint32(data[n-8 : n-4]); uint64(footer) > uint64(n-12) {
		return reasonf(ErrMalformed, "not a readable Parquet file: footer length %d exceeds the file (truncated?)", footer)
	}
	return nil
}

// maxPageSize bounds a page's uncompressed size. Writers cut pages at about
// 1 MiB (parquet-mr, Arrow) or less (parquet-go); 256 MiB leaves room for
// any real file while refusing a corrupt size before it is allocated.
const maxPageSize = 256 << 20

// checkParquetPages walks every page header of every column chunk and checks
// the sizes and counts that parquet-go trusts when it allocates: a page's
// compressed size must fit in its chunk, its uncompressed size must be sane,
// and its value count must fit the row group. Without this a 2 KB file
// claiming a 2 GB page makes parquet-go allocate 2 GB before it finds the
// file is short (found by FuzzParseParquet). It decodes the headers with
// parquet-go's own thrift reader, over bytes, so a corrupt length inside a
// header is an error rather than an allocation too.
func checkParquetPages(md *format.FileMetaData, data []byte) error {
	var protocol thrift.CompactProtocol
	bad := func(rg, col int, msg string, args ...any) error {
		return reasonf(ErrMalformed, "corrupt Parquet file: row group %d, column %d: %s", rg, col, fmt.Sprintf(msg, args...))
	}
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 {
			return bad(i, 0, "negative row count %d", rg.NumRows)
		}
		for j, cc := range rg.Columns {
			if cc.FilePath != "" {
				return bad(i, j, "column data in another file (%s) is not supported", quote(cc.FilePath))
			}
			m := cc.MetaData
			// The top-level, non-repeated columns parquetDecoders allows
			// have exactly one value (maybe null) per row.
			if m.NumValues != rg.NumRows {
				return bad(i, j, "%d values for %d rows", m.NumValues, rg.NumRows)
			}
			start := m.DataPageOffset
			if m.DictionaryPageOffset != 0 {
				start = m.DictionaryPageOffset // as parquet-go reads it
			}
			if start < 0 || m.TotalCompressedSize < 0 || start > int64(len(data)) || m.TotalCompressedSize > int64(len(data))-start {
				return bad(i, j, "column chunk at %d+%d lies outside the %d-byte file", start, m.TotalCompressedSize, len(data))
			}
			chunk := data[start : start+m.TotalCompressedSize]
			for off := 0; off < len(chunk); {
				var h format.PageHeader
				r := protocol.NewReaderFromBytes(chunk[off:])
				if err := thrift.NewDecoder(r).Decode(&h); err != nil {
					return causef(ErrMalformed, err, "corrupt Parquet file: row group %d, column %d: page header at %d: %s", i, j, start+int64(off), errText(err))
				}
				off += r.BytesRead()
				var values int64
				switch {
				case h.DataPageHeader.Valid:
					values = int64(h.DataPageHeader.V.NumValues)
				case h.DataPageHeaderV2.Valid:
					values = int64(h.DataPageHeaderV2.V.NumValues)
				case h.DictionaryPageHeader.Valid:
					// Every dictionary entry takes at least a byte.
					values = int64(h.DictionaryPageHeader.V.NumValues)
					if values > int64(h.UncompressedPageSize) {
						return bad(i, j, "dictionary of %d entries in %d bytes", values, h.UncompressedPageSize)
					}
				}
				switch {
				case h.CompressedPageSize < 0 || int(h.CompressedPageSize) > len(chunk)-off:
					return bad(i, j, "page of %d bytes overruns its column chunk", h.CompressedPageSize)
				case h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageSize:
					return bad(i, j, "page claims %d uncompressed bytes", h.UncompressedPageSize)
				case values < 0 || values > m.NumValues:
					return bad(i, j, "page of %d values in a chunk of %d", values, m.NumValues)
				}
				off += int(h.CompressedPageSize)
			}
		}
	}
	return nil
}

// readRowGroup appends rg's rows to rows; pos is the number of rows before
// rg. It closes rg's row reader whatever happens.
func readRowGroup(rg parquet.RowGroup, rows []Input, pos int, decoders []parquetDecoder, cols *columnSet, loc *time.Location) ([]Input, int, *ParseError) {
	rr := rg.Rows()
	defer rr.Close()
	buf := make([]parquet.Row, 128)
	for {
		n, err := rr.ReadRows(buf)
		for _, row := range buf[:n] {
			pos++
			var raw rawRow
			for _, v := range row {
				ci := v.Column()
				if ci < 0 || ci >= len(decoders) || decoders[ci].decode == nil {
					return nil, pos, &ParseError{Format: FormatParquet, Pos: pos, Err: reasonf(ErrMalformed, "value for unknown column index %d", ci)}
				}
				if v.IsNull() {
					continue
				}
				d := decoders[ci]
				if err := d.decode(v, &raw); err != nil {
					return nil, pos, &ParseError{Format: FormatParquet, Pos: pos, Field: d.col.String(), Err: err}
				}
			}
			in, ferr := raw.input(pos, loc, cols)
			if ferr != nil {
				return nil, pos, &ParseError{Format: FormatParquet, Pos: pos, Field: ferr.col.String(), Err: ferr.err}
			}
			rows = append(rows, in)
		}
		if errors.Is(err, io.EOF) {
			return rows, pos, nil
		}
		if err != nil {
			return nil, pos, &ParseError{Format: FormatParquet, Err: causef(ErrMalformed, err, "reading rows: %s", errText(err))}
		}
		if n == 0 {
			// A reader that returns neither rows nor an error would loop
			// forever on a corrupt file.
			return nil, pos, &ParseError{Format: FormatParquet, Err: reasonf(ErrMalformed, "reading rows: no progress")}
		}
	}
}

// parquetDecoders checks the schema and returns a decoder per leaf column
// index, and the columns the schema has. Only top-level primitive columns
// are allowed: the raw table is flat, and a nested column is more likely
// the wrong file than data to flatten.
func parquetDecoders(schema *parquet.Schema, loc *time.Location) ([]parquetDecoder, *columnSet, error) {
	decoders := make([]parquetDecoder, len(schema.Columns()))
	var seen columnSet
	for _, field := range schema.Fields() {
		name := field.Name()
		c, err := seen.add(name)
		if err != nil {
			return nil, nil, err
		}
		if !field.Leaf() {
			return nil, nil, reasonf(ErrWrongType, "column %s is a group (struct, list or map); want a top-level primitive column", quote(name))
		}
		if field.Repeated() {
			return nil, nil, reasonf(ErrWrongType, "column %s is repeated; want a single value per row", quote(name))
		}
		leaf, ok := schema.Lookup(name)
		if !ok || leaf.ColumnIndex < 0 || leaf.ColumnIndex >= len(decoders) {
			return nil, nil, reasonf(ErrMalformed, "column %s has no leaf column", quote(name))
		}
		decode, err := parquetDecoderFor(c, field.Type(), loc)
		if err != nil {
			return nil, nil, err
		}
		decoders[leaf.ColumnIndex] = parquetDecoder{col: c, decode: decode}
	}
	if err := seen.missing(); err != nil {
		return nil, nil, err
	}
	return decoders, &seen, nil
}

// parquetDecoderFor picks how column c is read from a column of type t.
func parquetDecoderFor(c column, t parquet.Type, loc *time.Location) (func(parquet.Value, *rawRow) error, error) {
	kind := t.Kind()
	var logical format.LogicalTypeValue
	if lt := t.LogicalType(); lt != nil {
		logical = lt.Value
	}
	wrong := func(want string) error {
		return reasonf(ErrWrongType, "column %q has type %s; want %s", c.String(), typeName(t), want)
	}
	isString := kind == parquet.ByteArray && isStringLogical(logical)
	text := func(v parquet.Value, r *rawRow) error {
		if v.Kind() != parquet.ByteArray {
			return reasonf(ErrMalformed, "value of kind %v in a BYTE_ARRAY column", v.Kind())
		}
		// string() copies: the value's bytes belong to a reused page buffer.
		r.set(c, string(v.ByteArray()))
		return nil
	}

	switch c {
	case colAmount:
		switch lt := logical.(type) {
		case *format.DecimalType:
			return decimalDecoder(t, lt)
		case *format.IntType:
			if kind == parquet.Int32 || kind == parquet.Int64 {
				return intAmountDecoder(kind, lt.IsSigned), nil
			}
		}
		switch {
		case logical == nil && (kind == parquet.Int32 || kind == parquet.Int64):
			return intAmountDecoder(kind, true), nil
		case logical == nil && (kind == parquet.Double || kind == parquet.Float):
			return floatAmountDecoder(kind), nil
		case isString:
			return text, nil
		}
		return nil, wrong("DECIMAL (scale 2), INT32/INT64 (whole rupees), DOUBLE/FLOAT or a string")

	case colTime:
		switch lt := logical.(type) {
		case *format.TimestampType:
			if kind == parquet.Int64 {
				return timestampDecoder(lt, loc), nil
			}
		}
		switch {
		case kind == parquet.Int96:
			return int96Decoder, nil
		case isString:
			return text, nil
		}
		return nil, wrong("TIMESTAMP (millis, micros or nanos), INT96 or a string")

	default:
		if isString {
			return text, nil
		}
		return nil, wrong("a string (BYTE_ARRAY)")
	}
}

// isStringLogical reports whether a BYTE_ARRAY with this logical type holds
// text: no annotation (many writers leave strings bare), STRING or ENUM.
func isStringLogical(lt format.LogicalTypeValue) bool {
	switch lt.(type) {
	case nil, *format.StringType, *format.EnumType:
		return true
	}
	return false
}

// typeName names a Parquet column type for error messages.
func typeName(t parquet.Type) string {
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		if _, isInt := lt.Value.(*format.IntType); !isInt {
			return fmt.Sprintf("%s (%s)", t.Kind(), lt.Value)
		}
	}
	return t.Kind().String()
}

// decimalDecoder reads a DECIMAL amount. Scale 2 is decimal(18,2) itself; a
// smaller scale is padded; a larger one is accepted only when the extra
// digits are zeros, since rounding money is not ours to do.
func decimalDecoder(t parquet.Type, lt *format.DecimalType) (func(parquet.Value, *rawRow) error, error) {
	scale := int(lt.Scale)
	if scale < 0 || scale > maxDecimalScale {
		return nil, reasonf(ErrWrongType, "column %q has unsupported DECIMAL scale %d", colAmount.String(), scale)
	}
	kind := t.Kind()
	switch kind {
	case parquet.Int32, parquet.Int64, parquet.ByteArray, parquet.FixedLenByteArray:
	default:
		return nil, reasonf(ErrWrongType, "column %q is a DECIMAL stored as %s", colAmount.String(), kind)
	}
	return func(v parquet.Value, r *rawRow) error {
		var unscaled string
		switch kind {
		case parquet.Int32:
			unscaled = strconv.FormatInt(int64(v.Int32()), 10)
		case parquet.Int64:
			unscaled = strconv.FormatInt(v.Int64(), 10)
		default:
			if v.Kind() != kind {
				return reasonf(ErrMalformed, "value of kind %v in a %v column", v.Kind(), kind)
			}
			b := v.ByteArray()
			// 32 bytes is far past decimal(38)'s 16; anything longer is
			// garbage, and refusing it bounds the big.Int work.
			if len(b) > 32 {
				return reasonf(ErrBadAmount, "DECIMAL value of %d bytes is too large", len(b))
			}
			unscaled = twosComplement(b).String()
		}
		p, err := ParseAmount(decimalString(unscaled, scale))
		if err != nil {
			return err
		}
		r.setAmount(p)
		return nil
	}, nil
}

// twosComplement decodes a big-endian two's-complement integer, the byte
// layout of BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY decimals.
func twosComplement(b []byte) *big.Int {
	x := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return x
}

// decimalString places the decimal point scale digits from the right of an
// unscaled integer ("50050", 2 -> "500.50"), then drops zero digits past the
// second decimal so ParseAmount accepts decimal(18,4) "500.5000" but still
// refuses "500.5012".
func decimalString(unscaled string, scale int) string {
	if scale == 0 {
		return unscaled
	}
	sign := ""
	if strings.HasPrefix(unscaled, "-") {
		sign, unscaled = "-", unscaled[1:]
	}
	if len(unscaled) <= scale {
		unscaled = strings.Repeat("0", scale-len(unscaled)+1) + unscaled
	}
	intPart, frac := unscaled[:len(unscaled)-scale], unscaled[len(unscaled)-scale:]
	if len(frac) > 2 && strings.Trim(frac[2:], "0") == "" {
		frac = frac[:2]
	}
	return sign + intPart + "." + frac
}

// intAmountDecoder reads an integer column without a DECIMAL annotation as
// whole rupees, which is what a writer means by amount=500 as an int.
func intAmountDecoder(kind parquet.Kind, signed bool) func(parquet.Value, *rawRow) error {
	return func(v parquet.Value, r *rawRow) error {
		var s string
		switch {
		case kind == parquet.Int32 && signed:
			s = strconv.FormatInt(int64(v.Int32()), 10)
		case kind == parquet.Int32:
			s = strconv.FormatUint(uint64(v.Uint32()), 10)
		case signed:
			s = strconv.FormatInt(v.Int64(), 10)
		default:
			s = strconv.FormatUint(v.Uint64(), 10)
		}
		p, err := ParseAmount(s)
		if err != nil {
			return err
		}
		r.setAmount(p)
		return nil
	}
}

// floatAmountDecoder reads a DOUBLE or FLOAT amount, the type pandas and
// Spark write by default. The float is formatted as the shortest decimal
// that reads back as the same float (500.5 -> "500.5", not
// "500.50000000000000"), and that decimal goes through ParseAmount, so an
// amount the writer meant with two decimals is exact and 0.123 is refused.
func floatAmountDecoder(kind parquet.Kind) func(parquet.Value, *rawRow) error {
	return func(v parquet.Value, r *rawRow) error {
		var s string
		if kind == parquet.Float {
			s = strconv.FormatFloat(float64(v.Float()), 'f', -1, 32)
		} else {
			s = strconv.FormatFloat(v.Double(), 'f', -1, 64)
		}
		p, err := ParseAmount(s)
		if err != nil {
			return err
		}
		r.setAmount(p)
		return nil
	}
}

// timestampDecoder reads a TIMESTAMP column in any unit. A timestamp not
// adjusted to UTC (Spark's TIMESTAMP_NTZ) is a wall-clock time, read in loc
// just like a CSV time written without a zone.
func timestampDecoder(lt *format.TimestampType, loc *time.Location) func(parquet.Value, *rawRow) error {
	unit := lt.Unit.Value
	local := !lt.IsAdjustedToUTC && loc != time.UTC
	return func(v parquet.Value, r *rawRow) error {
		x := v.Int64()
		var us int64
		switch unit.(type) {
		case *format.MilliSeconds:
			if x < minMicros/1000 || x > maxMicros/1000 {
				return reasonf(ErrBadTime, "%d milliseconds since the epoch is outside years 0001-9999", x)
			}
			us = x * 1000
		case *format.MicroSeconds:
			us = x
		case *format.NanoSeconds:
			if x%1000 != 0 {
				return reasonf(ErrBadTime, "%s has precision finer than microseconds", time.Unix(0, x).UTC().Format(time.RFC3339Nano))
			}
			us = x / 1000
		default:
			return reasonf(ErrBadTime, "TIMESTAMP has unknown unit %v", unit)
		}
		if local {
			t := time.UnixMicro(us).UTC()
			us = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UnixMicro()
		}
		if us < minMicros || us > maxMicros {
			return reasonf(ErrBadTime, "%d microseconds since the epoch is outside years 0001-9999", us)
		}
		r.setTime(us)
		return nil
	}
}

// julianUnixEpoch is the Julian day number of 1970-01-01, the origin of
// INT96 timestamps' day part.
const julianUnixEpoch = 2_440_588

// int96Decoder reads a legacy INT96 timestamp (Spark, Hive and Impala before
// TIMESTAMP existed): 8 little-endian bytes of nanoseconds within the day,
// then 4 bytes of Julian day. Spark writes it as a UTC instant, which is how
// it is read.
func int96Decoder(v parquet.Value, r *rawRow) error {
	if v.Kind() != parquet.Int96 || len(v.ByteArray()) != 12 {
		return reasonf(ErrMalformed, "value of kind %v in an INT96 column", v.Kind())
	}
	i96 := v.Int96()
	nanos := uint64(i96[1])<<32 | uint64(i96[0])
	days := int64(i96[2]) - julianUnixEpoch
	const nanosPerDay = 86_400 * 1_000_000_000
	if nanos >= nanosPerDay {
		return reasonf(ErrBadTime, "INT96 timestamp has %d nanoseconds in a day", nanos)
	}
	// 3,000,000 days is beyond year 9999 both ways, and small enough that
	// the microsecond count below cannot overflow.
	if days < -3_000_000 || days > 3_000_000 {
		return reasonf(ErrBadTime, "INT96 timestamp's Julian day %d is outside years 0001-9999", i96[2])
	}
	us := days*86_400_000_000 + int64(nanos/1000)
	if nanos%1000 != 0 {
		return reasonf(ErrBadTime, "%s has precision finer than microseconds", time.UnixMicro(us).UTC().Add(time.Duration(nanos%1000)).Format(time.RFC3339Nano))
	}
	if us < minMicros || us > maxMicros {
		return reasonf(ErrBadTime, "INT96 timestamp %s is outside years 0001-9999", time.UnixMicro(us).UTC().Format(time.RFC3339Nano))
	}
	r.setTime(us)
	return nil
}
