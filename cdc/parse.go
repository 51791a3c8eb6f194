package cdc

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upicdc/upicdc/store"
)

// Errors a batch file can be rejected with. Parse wraps them in a
// *ParseError that says where; match them with errors.Is.
var (
	// ErrUnsupportedFormat: the file's extension names no format upicdc reads.
	ErrUnsupportedFormat = errors.New("unsupported format")
	// ErrEmptyFile: the file has zero bytes, which is taken for a truncated
	// write rather than an empty batch (a header-only CSV is an empty batch).
	ErrEmptyFile = errors.New("empty file")
	// ErrMalformed: the bytes are not valid CSV, JSON Lines or Parquet.
	ErrMalformed = errors.New("malformed file")
	// ErrUnknownColumn: a column (CSV header, JSON key, Parquet field) that
	// the raw table does not have, usually a misspelling.
	ErrUnknownColumn = errors.New("unknown column")
	// ErrDuplicateColumn: a column named twice in a header, schema or object.
	ErrDuplicateColumn = errors.New("duplicate column")
	// ErrMissingField: a column every row needs (transaction_id,
	// transaction_time) is absent from the header or schema, an upsert row's
	// column is absent from the file, or a row leaves a value it needs empty,
	// null or out.
	ErrMissingField = errors.New("missing field")
	// ErrFieldCount: a CSV record has more or fewer fields than the header.
	ErrFieldCount = errors.New("wrong number of fields")
	// ErrWrongType: a JSON value or Parquet column has a type the column
	// cannot be read from (a number for an id, a nested object, ...).
	ErrWrongType = errors.New("wrong type")
	// ErrNotUTF8: a field holds a byte sequence that is not UTF-8, or a JSON
	// \u escape of a lone UTF-16 surrogate (which stands for no character).
	ErrNotUTF8 = errors.New("not UTF-8")
	// ErrBadID: transaction_id, upi_id or merchant_id has a control
	// character or is longer than MaxIDLen bytes.
	ErrBadID = errors.New("bad id")
	// ErrBadAmount: transaction_amount is not an amount ParseAmount accepts.
	ErrBadAmount = errors.New("bad transaction_amount")
	// ErrBadTime: transaction_time is not a time ParseTime accepts.
	ErrBadTime = errors.New("bad transaction_time")
	// ErrBadStatus: transaction_status is not one of the four statuses.
	ErrBadStatus = errors.New("bad transaction_status")
	// ErrBadOp: op is neither upsert nor delete.
	ErrBadOp = errors.New("bad op")
)

// MaxIDLen is the longest transaction_id, upi_id or merchant_id accepted, in
// bytes. Ids are store keys; a bound keeps a garbage column from becoming a
// multi-megabyte key.
const MaxIDLen = 256

// reasonError is an error whose message is its reason alone while errors.Is
// still matches its sentinel (and cause, if any). ParseError already names
// the field, so "transaction_amount: bad transaction_amount: ..." would only
// stutter.
type reasonError struct {
	kind  error
	msg   string
	cause error
}

func (e *reasonError) Error() string { return e.msg }

