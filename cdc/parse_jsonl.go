package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// parseJSONL parses a JSON Lines batch: one JSON object per line, keys being
// column names. Blank lines are skipped. A null or absent key is an empty
// value, so a delete can be as short as
// {"op":"delete","transaction_id":"T1","transaction_time":"2024-12-21 11:00:00"}.
func parseJSONL(data []byte, name string, loc *time.Location) ([]Input, error) {
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	rows := make([]Input, 0, rowsHint(int64(bytes.Count(data, []byte{'\n'})+1)))
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		raw, field, err := decodeJSONLine(line)
		if err != nil {
			return nil, &ParseError{File: name, Format: FormatJSONL, Pos: lineNo, Field: field, Err: err}
		}
		in, ferr := raw.input(lineNo, loc)
		if ferr != nil {
			return nil, &ParseError{File: name, Format: FormatJSONL, Pos: lineNo, Field: ferr.col.String(), Err: ferr.err}
		}
		rows = append(rows, in)
	}
	return rows, nil
}

// decodeJSONLine decodes one line holding one JSON object. It walks the
// tokens instead of unmarshalling into a map because a map would hide what
// must be refused: duplicate keys (the last one would silently win),
// invalid UTF-8 (encoding/json replaces it with U+FFFD) and amounts (a
// float64 would round them; json.Number keeps the literal digits).
// On error it also returns the field to blame, if any.
func decodeJSONLine(line []byte) (raw rawRow, field string, err error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return raw, "", jsonSyntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return raw, "", reasonf(ErrMalformed, "want one JSON object per line, got %s", describeJSON(tok))
	}
	var seen columnSet
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return raw, "", jsonSyntax(err)
		}
		key, ok := tok.(string)
		if !ok {
			// Token only yields strings in key position; be safe anyway.
			return raw, "", reasonf(ErrMalformed, "object key is %s, want a string", describeJSON(tok))
		}
		if !utf8.Valid(line[start:dec.InputOffset()]) {
			return raw, "", reasonf(ErrNotUTF8, "an object key is not UTF-8 (re-encode the file as UTF-8)")
		}
		c, err := seen.add(key)
		if err != nil {
			return raw, "", err
		}
		start = dec.InputOffset()
		tok, err = dec.Token()
		if err != nil {
			return raw, "", jsonSyntax(err)
		}
		if v := line[start:dec.InputOffset()]; !utf8.Valid(v) {
			// Report the offset within the string, not within ": "...
			v = bytes.TrimLeft(v, " \t\r:")
			return raw, key, notUTF8(string(bytes.TrimPrefix(v, []byte{'"'})))
		}
		switch v := tok.(type) {
		case nil:
			// null is absent.
		case string:
			raw.set(c, v)
		case json.Number:
			switch c {
			case colAmount:
				// The literal digits, never a float64: 0.1 stays 0.1.
				raw.set(c, v.String())
			case colTransactionID, colUPIID, colMerchantID:
				return raw, key, reasonf(ErrWrongType, "must be a JSON string, not the number %s (quote ids: as numbers they lose leading zeros and long digits)", v)
			default:
				return raw, key, reasonf(ErrWrongType, "must be a JSON string, not the number %s", v)
			}
		default:
			want := "a JSON string"
			if c == colAmount {
				want = "a JSON string or number"
			}
			return raw, key, reasonf(ErrWrongType, "must be %s, not %s", want, describeJSON(tok))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return raw, "", jsonSyntax(err)
	}
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
		return raw, "", reasonf(ErrMalformed, "unexpected text %q after the JSON object (one object per line)", truncate(string(rest), 20))
	}
	return raw, "", nil
}

// describeJSON names a token's JSON type for error messages.
func describeJSON(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case json.Number:
		return "the number " + v.String()
	case string:
		return fmt.Sprintf("the string %q", truncate(v, 20))
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// jsonSyntax wraps a decoder error as ErrMalformed.
func jsonSyntax(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return causef(ErrMalformed, err, "invalid JSON: the object is cut short (one whole object per line)")
	}
	return causef(ErrMalformed, err, "invalid JSON: %v", err)
}

// truncate shortens s to at most n bytes, on a rune boundary, for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
