package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upicdc/upicdc/store"
)

// Output formats of --format.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatCSV   = "csv"
)

func checkFormat(f string) error {
	switch f {
	case formatTable, formatJSON, formatCSV:
		return nil
	}
	return fmt.Errorf("--format %q: want table, json or csv", f)
}

// cell is one typed value of a result table: it knows its text and its
// JSON form, so money stays an exact decimal in every format.
type cell struct {
	text string
	json []byte // raw JSON; nil means the JSON string of text
}

func str(s string) cell        { return cell{text: s} }
func num(v int64) cell         { s := strconv.FormatInt(v, 10); return cell{text: s, json: []byte(s)} }
func money(p store.Paise) cell { s := p.String(); return cell{text: s, json: []byte(s)} }
func boolean(b bool) cell      { s := strconv.FormatBool(b); return cell{text: s, json: []byte(s)} }

// jsonCell is a value shown as compact JSON text and embedded as JSON.
func jsonCell(v any) cell {
	data, err := json.Marshal(v)
	if err != nil {
		return str(fmt.Sprint(v))
	}
	return cell{text: string(data), json: data}
}

// result is what a command prints: named columns and rows of cells.
type result struct {
	columns []string
	rows    [][]cell
}

func (r *result) add(cells ...cell) { r.rows = append(r.rows, cells) }

// write renders r in format f.
func (r *result) write(w io.Writer, f string) error {
	switch f {
	case formatJSON:
		return r.writeJSON(w)
	case formatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(r.columns); err != nil {
			return err
		}
		rec := make([]string, len(r.columns))
		for _, row := range r.rows {
			for i, c := range row {
				rec[i] = c.text
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	default:
		return r.writeTable(w)
	}
}

// writeTable draws a Markdown pipe table, the shape of the seed's tables.
func (r *result) writeTable(w io.Writer) error {
	width := make([]int, len(r.columns))
	for i, c := range r.columns {
		width[i] = utf8.RuneCountInString(c)
	}
	for _, row := range r.rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c.text))
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
	line(r.columns)
	b.WriteByte('|')
	for i := range r.columns {
		b.WriteString(strings.Repeat("-", width[i]+2))
		b.WriteByte('|')
	}
	b.WriteByte('\n')
	texts := make([]string, len(r.columns))
	for _, row := range r.rows {
		for i, c := range row {
			texts[i] = c.text
		}
		line(texts)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON writes one array of objects whose keys are the column names, in
// column order.
func (r *result) writeJSON(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("[")
	for ri, row := range r.rows {
		if ri > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		for i, c := range row {
			if i > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(r.columns[i])
			b.Write(k)
			b.WriteString(": ")
			if c.json != nil {
				b.Write(c.json)
			} else {
				v, _ := json.Marshal(c.text)
				b.Write(v)
			}
		}
		b.WriteString("}")
	}
	if len(r.rows) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := w.Write(b.Bytes())
	return err
}

// timeCell renders a microsecond timestamp as RFC 3339 in loc.
func timeCell(micros int64, loc *time.Location) cell {
	return str(time.UnixMicro(micros).In(loc).Format("2006-01-02T15:04:05.999999Z07:00"))
}

// commitTimeCell renders a millisecond commit timestamp as RFC 3339 in loc.
func commitTimeCell(ms int64, loc *time.Location) cell {
	return str(time.UnixMilli(ms).In(loc).Format("2006-01-02T15:04:05.000Z07:00"))
}

// isTerminal reports whether w is a terminal: progress lines that redraw
// themselves belong there, not in logs or pipes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
