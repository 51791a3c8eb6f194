package delta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/upicdc/upicdc/store"
)

// A table's Delta and Parquet layout comes from its store schema alone, so
// a table added to the registry exports without code here:
//
//	String, Enum  string         BYTE_ARRAY UTF8 (dictionary when the file's values repeat)
//	Int           long           INT64
//	Money         decimal(18,2)  INT64 DECIMAL(18,2) (paise)
//	Timestamp     timestamp      INT64 TIMESTAMP(MICROS, isAdjustedToUTC) (Spark refuses NANOS,
//	                             parquet-go's default)
//	Bool          boolean        BOOLEAN
//
// Nullable columns are nullable in Delta and OPTIONAL in Parquet, the others
// not nullable and REQUIRED, as Spark writes them. Columns keep the schema's
// order; a change-data file appends _change_type.

// changeTypeColumn is the change-data files' extra column.
const changeTypeColumn = "_change_type"

// layout is one table's export layout.
type layout struct {
	schema       store.Schema
	schemaString string
	deltaSchema  Schema
}

func newLayout(s store.Schema) (*layout, error) {
	ss, err := schemaString(s)
	if err != nil {
		return nil, err
	}
	ds, err := ParseSchema(ss)
	if err != nil {
		return nil, err
	}
	return &layout{schema: s, schemaString: ss, deltaSchema: ds}, nil
}

// columnList renders a schema for a message: "a string, b long NULL".
func columnList(s Schema) string {
	parts := make([]string, len(s))
	for i, f := range s {
		parts[i] = f.Name + " " + f.Type
		if f.Type == "" {
			parts[i] += string(f.Nested)
		}
		if f.Nullable {
			parts[i] += " NULL"
		}
	}
	return strings.Join(parts, ", ")
}

// schemaString renders metaData.schemaString.
func schemaString(s store.Schema) (string, error) {
	type field struct {
		Name     string         `json:"name"`
		Type     string         `json:"type"`
		Nullable bool           `json:"nullable"`
		Metadata map[string]any `json:"metadata"`
	}
	st := struct {
		Type   string  `json:"type"`
		Fields []field `json:"fields"`
	}{Type: "struct"}
	for _, c := range s.Columns {
		switch c.Type {
		case store.String, store.Enum, store.Int, store.Money, store.Timestamp, store.Bool:
		default:
			return "", fmt.Errorf("%w: column %s of type %s", ErrUnsupported, c.Name, c.Type)
		}
		// The store's type names are the Delta ones.
		st.Fields = append(st.Fields, field{Name: c.Name, Type: c.Type.String(), Nullable: c.Nullable, Metadata: map[string]any{}})
	}
	data, err := json.Marshal(st)
	return string(data), err
}

// leafNode returns the Parquet node of one column.
func leafNode(c store.Column, dict bool) parquet.Node {
	var n parquet.Node
	switch c.Type {
	case store.String, store.Enum:
		n = parquet.String()
		if dict {
			n = parquet.Encoded(n, &parquet.RLEDictionary)
		}
	case store.Money:
		n = parquet.Decimal(2, 18, parquet.Int64Type)
	case store.Timestamp:
		n = parquet.Timestamp(parquet.Microsecond)
	case store.Bool:
		n = parquet.Leaf(parquet.BooleanType)
	default:
		n = parquet.Int(64)
	}
	if c.Nullable {
		return parquet.Optional(n)
	}
	return parquet.Required(n)
}

// parquetSchema returns the Parquet schema of a data file (or, with
// changeType, a change-data file); dict says which columns get a
// dictionary.
func (l *layout) parquetSchema(dict []bool, changeType bool) *parquet.Schema {
	g := make(orderedGroup, 0, len(l.schema.Columns)+1)
	for i, c := range l.schema.Columns {
		g = append(g, &namedNode{Node: leafNode(c, dict[i]), name: c.Name})
	}
	if changeType {
		g = append(g, &namedNode{Node: parquet.Required(parquet.Encoded(parquet.String(), &parquet.RLEDictionary)), name: changeTypeColumn})
	}
	return parquet.NewSchema("spark_schema", g)
}

// orderedGroup is a Parquet group whose fields keep their order
// (parquet.Group sorts them by name).
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return printNode(g) }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[map[string]any]() }

func printNode(n parquet.Node) string {
	var b strings.Builder
	_ = parquet.PrintSchema(&b, "spark_schema", n)
	return b.String()
}

// namedNode is a field of an orderedGroup. Rows are written as
// parquet.Row values, never reflected from Go values; Value serves maps.
type namedNode struct {
	parquet.Node
	name string
}

func (f *namedNode) Name() string { return f.name }

