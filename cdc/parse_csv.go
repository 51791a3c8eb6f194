package cdc

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"
	"unique"
)

// utf8BOM is the byte order mark some Windows tools (Excel among them) put
// at the start of a file; it is not part of the first column's name.
const utf8BOM = "\ufeff"

// parseCSV parses a CSV batch: a header naming the columns in any order,
// then one record per row. encoding/csv handles quoting, CRLF line ends and
// quoted newlines; blank lines are skipped.
func parseCSV(data []byte, name string, loc *time.Location) ([]Input, error) {
	fail := func(pos int, field string, err error) ([]Input, error) {
		return nil, &ParseError{File: name, Format: FormatCSV, Pos: pos, Field: field, Err: err}
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte(utf8BOM))))
	// FieldsPerRecord 0: the header's field count becomes the rule for every
	// record. LazyQuotes stays off: a stray quote is an error, not data.
	r.FieldsPerRecord = 0
	// A record's fields are substrings of one string per record: reuse the
	// record and copy out only the text a row keeps (see keep), so the
	// parsed rows do not hold every line of the file.
	r.ReuseRecord = true

	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return fail(0, "", reasonf(ErrEmptyFile, "no header line (the file holds only blank lines)"))
	}
	if err != nil {
		return fail(csvErrorLine(err, 1), "header", csvError(err))
	}
	headerLine, _ := r.FieldPos(0)
	var cols columnSet
	order := make([]column, len(header))
	for i, h := range header {
		if !utf8.ValidString(h) {
			return fail(headerLine, "header", notUTF8(h))
		}
		c, err := cols.add(h)
		if err != nil {
			if semicolonSeparated(h) {
				err = reasonf(ErrUnknownColumn, "unknown column %s (the header looks ;-separated; upicdc reads comma-separated CSV)", quote(strings.TrimSpace(h)))
			}
			return fail(headerLine, "header", err)
		}
		order[i] = c
	}
	if err := cols.missing(); err != nil {
		return fail(headerLine, "header", err)
	}

	rows := make([]Input, 0, linesHint(data))
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(err, csv.ErrFieldCount) {
				return fail(pe.StartLine, "", causef(ErrFieldCount, err,
					"record has %d fields but the header has %d (quote fields that contain commas)", len(record), len(header)))
			}
			return fail(csvErrorLine(err, 0), "", csvError(err))
		}
		line, _ := r.FieldPos(0)
		var raw rawRow
		for i, v := range record {
			raw.set(order[i], v)
		}
		in, ferr := raw.input(line, loc, &cols)
		if ferr != nil {
			return fail(line, ferr.col.String(), ferr.err)
		}
		keep(&in.Row)
		rows = append(rows, in)
	}
}

// keep copies a parsed row's text out of the record it was read from, so
// the row does not hold the record's line. Merchant ids repeat (thousands of
// merchants over millions of rows): unique keeps one copy of each.
func keep(r *Row) {
	r.TransactionID = strings.Clone(r.TransactionID)
	r.UPIID = strings.Clone(r.UPIID)
	r.MerchantID = unique.Make(r.MerchantID).Value()
}

// semicolonSeparated reports whether an unknown header name is really
// several column names joined by ';', as Excel writes CSV where ',' is the
// decimal separator.
func semicolonSeparated(name string) bool {
	parts := strings.Split(name, ";")
	known := 0
	for _, p := range parts {
		if _, ok := columnByName(p); ok {
			known++
		}
	}
	return known >= 2
}

// csvErrorLine returns the line the record with a *csv.ParseError starts
// on, or def. For a quote left open that is where the quote is, which is
// where to look, not the end of the file.
func csvErrorLine(err error, def int) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.StartLine
	}
	return def
}

// csvError describes a CSV syntax error without the "parse error on line
// N" that ParseError already says, keeping the original for errors.As.
func csvError(err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return causef(ErrMalformed, err, "invalid CSV: %s", errText(err))
	}
	if pe.Line != pe.StartLine {
		return causef(ErrMalformed, err, "invalid CSV in the record ending at line %d, column %d: %s", pe.Line, pe.Column, errText(pe.Err))
	}
	return causef(ErrMalformed, err, "invalid CSV at column %d: %s", pe.Column, errText(pe.Err))
}
