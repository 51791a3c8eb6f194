package render

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upicdc/upicdc/store"
)

// Format is an output format.
type Format string

// The formats a table is written in.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatCSV   Format = "csv"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatJSON, FormatCSV:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want table, json or csv", s)
}

// Timestamp layouts: data timestamps keep microseconds (Delta's TIMESTAMP
// precision) and drop trailing zeros; commit timestamps are milliseconds.
const (
	MicroLayout = "2006-01-02T15:04:05.999999Z07:00"
	MilliLayout = "2006-01-02T15:04:05.000Z07:00"
)

// Cell is one rendered value: its text (table and CSV) and its JSON.
type Cell struct {
	Text string
	json []byte // nil: the JSON string of Text
}

// MarshalJSON returns the cell's JSON.
func (c Cell) MarshalJSON() ([]byte, error) {
	if c.json != nil {
		return c.json, nil
	}
	return jsonString(c.Text), nil
}

// String is a text cell.
func String(s string) Cell { return Cell{Text: s} }

// Int is an integer cell.
func Int(v int64) Cell { s := strconv.FormatInt(v, 10); return Cell{Text: s, json: []byte(s)} }

// Money is an exact decimal number cell ("500", "500.50").
func Money(p store.Paise) Cell { s := p.String(); return Cell{Text: s, json: []byte(s)} }

// Bool is a boolean cell.
func Bool(b bool) Cell { s := strconv.FormatBool(b); return Cell{Text: s, json: []byte(s)} }

// Null is a null cell: empty text, JSON null.
func Null() Cell { return Cell{json: []byte("null")} }

// Number is a cell for a decimal number already formatted (a Delta
// decimal or double). Text that is not a JSON number (NaN, Inf) stays a
// JSON string.
func Number(s string) Cell {
	// A valid JSON value that starts like a number is a number.
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) || !json.Valid([]byte(s)) {
		return String(s)
	}
	return Cell{Text: s, json: []byte(s)}
}

// Time is an RFC 3339 cell of t in t's location, with microseconds when
// it has any.
func Time(t time.Time) Cell { return String(t.Format(MicroLayout)) }

// Micros is a timestamp cell: µs since the Unix epoch, shown in zone (nil:
// UTC).
func Micros(us int64, zone *time.Location) Cell {
	if zone == nil {
		zone = time.UTC
	}
	return Time(time.UnixMicro(us).In(zone))
}

// CommitTime is a commit timestamp cell: ms since the Unix epoch, RFC 3339
// with milliseconds in UTC.
func CommitTime(ms int64) Cell { return String(time.UnixMilli(ms).UTC().Format(MilliLayout)) }

// JSON is a cell holding v as compact JSON, shown as that JSON text; a nil
// pointer or map is null.
func JSON(v any) Cell {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return String(fmt.Sprint(v))
	}
	data := bytes.TrimRight(b.Bytes(), "\n")
	if string(data) == "null" {
		return Null()
	}
	return Cell{Text: string(data), json: data}
}

// Value renders v as a value of column c.
func Value(c *store.Column, v store.Value) Cell {
	if v.Null {
		return Null()
	}
	switch c.Type {
	case store.Int:
		return Int(v.Int)
	case store.Money:
		return Money(v.Paise())
	case store.Timestamp:
		return Micros(v.Int, c.Zone)
	case store.Bool:
		return Bool(v.Bool())
	default: // String, Enum
		return String(v.Str)
	}
}

// jsonString encodes s as a JSON string without HTML escaping, so the CLI
// and the HTTP API (whose encoder does not escape HTML either) write the
// same bytes.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimRight(b.Bytes(), "\n")
}

// Object is one rendered row: it marshals as a JSON object whose keys are
// Columns, in order.
type Object struct {
	Columns []string
	Cells   []Cell
}

// MarshalJSON writes the object compactly, keys in column order.
func (o Object) MarshalJSON() ([]byte, error) {
	if len(o.Columns) != len(o.Cells) {
		return nil, fmt.Errorf("render: %d columns, %d cells", len(o.Columns), len(o.Cells))
	}
	return o.append(nil), nil
}

func (o Object) append(b []byte) []byte {
	b = append(b, '{')
	for i, c := range o.Cells {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, jsonString(o.Columns[i])...)
		b = append(b, ':')
		v, _ := c.MarshalJSON()
		b = append(b, v...)
	}
	return append(b, '}')
}

// Get returns the cell of the named column.
func (o Object) Get(name string) (Cell, bool) {
	for i, c := range o.Columns {
		if c == name {
			return o.Cells[i], true
		}
	}
	return Cell{}, false
}

// Table is named columns and rows of cells.
type Table struct {
	Columns []string
	Rows    [][]Cell
}

// NewTable returns an empty table with the given columns.
func NewTable(columns ...string) *Table { return &Table{Columns: columns} }

// Add appends a row.
func (t *Table) Add(cells ...Cell) { t.Rows = append(t.Rows, cells) }

// Objects returns the rows as objects (sharing the table's columns).
func (t *Table) Objects() []Object {
	out := make([]Object, len(t.Rows))
	for i, r := range t.Rows {
		out[i] = Object{Columns: t.Columns, Cells: r}
	}
	return out
}

// Write renders the table in format f.
func (t *Table) Write(w io.Writer, f Format) error {
	for i, r := range t.Rows {
		if len(r) != len(t.Columns) {
			return fmt.Errorf("render: row %d has %d cells for %d columns", i, len(r), len(t.Columns))
		}
	}
	switch f {
	case FormatJSON:
		return t.writeJSON(w)
	case FormatCSV:
		return t.writeCSV(w)
	case FormatTable, "":
		return t.writeTable(w)
	}
	return fmt.Errorf("render: unknown format %q", f)
}

func (t *Table) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Columns); err != nil {
		return err
	}
	rec := make([]string, len(t.Columns))
	for _, row := range t.Rows {
		for i, c := range row {
			rec[i] = c.Text
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeTable draws a Markdown pipe table, the shape of the seed's tables.
func (t *Table) writeTable(w io.Writer) error {
	width := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		width[i] = utf8.RuneCountInString(c)
	}
	for _, row := range t.Rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c.Text))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteByte('|')
		for i, c := range cells {
			b.WriteByte(' ')
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
			b.WriteString(" |")
		}
		b.WriteByte('\n')
	}
	line(t.Columns)
	b.WriteByte('|')
	for i := range t.Columns {
		b.WriteString(strings.Repeat("-", width[i]+2))
		b.WriteByte('|')
	}
	b.WriteByte('\n')
	texts := make([]string, len(t.Columns))
	for _, row := range t.Rows {
		for i, c := range row {
			texts[i] = c.Text
		}
		line(texts)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON writes one array of objects, one object per line, each encoded
// exactly as Object.MarshalJSON encodes it.
func (t *Table) writeJSON(w io.Writer) error {
	b := []byte("[")
	for i, r := range t.Rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  "...)
		b = Object{Columns: t.Columns, Cells: r}.append(b)
	}
	if len(t.Rows) > 0 {
		b = append(b, '\n')
	}
	b = append(b, "]\n"...)
	_, err := w.Write(b)
	return err
}

// Raw is a cell whose text and JSON were rendered elsewhere (json must be
// one valid JSON value).
func Raw(text string, json []byte) Cell { return Cell{Text: text, json: json} }