func (f *namedNode) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Map {
		return base.MapIndex(reflect.ValueOf(f.name))
	}
	return reflect.Value{}
}

// dictColumns decides per file which string columns get a dictionary: Enum
// columns always, String columns whose values repeat (at most one distinct
// value in four rows, as merchant_id or window_size do; transaction_id or
// upi_id do not).
func (l *layout) dictColumns(rows []store.Row) []bool {
	dict := make([]bool, len(l.schema.Columns))
	for i, c := range l.schema.Columns {
		switch c.Type {
		case store.Enum:
			dict[i] = true
		case store.String:
			limit := len(rows) / 4
			seen := make(map[string]struct{}, min(limit, 1024))
			dict[i] = true
			for _, r := range rows {
				if v := r[i]; !v.Null {
					seen[v.Str] = struct{}{}
				}
				if len(seen) > limit {
					dict[i] = false
					break
				}
			}
		}
	}
	return dict
}

// rowEncoder turns store rows into parquet.Row values. Strings are copied
// into one growing arena instead of a slice each.
type rowEncoder struct {
	l     *layout
	arena []byte
}

func (e *rowEncoder) bytes(s string) []byte {
	if cap(e.arena)-len(e.arena) < len(s) {
		e.arena = make([]byte, 0, max(64<<10, len(s)))
	}
	start := len(e.arena)
	e.arena = append(e.arena, s...)
	return e.arena[start:len(e.arena):len(e.arena)]
}

// append appends r's values (and, if changeType is set, _change_type) to dst.
func (e *rowEncoder) append(dst parquet.Row, r store.Row, changeType string) parquet.Row {
	for i := range e.l.schema.Columns {
		c, v := &e.l.schema.Columns[i], r[i]
		if v.Null {
			dst = append(dst, parquet.NullValue().Level(0, 0, i))
			continue
		}
		var pv parquet.Value
		switch c.Type {
		case store.String, store.Enum:
			pv = parquet.ByteArrayValue(e.bytes(v.Str))
		case store.Bool:
			pv = parquet.BooleanValue(v.Int != 0)
		default:
			pv = parquet.Int64Value(v.Int)
		}
		def := 0
		if c.Nullable {
			def = 1
		}
		dst = append(dst, pv.Level(0, def, i))
	}
	if changeType != "" {
		dst = append(dst, parquet.ByteArrayValue(e.bytes(changeType)).Level(0, 0, len(e.l.schema.Columns)))
	}
	return dst
}

// fileColumns maps a data file's leaf columns to schema positions; a file
// without one of the schema's columns is not ours.
func (l *layout) fileColumns(pf *parquet.File) ([]int, error) {
	target := make([]int, len(pf.Schema().Columns()))
	for i := range target {
		target[i] = -1
	}
	for si, c := range l.schema.Columns {
		leaf, ok := pf.Schema().Lookup(c.Name)
		if !ok {
			return nil, fmt.Errorf("%w: no column %s", ErrNotOurTable, c.Name)
		}
		target[leaf.ColumnIndex] = si
	}
	return target, nil
}

// storeValue converts a Parquet value of column c back to a store value.
func storeValue(c *store.Column, v parquet.Value) store.Value {
	if v.IsNull() {
		return store.Value{Null: true}
	}
	switch c.Type {
	case store.String, store.Enum:
		return store.Value{Str: string(v.ByteArray())}
	case store.Bool:
		if v.Boolean() {
			return store.Value{Int: 1}
		}
		return store.Value{}
	}
	return store.Value{Int: v.Int64()}
}

// readRows reads one of our data files back as store rows.
func (l *layout) readRows(pf *parquet.File) ([]store.Row, error) {
	target, err := l.fileColumns(pf)
	if err != nil {
		return nil, err
	}
	nc := len(l.schema.Columns)
	out := make([]store.Row, 0, pf.NumRows())
	values := make([]store.Value, 0, int(pf.NumRows())*nc) // one allocation for all rows
	buf := make([]parquet.Row, 256)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, pr := range buf[:n] {
				if cap(values)-len(values) < nc {
					values = make([]store.Value, 0, 256*nc)
				}
				values = values[:len(values)+nc]
				r := store.Row(values[len(values)-nc : len(values) : len(values)])
				for _, v := range pr {
					if ci := v.Column(); ci >= 0 && ci < len(target) && target[ci] >= 0 {
						si := target[ci]
						r[si] = storeValue(&l.schema.Columns[si], v)
					}
				}
				out = append(out, r)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return nil, err
			}
		}
		rows.Close()
	}
	return out, nil
}

