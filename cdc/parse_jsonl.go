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
	rows := make([]Input, 0, linesHint(data))
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
		in, ferr := raw.input(lineNo, loc, nil)
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
// encoding/json also turns an escaped lone UTF-16 surrogate ("T\ud800") into
// U+FFFD, so that "T\ud800" and "T\udbff" would be one id; the raw bytes of
// each string are checked for such escapes, on lines that have a \u at all.
// On error it also returns the field to blame, if any.
func decodeJSONLine(line []byte) (raw rawRow, field string, err error) {
	escapes := bytes.Contains(line, []byte(`\u`))
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
		if escapes {
			if esc, off, ok := loneSurrogate(line[start:dec.InputOffset()]); ok {
				return raw, "", reasonf(ErrNotUTF8, "an object key has %s at offset %d, which %s", esc, off, loneSurrogateWhy)
			}
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
		name := c.String()
		if v := line[start:dec.InputOffset()]; !utf8.Valid(v) {
			// Report the offset within the string, not within ": "...
			v = bytes.TrimLeft(v, " \t\r:")
			return raw, name, notUTF8(string(bytes.TrimPrefix(v, []byte{'"'})))
		}
		switch v := tok.(type) {
		case nil:
			// null is absent.
		case string:
			if escapes {
				if esc, off, ok := loneSurrogate(line[start:dec.InputOffset()]); ok {
					return raw, name, reasonf(ErrNotUTF8, "%s at offset %d %s", esc, off, loneSurrogateWhy)
				}
			}
			raw.set(c, v)
		case json.Number:
			switch c {
			case colAmount:
				// The literal digits, never a float64: 0.1 stays 0.1.
				raw.set(c, v.String())
			case colTransactionID, colUPIID, colMerchantID:
				return raw, name, reasonf(ErrWrongType, "must be a JSON string, not the number %s (quote ids: as numbers they lose leading zeros and long digits)", clip(v.String()))
			default:
				return raw, name, reasonf(ErrWrongType, "must be a JSON string, not the number %s", clip(v.String()))
			}
		default:
			want := "a JSON string"
			if c == colAmount {
				want = "a JSON string or number"
			}
			return raw, name, reasonf(ErrWrongType, "must be %s, not %s", want, describeJSON(tok))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return raw, "", jsonSyntax(err)
	}
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
		return raw, "", reasonf(ErrMalformed, "unexpected text %s after the JSON object (one object per line)", quote(string(rest)))
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
		return "the number " + clip(v.String())
	case string:
		return "the string " + quote(v)
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
	return causef(ErrMalformed, err, "invalid JSON: %s", errText(err))
}

// loneSurrogateWhy ends the message for an escaped lone surrogate.
const loneSurrogateWhy = "is a lone UTF-16 surrogate, not a character (re-encode the file as UTF-8)"

// loneSurrogate finds the first \u escape of a UTF-16 surrogate that is not
// half of a high-low pair in tok, the raw bytes of one JSON string token
// (maybe after ':', ',' and spaces). It returns the escape as written and
// its offset from the string's opening quote. The decoder has already
// checked the string's syntax, so every \u has four hex digits.
func loneSurrogate(tok []byte) (esc string, off int, found bool) {
	i := bytes.IndexByte(tok, '"')
	if i < 0 {
		return "", 0, false
	}
	s := tok[i+1:]
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '"':
			return "", 0, false
		case '\\':
			switch {
			case j+1 >= len(s):
				return "", 0, false
			case s[j+1] != 'u':
				j++ // \", \\, \n, ...: skip the escaped byte
				continue
			}
			r, ok := hex4(s[j+2:])
			if !ok {
				return "", 0, false
			}
			switch {
			case r >= 0xD800 && r < 0xDC00:
				if j+12 <= len(s) && s[j+6] == '\\' && s[j+7] == 'u' {
					if lo, ok := hex4(s[j+8:]); ok && lo >= 0xDC00 && lo < 0xE000 {
						j += 11 // the pair
						continue
					}
				}
				return string(s[j : j+6]), j, true
			case r >= 0xDC00 && r < 0xE000:
				return string(s[j : j+6]), j, true
			}
			j += 5
		}
	}
	return "", 0, false
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