func (e *reasonError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// reasonf returns an error matching kind with a formatted message.
func reasonf(kind error, format string, args ...any) error {
	return &reasonError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// causef is reasonf for an error that also has an underlying cause (from
// encoding/csv, encoding/json or parquet-go), kept for errors.Is/As.
func causef(kind, cause error, format string, args ...any) error {
	return &reasonError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// Messages echo what a file holds, and a file can hold a 1 MB value. Every
// piece of a file (value, column name, JSON key or number, trailing text)
// goes into a message through quote or clip, and every error text from a
// library through errText, so that a message stays one short line.
const (
	// maxQuoted is how many bytes of a value a message shows, counted as
	// quoted (a control byte, written \x01, counts 4).
	maxQuoted = 80
	// maxErrText is how many bytes of a library's error a message shows;
	// more than maxQuoted, as the whole of it is usually worth reading.
	maxErrText = 200
)

// quote returns s quoted as %q does, cut after about maxQuoted bytes with
// the full length said: "xxxx"… (1048576 bytes).
func quote(s string) string {
	head, cut := elide(s, maxQuoted)
	return strconv.Quote(head) + cut
}

// clip is quote without the quotes, for text that reads better bare (a
// JSON number); control characters and invalid UTF-8 are still escaped.
func clip(s string) string {
	head, cut := elide(s, maxQuoted)
	q := strconv.Quote(head)
	return q[1:len(q)-1] + cut
}

// errText renders a library's error for a message: cut after maxErrText
// bytes, on one line and in UTF-8. It is not escaped like clip, since such
// errors quote characters themselves (invalid character '"').
func errText(err error) string {
	head, cut := elide(err.Error(), maxErrText)
	head = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(head, "\ufffd"))
	return head + cut
}

// elide cuts s after as many runes as fit in n bytes once escaped as %q
// escapes them (a control byte takes 4), so that even 1 MB of them is a
// short quote; cut is "" when s is whole, else "… (N bytes)".
func elide(s string, n int) (head, cut string) {
	width, i := 0, 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		w := size
		switch {
		case r == utf8.RuneError && size == 1:
			w = len(`\xff`)
		case r == '"' || r == '\\':
			w = 2
		case !strconv.IsPrint(r):
			w = len(strconv.QuoteRune(r)) - 2 // \x01, \u2028, ...
		}
		if width+w > n {
			break
		}
		width += w
		i += size
	}
	if i == len(s) {
		return s, ""
	}
	return s[:i], "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// Format is a batch file format.
type Format int

// The batch file formats upicdc reads.
const (
	FormatCSV Format = iota + 1
	FormatJSONL
	FormatParquet
)

// String returns the format's short name: "csv", "jsonl" or "parquet".
func (f Format) String() string {
	switch f {
	case FormatCSV:
		return "csv"
	case FormatJSONL:
		return "jsonl"
	case FormatParquet:
		return "parquet"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// FormatFromName picks the format from a file name's extension, ignoring
// case: .csv, .jsonl/.ndjson/.json (all read as JSON Lines) or .parquet.
func FormatFromName(name string) (Format, error) {
	ext := filepath.Ext(name)
	switch strings.ToLower(ext) {
	case ".csv":
		return FormatCSV, nil
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL, nil
	case ".parquet":
		return FormatParquet, nil
	case "":
		return 0, reasonf(ErrUnsupportedFormat, "unsupported format: %s has no extension (want .csv, .jsonl, .ndjson, .json or .parquet)", quote(filepath.Base(name)))
	}
	return 0, reasonf(ErrUnsupportedFormat, "unsupported format: extension %s (want .csv, .jsonl, .ndjson, .json or .parquet)", quote(ext))
}

// Op is what an input row asks the MERGE to do.
type Op uint8

// The ops a row can carry in its optional op column.
const (
	OpUpsert Op = iota + 1
	OpDelete
)

// String returns the op as written in files: "upsert" or "delete".
func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Input is one parsed, validated data row of a batch file.
type Input struct {
	// Pos is where the row is: for CSV the 1-based line the record starts on
	// (the header is line 1), for JSON Lines the physical line, for Parquet
	// the 1-based row number across row groups.
	Pos int
	Op  Op
	// Row holds the row's values. For a delete, fields the file left empty
	// keep their zero value (Status is then StatusInvalid).
	Row Row
}

// ParseOptions controls parsing.
type ParseOptions struct {
	// Location is the zone for timestamps written without one; nil means UTC.
	Location *time.Location
}

// Batch is a whole parsed batch file.
type Batch struct {
	Name   string // base name of the file
	Path   string
	Format Format
	Size   int64
	SHA256 [32]byte // of the file's bytes: the identity that makes re-ingesting a no-op
	Rows   []Input  // in file order; empty for a header-only file
}

// ParseFile reads the file at path whole, hashes it and parses it in the
// format its extension names. Reading it once means the hash and the rows
// come from the same bytes even if a writer is still at work on the file.
func ParseFile(path string, opts ParseOptions) (*Batch, error) {
	name := filepath.Base(path)
	format, err := FormatFromName(name)
	if err != nil {
		return nil, &ParseError{File: name, Err: err}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read batch file: %w", err)
	}
	rows, err := Parse(data, name, format, opts)
	if err != nil {
		return nil, err
	}
	return &Batch{
		Name:   name,
		Path:   path,
		Format: format,
		Size:   int64(len(data)),
		SHA256: sha256.Sum256(data),
		Rows:   rows,
	}, nil
}

// Parse parses data, the whole content of a batch file, in the given format.
// name is only used in errors. It is all or nothing: on the first bad row it
// returns a *ParseError and no rows, so a rejected file changes nothing.
func Parse(data []byte, name string, format Format, opts ParseOptions) ([]Input, error) {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	if len(data) == 0 {
		msg := "empty file (zero bytes)"
		if format == FormatCSV {
			msg = "empty file (zero bytes, not even a header)"
		}
		return nil, &ParseError{File: name, Format: format, Err: reasonf(ErrEmptyFile, "%s", msg)}
	}
	switch format {
	case FormatCSV:
		return parseCSV(data, name, loc)
	case FormatJSONL:
		return parseJSONL(data, name, loc)
	case FormatParquet:
		return parseParquet(data, name, loc)
	}
	return nil, &ParseError{File: name, Format: format, Err: reasonf(ErrUnsupportedFormat, "unsupported format %v", format)}
}

// ParseError is the error for a batch file that is the file's own fault:
// its name (an unsupported extension), its size (zero bytes) or its content
// (malformed, a bad column or value). Retrying such a file cannot help, so
// errors.As(err, &pe) with a *ParseError pe is the one test for "reject the
// file": every such error from ParseFile, Parse and Merger.IngestFile is or
// wraps a *ParseError, and no other error is one. Errors that are not the
// file's fault (it cannot be read, the store fails, the context is
// cancelled) are never a *ParseError: the file may be tried again.
//
// It says where the file is bad: which file, which line (or Parquet row)
// and which field. Pos 0 means the error is about the file as a whole;
// Field is "header" for a CSV header and "schema" for a Parquet schema, and
// empty when no one field is to blame. Its message is one line, quoting at
// most the first 80 or so bytes of any value from the file.
type ParseError struct {
	File   string
	Format Format
	Pos    int
	Field  string
	Err    error
}

// Error renders the error as, for example,
// `batch2.csv: line 3: transaction_amount: "12.345" has more than 2 decimals`.
func (e *ParseError) Error() string {
	var b strings.Builder
	// A name comes from the file system and may hold any byte but '/' and
	// NUL; a newline in it would split the message.
	if strings.ContainsFunc(e.File, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		b.WriteString(strconv.Quote(e.File))
	} else {
		b.WriteString(e.File)
	}
	if e.Pos > 0 {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		if e.Format == FormatParquet {
			b.WriteString("row ")
		} else {
			b.WriteString("line ")
		}
		b.WriteString(strconv.Itoa(e.Pos))
	}
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid batch file")
	}
	return b.String()
}

// Unwrap returns the underlying error, which matches one of the Err
// sentinels.
func (e *ParseError) Unwrap() error { return e.Err }

// rowsHint turns an estimate of a file's row count (a Parquet footer's
// claim) into the capacity to reserve for its rows. The estimate can be far
// off: a corrupt footer must not reserve gigabytes before a single row is
// read, so it is capped and append grows the slice past that.
func rowsHint(n int64) int {
	return int(max(0, min(n, 1<<16)))
}

// minLineBytes is the fewest bytes a CSV or JSON Lines row can take (with
// its newline): "a,b,c,1,1,failed" and its like, shorter for deletes.
const minLineBytes = 12

// linesHint is the capacity to reserve for the rows of a line-based file:
// its line count, which a file cannot make larger than its size allows. An
// exact reservation matters for a big file: append would grow the slice in
// steps, each copying every row parsed so far beside the last step's slice.
func linesHint(data []byte) int {
	return int(min(int64(bytes.Count(data, []byte{'\n'}))+1, int64(len(data)/minLineBytes)+1))
}

// column is one of the columns a batch file may have.
type column int

// The columns in the raw table's order, then the optional op column.
const (
	colTransactionID column = iota
	colUPIID
	colMerchantID
	colAmount
	colTime
	colStatus
	colOp
	numColumns
)

// String returns the column's name as written in files.
func (c column) String() string {
	switch c {
	case colTransactionID:
		return "transaction_id"
	case colUPIID:
		return "upi_id"
	case colMerchantID:
		return "merchant_id"
	case colAmount:
		return "transaction_amount"
	case colTime:
		return "transaction_time"
	case colStatus:
		return "transaction_status"
	case colOp:
		return "op"
	}
	return "column(" + strconv.Itoa(int(c)) + ")"
}

// columnByName looks a column up by name, ignoring surrounding spaces and
// ASCII case (Transaction_ID). Only ASCII letters fold: Unicode folding
// would make "tranſaction_id", with a long s, a column too.
func columnByName(name string) (column, bool) {
	name = strings.TrimSpace(name)
	for c := range numColumns {
		if asciiEqualFold(c.String(), name) {
			return c, true
		}
	}
	return 0, false
}

// asciiEqualFold reports whether a and b are equal ignoring ASCII case.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// allowedColumns lists the column names for error messages.
const allowedColumns = "transaction_id, upi_id, merchant_id, transaction_amount, transaction_time, transaction_status and optional op"

// unknownColumn is the error for a column the raw table does not have.
func unknownColumn(name string) error {
	return reasonf(ErrUnknownColumn, "unknown column %s (allowed: %s)", quote(name), allowedColumns)
}

// columnSet tracks which columns a header, schema or object has named.
type columnSet [numColumns]bool

// add records the column called name, refusing unknown and repeated names.
func (s *columnSet) add(name string) (column, error) {
	c, ok := columnByName(name)
	if !ok {
		return 0, unknownColumn(strings.TrimSpace(name))
	}
	if s[c] {
		return 0, reasonf(ErrDuplicateColumn, "column %s appears more than once", quote(strings.TrimSpace(name)))
	}
	s[c] = true
	return c, nil
}

// missing returns the error for the first column of a header or schema s
// that some row is sure to need, or nil. Every row needs transaction_id and
// transaction_time. Without an op column every row is an upsert, which
// needs all six; with one, a file of deletes may leave the other four out,
// and a row that needs one of them is refused by rawRow.input.
func (s *columnSet) missing() error {
	for _, c := range []column{colTransactionID, colTime} {
		if !s[c] {
			return reasonf(ErrMissingField, "missing column %q (every row needs it)", c.String())
		}
	}
	if s[colOp] {
		return nil
	}
	for c := range colOp {
		if !s[c] {
			return reasonf(ErrMissingField, "missing column %q (without an op column every row is an upsert, which needs it)", c.String())
		}
	}
	return nil
}

// rawRow is a row as a file spelled it, before validation. Each format fills
// text for the columns it read as text; a Parquet file may instead deliver an
// already typed amount or time.
type rawRow struct {
	text    [numColumns]string
	present [numColumns]bool // false when absent, null, or empty after trimming

	typedAmount bool
	amount      store.Paise
	typedTime   bool
	time        int64
}

// set stores a textual value, trimmed; empty means absent.
func (r *rawRow) set(c column, v string) {
	v = strings.TrimSpace(v)
	r.text[c] = v
	r.present[c] = v != ""
}

// setAmount stores an amount a Parquet column delivered already typed.
func (r *rawRow) setAmount(p store.Paise) {
	r.typedAmount, r.amount, r.present[colAmount] = true, p, true
}

// setTime stores a time a Parquet column delivered already typed.
func (r *rawRow) setTime(us int64) {
	r.typedTime, r.time, r.present[colTime] = true, us, true
}

// fieldError is a validation failure in one column of one row; each format
// turns it into a *ParseError with its own position.
type fieldError struct {
	col column
	err error
}

// input validates r and builds the Input it stands for. A delete needs only
// transaction_id and transaction_time (the time orders the delete among the
// transaction's other rows); everything else it carries must still be valid.
// cols is the header's or schema's columns, so that a value an upsert needs
// and the file has no column for is reported as such; nil for JSON Lines,
// where each object has its own keys.
func (r *rawRow) input(pos int, loc *time.Location, cols *columnSet) (Input, *fieldError) {
	// Check every text value for UTF-8 first, so a bad byte is reported as
	// such and not as, say, an unknown status.
	for c := range numColumns {
		if r.present[c] && !utf8.ValidString(r.text[c]) {
			return Input{}, &fieldError{c, notUTF8(r.text[c])}
		}
	}
	in := Input{Pos: pos, Op: OpUpsert}
	if r.present[colOp] {
		switch v := r.text[colOp]; {
		case strings.EqualFold(v, "upsert"):
		case strings.EqualFold(v, "delete"):
			in.Op = OpDelete
		default:
			return Input{}, &fieldError{colOp, reasonf(ErrBadOp, "%s is not an op (want upsert or delete)", quote(v))}
		}
	}
	for c := range colOp {
		if r.present[c] {
			continue
		}
		switch {
		case c == colTransactionID || c == colTime:
			return Input{}, &fieldError{c, reasonf(ErrMissingField, "missing or empty; every row needs one")}
		case in.Op == OpUpsert && cols != nil && !cols[c]:
			return Input{}, &fieldError{c, reasonf(ErrMissingField, "the file has no such column; only a delete row (op=delete) may leave it out")}
		case in.Op == OpUpsert:
			return Input{}, &fieldError{c, reasonf(ErrMissingField, "missing or empty; only a delete row (op=delete) may leave it out")}
		}
	}

	var err error
	if in.Row.TransactionID, err = r.id(colTransactionID); err != nil {
		return Input{}, &fieldError{colTransactionID, err}
	}
	if in.Row.UPIID, err = r.id(colUPIID); err != nil {
		return Input{}, &fieldError{colUPIID, err}
	}
	if in.Row.MerchantID, err = r.id(colMerchantID); err != nil {
		return Input{}, &fieldError{colMerchantID, err}
	}
	switch {
	case r.typedAmount:
		in.Row.Amount = r.amount
	case r.present[colAmount]:
		if in.Row.Amount, err = ParseAmount(r.text[colAmount]); err != nil {
			return Input{}, &fieldError{colAmount, err}
		}
	}
	switch {
	case r.typedTime:
		in.Row.Time = r.time
	case r.present[colTime]:
		if in.Row.Time, err = ParseTime(r.text[colTime], loc); err != nil {
			return Input{}, &fieldError{colTime, err}
		}
	}
	if r.present[colStatus] {
		if in.Row.Status, err = parseStatus(r.text[colStatus]); err != nil {
			return Input{}, &fieldError{colStatus, err}
		}
	}
	return in, nil
}

// id validates an id column's value; an absent one is "" (deletes only).
func (r *rawRow) id(c column) (string, error) {
	v := r.text[c]
	if !r.present[c] {
		return "", nil
	}
	if len(v) > MaxIDLen {
		return "", reasonf(ErrBadID, "%d bytes is longer than the %d allowed", len(v), MaxIDLen)
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b == 0x7f {
			return "", reasonf(ErrBadID, "%s has a control character at byte %d", quote(v), i)
		}
	}
	return v, nil
}

// parseStatus maps a status name, in any case, to its Status.
func parseStatus(v string) (Status, error) {
	if s, ok := ParseStatus(strings.ToLower(v)); ok {
		return s, nil
	}
	return StatusInvalid, reasonf(ErrBadStatus, "%s is not a status (want initiated, completed, failed or refunded)", quote(v))
}

// notUTF8 describes where s stops being UTF-8 without echoing the bad bytes
// (a terminal would garble them).
func notUTF8(s string) error {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		i += size
	}
	return reasonf(ErrNotUTF8, "byte 0x%02x at offset %d is not UTF-8 (re-encode the file as UTF-8)", s[min(i, len(s)-1)], i)
}