// readKeys reads only the key columns of one of our data files and returns
// each row's encoded key: rebuilding the key → file map must not decode
// whole tables.
func (l *layout) readKeys(pf *parquet.File) ([]string, error) {
	nk := l.schema.KeyColumns
	leaves := make([]int, nk)
	for i := range leaves {
		leaf, ok := pf.Schema().Lookup(l.schema.Columns[i].Name)
		if !ok {
			return nil, fmt.Errorf("%w: no column %s", ErrNotOurTable, l.schema.Columns[i].Name)
		}
		leaves[i] = leaf.ColumnIndex
	}
	keys := make([]string, 0, pf.NumRows())
	buf := make([]parquet.Value, 4096)
	var kbuf []byte
	for _, rg := range pf.RowGroups() {
		n := int(rg.NumRows())
		cols := make([][]store.Value, nk)
		for k := range cols {
			cols[k] = make([]store.Value, 0, n)
			c := &l.schema.Columns[k]
			err := readColumn(rg.ColumnChunks()[leaves[k]], buf, func(v parquet.Value) {
				cols[k] = append(cols[k], storeValue(c, v))
			})
			if err != nil {
				return nil, err
			}
			if len(cols[k]) != n {
				return nil, fmt.Errorf("%w: key column %s has %d values in a row group of %d rows", ErrNotOurTable, c.Name, len(cols[k]), n)
			}
		}
		key := make(store.Row, nk)
		for j := 0; j < n; j++ {
			for k := range key {
				key[k] = cols[k][j]
			}
			var err error
			if kbuf, err = l.schema.EncodeKey(kbuf[:0], key); err != nil {
				return nil, err
			}
			keys = append(keys, string(kbuf))
		}
	}
	return keys, nil
}

// readColumn calls fn with every value of one column chunk.
func readColumn(cc parquet.ColumnChunk, buf []parquet.Value, fn func(parquet.Value)) error {
	pages := cc.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				fn(v)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
}

// key returns a row's encoded store key, the identity the key → file map
// uses (composite keys included).
func (l *layout) key(buf *[]byte, r store.Row) (string, error) {
	b, err := l.schema.EncodeKey((*buf)[:0], r)
	*buf = b
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// colStats tracks one column's bounds and nulls for Delta file statistics.
type colStats struct {
	set        bool
	nulls      int64
	minS, maxS string
	minI, maxI int64
}

// stats renders Delta's per-file statistics of rows: numRecords, and per
// column minValues, maxValues and nullCount. Decimals are JSON numbers
// ("500.00"); timestamps ISO 8601 UTC in milliseconds, the minimum rounded
// down and the maximum up, so data skipping never drops a matching file;
// booleans get only a null count, as Spark writes them.
func (l *layout) stats(rows []store.Row) string {
	cols := make([]colStats, len(l.schema.Columns))
	for _, r := range rows {
		for i := range cols {
			s, v := &cols[i], r[i]
			if v.Null {
				s.nulls++
				continue
			}
			switch l.schema.Columns[i].Type {
			case store.String, store.Enum:
				if !s.set {
					s.minS, s.maxS = v.Str, v.Str
				} else {
					s.minS, s.maxS = min(s.minS, v.Str), max(s.maxS, v.Str)
				}
			default:
				if !s.set {
					s.minI, s.maxI = v.Int, v.Int
				} else {
					s.minI, s.maxI = min(s.minI, v.Int), max(s.maxI, v.Int)
				}
			}
			s.set = true
		}
	}
	minV, maxV, nulls := map[string]any{}, map[string]any{}, map[string]any{}
	for i, c := range l.schema.Columns {
		s := &cols[i]
		nulls[c.Name] = s.nulls
		if !s.set {
			continue
		}
		switch c.Type {
		case store.String, store.Enum:
			minV[c.Name], maxV[c.Name] = s.minS, s.maxS
		case store.Money:
			minV[c.Name], maxV[c.Name] = json.Number(store.Paise(s.minI).Decimal()), json.Number(store.Paise(s.maxI).Decimal())
		case store.Int:
			minV[c.Name], maxV[c.Name] = s.minI, s.maxI
		case store.Timestamp:
			lo := time.UnixMicro(s.minI).UTC().Truncate(time.Millisecond)
			hi := time.UnixMicro(s.maxI).UTC()
			if r := hi.Truncate(time.Millisecond); !r.Equal(hi) {
				hi = r.Add(time.Millisecond)
			}
			minV[c.Name], maxV[c.Name] = lo.Format(statsTimeLayout), hi.Format(statsTimeLayout)
		}
	}
	data, _ := json.Marshal(map[string]any{"numRecords": len(rows), "minValues": minV, "maxValues": maxV, "nullCount": nulls})
	return string(data)
}

const statsTimeLayout = "2006-01-02T15:04:05.000Z"
