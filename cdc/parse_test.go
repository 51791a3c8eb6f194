package cdc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"pgregory.net/rapid"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// usAt returns an RFC 3339 time in Unix microseconds.
func usAt(t testing.TB, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMicro()
}

// wantUpsert and wantDelete build expected Inputs.
func wantUpsert(pos int, id, upi, merchant string, amount store.Paise, tm int64, status cdc.Status) cdc.Input {
	return cdc.Input{Pos: pos, Op: cdc.OpUpsert, Row: cdc.Row{
		TransactionID: id, UPIID: upi, MerchantID: merchant, Amount: amount, Time: tm, Status: status,
	}}
}

func wantDelete(pos int, id string, tm int64) cdc.Input {
	return cdc.Input{Pos: pos, Op: cdc.OpDelete, Row: cdc.Row{TransactionID: id, Time: tm}}
}

// seedBatches are the seed's three batches (seed/000_a77e3316225b64e3.txt)
// as rows, with Pos counted from 1 for the first data row.
func seedBatches(t testing.TB) [3][]cdc.Input {
	return [3][]cdc.Input{
		{
			wantUpsert(1, "T001", "upi1@bank", "M001", 50000, usAt(t, "2024-12-21T10:00:00Z"), cdc.StatusInitiated),
			wantUpsert(2, "T002", "upi2@bank", "M002", 100000, usAt(t, "2024-12-21T10:05:00Z"), cdc.StatusInitiated),
			wantUpsert(3, "T003", "upi3@bank", "M003", 150000, usAt(t, "2024-12-21T10:10:00Z"), cdc.StatusInitiated),
		},
		{
			wantUpsert(1, "T001", "upi1@bank", "M001", 50000, usAt(t, "2024-12-21T10:15:00Z"), cdc.StatusCompleted),
			wantUpsert(2, "T002", "upi2@bank", "M002", 100000, usAt(t, "2024-12-21T10:20:00Z"), cdc.StatusFailed),
			wantUpsert(3, "T004", "upi4@bank", "M004", 200000, usAt(t, "2024-12-21T10:25:00Z"), cdc.StatusInitiated),
		},
		{
			wantUpsert(1, "T001", "upi1@bank", "M001", 50000, usAt(t, "2024-12-21T10:30:00Z"), cdc.StatusRefunded),
			wantUpsert(2, "T003", "upi3@bank", "M003", 150000, usAt(t, "2024-12-21T10:35:00Z"), cdc.StatusCompleted),
		},
	}
}

// shiftPos returns rows with every Pos moved by d (CSV counts the header).
func shiftPos(rows []cdc.Input, d int) []cdc.Input {
	out := slices.Clone(rows)
	for i := range out {
		out[i].Pos += d
	}
	return out
}

// writeBatchFile writes content to a file called name in a fresh temp dir.
func writeBatchFile(t testing.TB, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkInputs compares parsed rows with the expected ones, row by row.
func checkInputs(t testing.TB, got, want []cdc.Input) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d rows, want %d:\n got: %+v\nwant: %+v", len(got), len(want), got, want)
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got: %+v\nwant: %+v", i, got[i], want[i])
		}
	}
}

// checkParseError checks that err is a *ParseError rendering exactly as
// want and matching sentinel.
func checkParseError(t testing.TB, err error, sentinel error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var pe *cdc.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *cdc.ParseError", err, err)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("error %q does not match %v", err, sentinel)
	}
	if err.Error() != want {
		t.Errorf("error\n got: %s\nwant: %s", err, want)
	}
}

func TestParseFileSeedBatches(t *testing.T) {
	seed := seedBatches(t)
	for _, format := range []struct {
		ext   string
		shift int
	}{{"csv", 1}, {"jsonl", 0}} {
		for i, want := range seed {
			name := "batch" + string(rune('1'+i)) + "." + format.ext
			t.Run(name, func(t *testing.T) {
				path := filepath.Join("testdata", "parse", name)
				b, err := cdc.ParseFile(path, cdc.ParseOptions{})
				if err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if b.Name != name || b.Path != path || b.Format.String() != format.ext ||
					b.Size != int64(len(data)) || b.SHA256 != sha256.Sum256(data) {
					t.Errorf("batch metadata = %q %q %v %d %x, want %q %q %s %d %x",
						b.Name, b.Path, b.Format, b.Size, b.SHA256, name, path, format.ext, len(data), sha256.Sum256(data))
				}
				checkInputs(t, b.Rows, shiftPos(want, format.shift))
			})
		}
	}
}

func TestParseCSVMixed(t *testing.T) {
	// BOM, CRLF, columns in another order with spaces around names, a blank
	// line, upper-case op and status, a zone offset, a quoted multi-line
	// record, and a last line without a newline.
	b, err := cdc.ParseFile(filepath.Join("testdata", "parse", "mixed.csv"), cdc.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkInputs(t, b.Rows, []cdc.Input{
		wantUpsert(2, "T001", "upi1@bank", "M001", 50050, usAt(t, "2024-12-21T04:45:00Z"), cdc.StatusCompleted),
		wantUpsert(4, "T002", "upi2@bank", "M002", 1000, usAt(t, "2024-12-21T10:30:00.25Z"), cdc.StatusRefunded),
		wantDelete(5, "T003", usAt(t, "2024-12-21T11:00:00Z")),
		wantUpsert(6, "T004", "upi4@bank", `M,"4"`, 700, usAt(t, "2024-12-21T12:00:00Z"), cdc.StatusInitiated),
		wantUpsert(8, "T005", "upi5@bank", "M5", 50, usAt(t, "2024-12-21T12:00:00Z"), cdc.StatusFailed),
	})
}

func TestParseJSONLMixed(t *testing.T) {
	// BOM, CRLF, blank and whitespace-only lines, keys in any order, amounts
	// as strings and numbers, nulls, deletes with only id and time, a delete
	// that keeps its status, \u escapes.
	b, err := cdc.ParseFile(filepath.Join("testdata", "parse", "mixed.jsonl"), cdc.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t004 := wantDelete(6, "T004", usAt(t, "2024-12-21T12:00:00Z"))
	t004.Row.Status = cdc.StatusFailed
	checkInputs(t, b.Rows, []cdc.Input{
		wantUpsert(1, "T001", "upi1@bank", "M001", 50050, usAt(t, "2024-12-21T04:45:00Z"), cdc.StatusCompleted),
		wantUpsert(4, "T002", "upi2@bank", "M002", 1000, usAt(t, "2024-12-21T10:30:00.25Z"), cdc.StatusRefunded),
		wantDelete(5, "T003", usAt(t, "2024-12-21T11:00:00Z")),
		t004,
		wantUpsert(7, "Té5", "upi5@bank", "M5", 50, usAt(t, "2024-12-21T12:00:00Z"), cdc.StatusInitiated),
	})
}

func TestParseLocation(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	opts := cdc.ParseOptions{Location: kolkata}
	want := []cdc.Input{
		wantUpsert(2, "T001", "upi1@bank", "M001", 50000, usAt(t, "2024-12-21T04:30:00Z"), cdc.StatusInitiated),
		wantUpsert(3, "T002", "upi2@bank", "M002", 100000, usAt(t, "2024-12-21T10:00:00Z"), cdc.StatusInitiated),
	}
	csvData := "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" +
		"T001,upi1@bank,M001,500,2024-12-21 10:00:00,initiated\n" +
		"T002,upi2@bank,M002,1000,2024-12-21T10:00:00Z,initiated\n"
	got, err := cdc.Parse([]byte(csvData), "k.csv", cdc.FormatCSV, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkInputs(t, got, want)
}

func TestParseEmptyBatches(t *testing.T) {
	const header = "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status"
	tests := []struct {
		name, content string
	}{
		{"header.csv", header},
		{"header-newline.csv", header + "\n"},
		{"header-crlf.csv", header + "\r\n"},
		{"header-blank-lines.csv", "\n" + header + "\n\n\n"},
		{"header-bom.csv", "\ufeff" + header + ",op\n"},
		{"blank.jsonl", "\n"},
		{"blank-lines.jsonl", "\n  \r\n\t\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cdc.ParseFile(writeBatchFile(t, tc.name, []byte(tc.content)), cdc.ParseOptions{})
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			if len(b.Rows) != 0 {
				t.Errorf("got %d rows, want none", len(b.Rows))
			}
		})
	}
}

func TestParseDeleteRows(t *testing.T) {
	tm := usAt(t, "2024-12-21T11:00:00Z")
	tests := []struct {
		name, content string
		want          cdc.Input
	}{
		{
			"only-id-and-time.csv",
			"op,transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" +
				"delete,T003,,,,2024-12-21 11:00:00,\n",
			wantDelete(2, "T003", tm),
		},
		{
			"keeps-valid-fields.csv",
			"op,transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" +
				"DELETE,T003,upi3@bank,M003,1500.0,2024-12-21 11:00:00,completed\n",
			wantUpsert(2, "T003", "upi3@bank", "M003", 150000, tm, cdc.StatusCompleted),
		},
		{
			"only-id-and-time.jsonl",
			`{"op":"delete","transaction_id":"T003","transaction_time":"2024-12-21 11:00:00"}`,
			wantDelete(1, "T003", tm),
		},
	}
	tests[1].want.Op = cdc.OpDelete
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cdc.ParseFile(writeBatchFile(t, tc.name, []byte(tc.content)), cdc.ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkInputs(t, b.Rows, []cdc.Input{tc.want})
		})
	}
}

// badFile is a batch file Parse must refuse, with the error it must give.
type badFile struct {
	name     string // the file name, which picks the format
	content  string
	sentinel error
	want     string
}

// badFiles returns the refused CSV, JSON Lines and file-name cases.
func badFiles() []badFile {
	const (
		header  = "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n"
		good    = "T001,upi1@bank,M001,500.0,2024-12-21 10:00:00,initiated\n"
		opHdr   = "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status,op\n"
		allowed = "(allowed: transaction_id, upi_id, merchant_id, transaction_amount, transaction_time, transaction_status and optional op)"
		layouts = "(want 2006-01-02 15:04:05, 2006-01-02T15:04:05 or RFC 3339 with a zone)"
		statuss = "(want initiated, completed, failed or refunded)"
		upsertF = "missing or empty; only a delete row (op=delete) may leave it out"
		reenc   = "(re-encode the file as UTF-8)"
		jgood   = `{"transaction_id":"T001","upi_id":"upi1@bank","merchant_id":"M001","transaction_amount":500.0,"transaction_time":"2024-12-21 10:00:00","transaction_status":"initiated"}` + "\n"
	)
	// jrow is a JSON line with one key's raw JSON value replaced (or, with
	// value "", removed).
	jrow := func(key, value string) string {
		fields := []struct{ k, v string }{
			{"transaction_id", `"T002"`}, {"upi_id", `"upi2@bank"`}, {"merchant_id", `"M002"`},
			{"transaction_amount", `1000`}, {"transaction_time", `"2024-12-21 10:05:00"`}, {"transaction_status", `"initiated"`},
		}
		var parts []string
		replaced := false
		for _, f := range fields {
			if f.k == key {
				replaced = true
				if value == "" {
					continue
				}
				f.v = value
			}
			parts = append(parts, `"`+f.k+`":`+f.v)
		}
		if !replaced {
			parts = append(parts, `"`+key+`":`+value)
		}
		return "{" + strings.Join(parts, ",") + "}\n"
	}
	return []badFile{
		// CSV
		{"batch2.csv", header + good + "T002,upi2@bank,M002,12.345,2024-12-21 10:05:00,initiated\n", cdc.ErrBadAmount,
			`batch2.csv: line 3: transaction_amount: "12.345" has more than 2 decimals`},
		{"b.csv", header + "T002,upi2@bank,M002,-5,2024-12-21 10:05:00,initiated\n", cdc.ErrBadAmount,
			`b.csv: line 2: transaction_amount: "-5" is negative`},
		{"b.csv", header + "T002,upi2@bank,M002,1e3,2024-12-21 10:05:00,initiated\n", cdc.ErrBadAmount,
			`b.csv: line 2: transaction_amount: "1e3" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"b.csv", header + good + good + "T002,upi2@bank,M002,5,2024-12-21 10:05:00,complete\n", cdc.ErrBadStatus,
			`b.csv: line 4: transaction_status: "complete" is not a status ` + statuss},
		{"b.csv", "transaction_id,merchant_id,transaction_amount,transaction_time,transaction_status\nT1,M1,5,2024-12-21 10:05:00,failed\n", cdc.ErrMissingField,
			`b.csv: line 1: header: missing column "upi_id" (without an op column every row is an upsert, which needs it)`},
		{"b.csv", header + "T002,upi2@bank,M002,5,2024-12-21 25:00:00,failed\n", cdc.ErrBadTime,
			`b.csv: line 2: transaction_time: "2024-12-21 25:00:00" is not a valid date and time ` + layouts},
		{"b.csv", header + "T002,upi2@bank,M002,5,21/12/2024,failed\n", cdc.ErrBadTime,
			`b.csv: line 2: transaction_time: "21/12/2024" is not a timestamp ` + layouts},
		{"b.csv", "", cdc.ErrEmptyFile,
			`b.csv: empty file (zero bytes, not even a header)`},
		{"b.csv", "\n\r\n", cdc.ErrEmptyFile,
			`b.csv: no header line (the file holds only blank lines)`},
		{"b.csv", header + "T002,upi2@bank,M\xff02,5,2024-12-21 10:05:00,failed\n", cdc.ErrNotUTF8,
			`b.csv: line 2: merchant_id: byte 0xff at offset 1 is not UTF-8 ` + reenc},
		{"b.csv", header + "T002,upi2@bank,M002,5,2024-12-21 10:05:00,fail\xe9d\n", cdc.ErrNotUTF8,
			`b.csv: line 2: transaction_status: byte 0xe9 at offset 4 is not UTF-8 ` + reenc},
		{"b.csv", "transaction_id,upi\xff_id\n", cdc.ErrNotUTF8,
			`b.csv: line 1: header: byte 0xff at offset 3 is not UTF-8 ` + reenc},
		{"b.csv", strings.TrimSuffix(header, "\n") + ",amount\n", cdc.ErrUnknownColumn,
			`b.csv: line 1: header: unknown column "amount" ` + allowed},
		{"b.csv", strings.TrimSuffix(header, "\n") + ",\n", cdc.ErrUnknownColumn,
			`b.csv: line 1: header: unknown column "" ` + allowed},
		{"b.csv", "Transaction_IDs" + strings.TrimPrefix(header, "transaction_id"), cdc.ErrUnknownColumn,
			`b.csv: line 1: header: unknown column "Transaction_IDs" ` + allowed},
		{"b.csv", strings.TrimSuffix(header, "\n") + ", upi_id\n", cdc.ErrDuplicateColumn,
			`b.csv: line 1: header: column "upi_id" appears more than once`},
		{"b.csv", header + good + "T002,upi2@bank,M002,5,2024-12-21 10:05:00\n", cdc.ErrFieldCount,
			`b.csv: line 3: record has 5 fields but the header has 6 (quote fields that contain commas)`},
		{"b.csv", header + "T002,upi2@bank,M002,1,000,2024-12-21 10:05:00,failed\n", cdc.ErrFieldCount,
			`b.csv: line 2: record has 7 fields but the header has 6 (quote fields that contain commas)`},
		{"b.csv", opHdr + "T002,upi2@bank,M002,5,2024-12-21 10:05:00,failed,remove\n", cdc.ErrBadOp,
			`b.csv: line 2: op: "remove" is not an op (want upsert or delete)`},
		{"b.csv", header + "T002,,M002,5,2024-12-21 10:05:00,failed\n", cdc.ErrMissingField,
			`b.csv: line 2: upi_id: ` + upsertF},
		{"b.csv", header + "T002,upi2@bank,M002,5,2024-12-21 10:05:00,  \n", cdc.ErrMissingField,
			`b.csv: line 2: transaction_status: ` + upsertF},
		{"b.csv", opHdr + ",,,,2024-12-21 10:05:00,,delete\n", cdc.ErrMissingField,
			`b.csv: line 2: transaction_id: missing or empty; every row needs one`},
		{"b.csv", opHdr + "T002,,,,,,delete\n", cdc.ErrMissingField,
			`b.csv: line 2: transaction_time: missing or empty; every row needs one`},
		{"b.csv", opHdr + "T002,,,0.001,2024-12-21 10:05:00,,delete\n", cdc.ErrBadAmount,
			`b.csv: line 2: transaction_amount: "0.001" has more than 2 decimals`},
		{"b.csv", opHdr + "T002,,,,2024-12-21 10:05:00,gone,delete\n", cdc.ErrBadStatus,
			`b.csv: line 2: transaction_status: "gone" is not a status ` + statuss},
		{"b.csv", header + "T0\x0102,upi2@bank,M002,5,2024-12-21 10:05:00,failed\n", cdc.ErrBadID,
			`b.csv: line 2: transaction_id: "T0\x0102" has a control character at byte 2`},
		{"b.csv", header + "T002,upi2@bank," + strings.Repeat("M", 257) + ",5,2024-12-21 10:05:00,failed\n", cdc.ErrBadID,
			`b.csv: line 2: merchant_id: 257 bytes is longer than the 256 allowed`},
		{"b.csv", header + "T0\"02,upi2@bank,M002,5,2024-12-21 10:05:00,failed\n", cdc.ErrMalformed,
			`b.csv: line 2: invalid CSV at column 3: bare " in non-quoted-field`},
		{"b.csv", header + good + "\"T002,upi2@bank,M002,5,2024-12-21 10:05:00,failed\n", cdc.ErrMalformed,
			`b.csv: line 3: invalid CSV at column 51: extraneous or missing " in quoted-field`},
		{"b.csv", header + "\"T002,upi2@bank\n\nM002,5,2024-12-21 10:05:00,failed\n" + good, cdc.ErrMalformed,
			`b.csv: line 2: invalid CSV in the record ending at line 5, column 57: extraneous or missing " in quoted-field`},

		// JSON Lines
		{"b.jsonl", jgood + jrow("transaction_amount", "12.345"), cdc.ErrBadAmount,
			`b.jsonl: line 2: transaction_amount: "12.345" has more than 2 decimals`},
		{"b.jsonl", jrow("transaction_amount", "5e2"), cdc.ErrBadAmount,
			`b.jsonl: line 1: transaction_amount: "5e2" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"b.jsonl", jrow("transaction_amount", "-1"), cdc.ErrBadAmount,
			`b.jsonl: line 1: transaction_amount: "-1" is negative`},
		{"b.jsonl", jrow("transaction_status", `"pending"`), cdc.ErrBadStatus,
			`b.jsonl: line 1: transaction_status: "pending" is not a status ` + statuss},
		{"b.jsonl", jgood + "\n" + jrow("upi_id", ""), cdc.ErrMissingField,
			`b.jsonl: line 3: upi_id: ` + upsertF},
		{"b.jsonl", jrow("merchant_id", "null"), cdc.ErrMissingField,
			`b.jsonl: line 1: merchant_id: ` + upsertF},
		{"b.jsonl", jrow("transaction_time", `"2024-12-21"`), cdc.ErrBadTime,
			`b.jsonl: line 1: transaction_time: "2024-12-21" is not a timestamp ` + layouts},
		{"b.jsonl", jrow("transaction_time", `1734775200`), cdc.ErrWrongType,
			`b.jsonl: line 1: transaction_time: must be a JSON string, not the number 1734775200`},
		{"b.jsonl", jrow("transaction_id", `2`), cdc.ErrWrongType,
			`b.jsonl: line 1: transaction_id: must be a JSON string, not the number 2 (quote ids: as numbers they lose leading zeros and long digits)`},
		{"b.jsonl", jrow("transaction_status", `true`), cdc.ErrWrongType,
			`b.jsonl: line 1: transaction_status: must be a JSON string, not the boolean true`},
		{"b.jsonl", jrow("transaction_amount", `{"value":5}`), cdc.ErrWrongType,
			`b.jsonl: line 1: transaction_amount: must be a JSON string or number, not an object`},
		{"b.jsonl", jrow("upi_id", `["a"]`), cdc.ErrWrongType,
			`b.jsonl: line 1: upi_id: must be a JSON string, not an array`},
		{"b.jsonl", jrow("amount", `5`), cdc.ErrUnknownColumn,
			`b.jsonl: line 1: unknown column "amount" ` + allowed},
		{"b.jsonl", jrow("upi_id", `"a"`)[:len(jrow("upi_id", `"a"`))-2] + `,"upi_id":"b"}`, cdc.ErrDuplicateColumn,
			`b.jsonl: line 1: column "upi_id" appears more than once`},
		{"b.jsonl", jgood[:len(jgood)-1] + " x\n", cdc.ErrMalformed,
			`b.jsonl: line 1: unexpected text "x" after the JSON object (one object per line)`},
		{"b.jsonl", jgood[:len(jgood)-1] + jgood, cdc.ErrMalformed,
			`b.jsonl: line 1: unexpected text "{\"transaction_id\":\"T001\",\"upi_id\":\"upi1@bank\",\"merchant_id\":\"M001\","… (168 bytes) after the JSON object (one object per line)`},
		{"b.jsonl", jgood[:40] + "\n", cdc.ErrMalformed,
			`b.jsonl: line 1: invalid JSON: the object is cut short (one whole object per line)`},
		{"b.jsonl", `{"transaction_id" "T1"}`, cdc.ErrMalformed,
			`b.jsonl: line 1: invalid JSON: invalid character '"' after object key`},
		{"b.jsonl", `{'transaction_id': 'T1'}`, cdc.ErrMalformed,
			`b.jsonl: line 1: invalid JSON: invalid character '\''`},
		{"b.jsonl", jgood + `[1,2]`, cdc.ErrMalformed,
			`b.jsonl: line 2: want one JSON object per line, got an array`},
		{"b.jsonl", "null\n", cdc.ErrMalformed,
			`b.jsonl: line 1: want one JSON object per line, got null`},
		{"b.jsonl", jrow("merchant_id", "\"M\xff2\""), cdc.ErrNotUTF8,
			`b.jsonl: line 1: merchant_id: byte 0xff at offset 1 is not UTF-8 ` + reenc},
		{"b.jsonl", jrow("upi\xff", `"x"`), cdc.ErrNotUTF8,
			`b.jsonl: line 1: an object key is not UTF-8 ` + reenc},
		{"b.jsonl", jrow("op", `"undo"`), cdc.ErrBadOp,
			`b.jsonl: line 1: op: "undo" is not an op (want upsert or delete)`},
		{"b.jsonl", jrow("transaction_id", `"T\u0000"`), cdc.ErrBadID,
			`b.jsonl: line 1: transaction_id: "T\x00" has a control character at byte 1`},
		{"b.jsonl", "", cdc.ErrEmptyFile,
			`b.jsonl: empty file (zero bytes)`},
		{"b.ndjson", "", cdc.ErrEmptyFile,
			`b.ndjson: empty file (zero bytes)`},
		{"b.parquet", "", cdc.ErrEmptyFile,
			`b.parquet: empty file (zero bytes)`},
		{"b.parquet", "PAR1 not really", cdc.ErrMalformed,
			`b.parquet: not a readable Parquet file: no PAR1 magic bytes at both ends (truncated, or not Parquet)`},

		// Names
		{"b.txt", header + good, cdc.ErrUnsupportedFormat,
			`b.txt: unsupported format: extension ".txt" (want .csv, .jsonl, .ndjson, .json or .parquet)`},
		{"batch", header + good, cdc.ErrUnsupportedFormat,
			`batch: unsupported format: "batch" has no extension (want .csv, .jsonl, .ndjson, .json or .parquet)`},
	}
}

func TestParseBadFiles(t *testing.T) {
	for _, tc := range badFiles() {
		t.Run(tc.name+"/"+tc.want, func(t *testing.T) {
			b, err := cdc.ParseFile(writeBatchFile(t, tc.name, []byte(tc.content)), cdc.ParseOptions{})
			if b != nil {
				t.Errorf("got a batch of %d rows with the error; want nil", len(b.Rows))
			}
			checkParseError(t, err, tc.sentinel, tc.want)
		})
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := cdc.ParseFile(filepath.Join(t.TempDir(), "nope.csv"), cdc.ParseOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not match os.ErrNotExist", err)
	}
}

func TestFormatFromName(t *testing.T) {
	tests := []struct {
		name string
		want cdc.Format
	}{
		{"b.csv", cdc.FormatCSV},
		{"B.CSV", cdc.FormatCSV},
		{"/in/box/b.tmp.csv", cdc.FormatCSV},
		{"b.jsonl", cdc.FormatJSONL},
		{"b.ndjson", cdc.FormatJSONL},
		{"b.JSON", cdc.FormatJSONL},
		{"b.parquet", cdc.FormatParquet},
		{"b.Parquet", cdc.FormatParquet},
		{"b.csv.gz", 0},
		{"b.xlsx", 0},
		{"csv", 0},
		{"", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cdc.FormatFromName(tc.name)
			if tc.want == 0 {
				if !errors.Is(err, cdc.ErrUnsupportedFormat) {
					t.Errorf("FormatFromName(%q) = %v, %v; want ErrUnsupportedFormat", tc.name, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("FormatFromName(%q) = %v, %v; want %v", tc.name, got, err, tc.want)
			}
		})
	}
}

func TestStringers(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{cdc.FormatCSV.String(), "csv"},
		{cdc.FormatJSONL.String(), "jsonl"},
		{cdc.FormatParquet.String(), "parquet"},
		{cdc.Format(0).String(), "format(0)"},
		{cdc.OpUpsert.String(), "upsert"},
		{cdc.OpDelete.String(), "delete"},
		{cdc.Op(0).String(), "op(0)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseErrorRendering(t *testing.T) {
	for _, tc := range []struct {
		err  cdc.ParseError
		want string
	}{
		{cdc.ParseError{File: "b.csv", Format: cdc.FormatCSV, Pos: 3, Field: "upi_id", Err: cdc.ErrMissingField}, "b.csv: line 3: upi_id: missing field"},
		{cdc.ParseError{File: "b.parquet", Format: cdc.FormatParquet, Pos: 7, Field: "op", Err: cdc.ErrBadOp}, "b.parquet: row 7: op: bad op"},
		{cdc.ParseError{File: "b.parquet", Format: cdc.FormatParquet, Field: "schema", Err: cdc.ErrMissingField}, "b.parquet: schema: missing field"},
		{cdc.ParseError{File: "b.jsonl", Format: cdc.FormatJSONL, Pos: 2, Err: cdc.ErrMalformed}, "b.jsonl: line 2: malformed file"},
		{cdc.ParseError{Pos: 2, Err: cdc.ErrMalformed}, "line 2: malformed file"},
		{cdc.ParseError{File: "b.csv"}, "b.csv: invalid batch file"},
		{cdc.ParseError{File: "a\nb\xff.csv", Format: cdc.FormatCSV, Pos: 2, Err: cdc.ErrMalformed}, `"a\nb\xff.csv": line 2: malformed file`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestParseAllOrNothing checks that a bad last row returns no rows at all.
func TestParseAllOrNothing(t *testing.T) {
	data := []byte("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" +
		strings.Repeat("T001,upi1@bank,M001,500.0,2024-12-21 10:00:00,initiated\n", 100) +
		"T002,upi2@bank,M002,500.0,2024-12-21 10:00:00,lost\n")
	rows, err := cdc.Parse(data, "b.csv", cdc.FormatCSV, cdc.ParseOptions{})
	if rows != nil || err == nil {
		t.Fatalf("Parse = %d rows, %v; want nil rows and an error", len(rows), err)
	}
}

// Parquet

// pqColumn is one column of a Parquet file written by writeParquet.
type pqColumn struct {
	name   string
	node   parquet.Node
	values []parquet.Value // parquet.NullValue() for null
}

// fataler is what writeParquet needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// writeParquet writes cols as a Parquet file with parquet-go's generic row
// API, rowsPerGroup rows to a row group (0: one group).
func writeParquet(t fataler, cols []pqColumn, rowsPerGroup int) []byte {
	t.Helper()
	group := parquet.Group{}
	for _, c := range cols {
		group[c.name] = c.node
	}
	schema := parquet.NewSchema("upi_transactions", group)
	opts := []parquet.WriterOption{schema}
	if rowsPerGroup > 0 {
		opts = append(opts, parquet.MaxRowsPerRowGroup(int64(rowsPerGroup)))
	}
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, opts...)
	n := 0
	if len(cols) > 0 {
		n = len(cols[0].values)
	}
	for i := range n {
		row := make(parquet.Row, 0, len(cols))
		for _, c := range cols {
			leaf, ok := schema.Lookup(c.name)
			if !ok {
				t.Fatalf("no column %q", c.name)
			}
			v := c.values[i]
			def := 0
			if c.node.Optional() && !v.IsNull() {
				def = 1
			}
			row = append(row, v.Level(0, def, leaf.ColumnIndex))
		}
		slices.SortFunc(row, func(a, b parquet.Value) int { return a.Column() - b.Column() })
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			t.Fatalf("write row %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close parquet writer: %v", err)
	}
	return buf.Bytes()
}

func pqStr(s string) parquet.Value { return parquet.ByteArrayValue([]byte(s)) }

func pqStrs(ss ...string) []parquet.Value {
	vs := make([]parquet.Value, len(ss))
	for i, s := range ss {
		vs[i] = pqStr(s)
	}
	return vs
}

// seedParquetColumns returns the seed's batch 1 as Parquet columns with the
// amount and time columns given.
func seedParquetColumns(amount, tm pqColumn) []pqColumn {
	return []pqColumn{
		{"transaction_id", parquet.String(), pqStrs("T001", "T002", "T003")},
		{"upi_id", parquet.String(), pqStrs("upi1@bank", "upi2@bank", "upi3@bank")},
		{"merchant_id", parquet.String(), pqStrs("M001", "M002", "M003")},
		amount,
		tm,
		{"transaction_status", parquet.String(), pqStrs("initiated", "initiated", "initiated")},
	}
}

// sparkRow is a row as Spark writes the raw table: decimal(18,2) amounts
// and TIMESTAMP(MICROS) times.
type sparkRow struct {
	TransactionID string    `parquet:"transaction_id"`
	UPIID         string    `parquet:"upi_id"`
	MerchantID    string    `parquet:"merchant_id"`
	Amount        int64     `parquet:"transaction_amount,decimal(2:18)"`
	Time          time.Time `parquet:"transaction_time,timestamp(microsecond)"`
	Status        string    `parquet:"transaction_status"`
}

// pandasRow is a row as pandas writes it by default: float64 amounts, and
// here the time as a string.
type pandasRow struct {
	Status        string  `parquet:"transaction_status"`
	TransactionID string  `parquet:"transaction_id"`
	Amount        float64 `parquet:"transaction_amount"`
	Time          string  `parquet:"transaction_time"`
	MerchantID    string  `parquet:"merchant_id"`
	UPIID         string  `parquet:"upi_id"`
	Op            string  `parquet:"op"`
}

func TestParseParquetSeedStructs(t *testing.T) {
	want := seedBatches(t)[0]
	t.Run("spark.parquet", func(t *testing.T) {
		var rows []sparkRow
		for _, in := range want {
			r := in.Row
			rows = append(rows, sparkRow{r.TransactionID, r.UPIID, r.MerchantID, int64(r.Amount), r.TimeUTC(), r.Status.String()})
		}
		path := filepath.Join(t.TempDir(), "spark.parquet")
		if err := parquet.WriteFile(path, rows); err != nil {
			t.Fatal(err)
		}
		b, err := cdc.ParseFile(path, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if b.Format != cdc.FormatParquet {
			t.Errorf("format %v, want parquet", b.Format)
		}
		checkInputs(t, b.Rows, want)
	})
	t.Run("pandas.parquet", func(t *testing.T) {
		var rows []pandasRow
		for _, in := range want {
			r := in.Row
			rows = append(rows, pandasRow{r.Status.String(), r.TransactionID, float64(r.Amount) / 100,
				r.TimeUTC().Format("2006-01-02 15:04:05"), r.MerchantID, r.UPIID, ""})
		}
		rows[1].Op = "upsert"
		path := filepath.Join(t.TempDir(), "pandas.parquet")
		if err := parquet.WriteFile(path, rows); err != nil {
			t.Fatal(err)
		}
		b, err := cdc.ParseFile(path, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInputs(t, b.Rows, want)
	})
}

// decimalBytes returns x as a big-endian two's-complement number of n bytes.
func decimalBytes(x int64, n int) []byte {
	b := make([]byte, n)
	v := big.NewInt(x)
	if x < 0 {
		v.Add(v, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	v.FillBytes(b)
	return b
}

// pqInt96 encodes t as Spark's legacy INT96 timestamp.
func pqInt96(t time.Time, extraNanos int64) parquet.Value {
	const julianUnixEpoch = 2440588
	days := t.Unix() / 86400
	nanos := (t.UnixNano() - days*86400*1e9) + extraNanos
	return parquet.Int96Value(deprecated.Int96{uint32(nanos), uint32(nanos >> 32), uint32(days + julianUnixEpoch)})
}

func TestParseParquetTypes(t *testing.T) {
	seed := seedBatches(t)[0]
	tms := []time.Time{seed[0].Row.TimeUTC(), seed[1].Row.TimeUTC(), seed[2].Row.TimeUTC()}
	amount := func(node parquet.Node, vs ...parquet.Value) pqColumn {
		return pqColumn{"transaction_amount", node, vs}
	}
	when := func(node parquet.Node, vs ...parquet.Value) pqColumn {
		return pqColumn{"transaction_time", node, vs}
	}
	micros := when(parquet.Timestamp(parquet.Microsecond),
		parquet.Int64Value(tms[0].UnixMicro()), parquet.Int64Value(tms[1].UnixMicro()), parquet.Int64Value(tms[2].UnixMicro()))
	decimal64 := amount(parquet.Decimal(2, 18, parquet.Int64Type),
		parquet.Int64Value(50000), parquet.Int64Value(100000), parquet.Int64Value(150000))
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}

	tests := []struct {
		name   string
		amount pqColumn
		time   pqColumn
		loc    *time.Location
		want   []cdc.Input // nil: seed batch 1
	}{
		{"double amount", amount(parquet.Leaf(parquet.DoubleType),
			parquet.DoubleValue(500), parquet.DoubleValue(1000.0), parquet.DoubleValue(1500)), micros, nil, nil},
		{"float amount", amount(parquet.Leaf(parquet.FloatType),
			parquet.FloatValue(500), parquet.FloatValue(1000), parquet.FloatValue(1500)), micros, nil, nil},
		{"optional double amount", amount(parquet.Optional(parquet.Leaf(parquet.DoubleType)),
			parquet.DoubleValue(500), parquet.DoubleValue(1000.0), parquet.DoubleValue(1500)), micros, nil, nil},
		{"decimal(18,2) INT64 amount", decimal64, micros, nil, nil},
		{"decimal(9,2) INT32 amount", amount(parquet.Decimal(2, 9, parquet.Int32Type),
			parquet.Int32Value(50000), parquet.Int32Value(100000), parquet.Int32Value(150000)), micros, nil, nil},
		{"decimal(10,0) INT64 amount", amount(parquet.Decimal(0, 10, parquet.Int64Type),
			parquet.Int64Value(500), parquet.Int64Value(1000), parquet.Int64Value(1500)), micros, nil, nil},
		{"decimal(18,4) INT64 amount with zero extra digits", amount(parquet.Decimal(4, 18, parquet.Int64Type),
			parquet.Int64Value(5000000), parquet.Int64Value(10000000), parquet.Int64Value(15000000)), micros, nil, nil},
		{"decimal(18,2) FIXED_LEN_BYTE_ARRAY(8) amount", amount(parquet.Decimal(2, 18, parquet.FixedLenByteArrayType(8)),
			parquet.FixedLenByteArrayValue(decimalBytes(50000, 8)), parquet.FixedLenByteArrayValue(decimalBytes(100000, 8)),
			parquet.FixedLenByteArrayValue(decimalBytes(150000, 8))), micros, nil, nil},
		{"decimal(38,2) FIXED_LEN_BYTE_ARRAY(16) amount", amount(parquet.Decimal(2, 38, parquet.FixedLenByteArrayType(16)),
			parquet.FixedLenByteArrayValue(decimalBytes(50000, 16)), parquet.FixedLenByteArrayValue(decimalBytes(100000, 16)),
			parquet.FixedLenByteArrayValue(decimalBytes(150000, 16))), micros, nil, nil},
		{"decimal(20,2) BYTE_ARRAY amount", amount(parquet.Decimal(2, 20, parquet.ByteArrayType),
			parquet.ByteArrayValue(decimalBytes(50000, 3)), parquet.ByteArrayValue(decimalBytes(100000, 4)),
			parquet.ByteArrayValue(decimalBytes(150000, 5))), micros, nil, nil},
		{"string amount", amount(parquet.String(), pqStrs("500.0", "1000", "1500.00")...), micros, nil, nil},
		{"bare BYTE_ARRAY amount", amount(parquet.Leaf(parquet.ByteArrayType), pqStrs("500.0", "1000", "1500.00")...), micros, nil, nil},
		{"INT64 amount is whole rupees", amount(parquet.Leaf(parquet.Int64Type),
			parquet.Int64Value(500), parquet.Int64Value(1000), parquet.Int64Value(1500)), micros, nil, nil},
		{"INT32 amount is whole rupees", amount(parquet.Int(32),
			parquet.Int32Value(500), parquet.Int32Value(1000), parquet.Int32Value(1500)), micros, nil, nil},
		{"UINT64 amount is whole rupees", amount(parquet.Uint(64),
			parquet.Int64Value(500), parquet.Int64Value(1000), parquet.Int64Value(1500)), micros, nil, nil},
		{"TIMESTAMP(MILLIS) time", decimal64, when(parquet.Timestamp(parquet.Millisecond),
			parquet.Int64Value(tms[0].UnixMilli()), parquet.Int64Value(tms[1].UnixMilli()), parquet.Int64Value(tms[2].UnixMilli())), nil, nil},
		{"TIMESTAMP(NANOS) time", decimal64, when(parquet.Timestamp(parquet.Nanosecond),
			parquet.Int64Value(tms[0].UnixNano()), parquet.Int64Value(tms[1].UnixNano()), parquet.Int64Value(tms[2].UnixNano())), nil, nil},
		{"optional TIMESTAMP(MICROS) time", decimal64, when(parquet.Optional(parquet.Timestamp(parquet.Microsecond)),
			micros.values...), nil, nil},
		{"INT96 time", decimal64, when(parquet.Leaf(parquet.Int96Type),
			pqInt96(tms[0], 0), pqInt96(tms[1], 0), pqInt96(tms[2], 0)), nil, nil},
		{"string time", decimal64, when(parquet.String(),
			pqStrs("2024-12-21 10:00:00", "2024-12-21T10:05:00", "2024-12-21T15:40:00+05:30")...), nil, nil},
		{"string time in Kolkata", decimal64, when(parquet.String(),
			pqStrs("2024-12-21 15:30:00", "2024-12-21T15:35:00", "2024-12-21T10:10:00Z")...), kolkata, nil},
		{"TIMESTAMP adjusted to UTC ignores the location", decimal64, micros, kolkata, nil},
		{"TIMESTAMP not adjusted to UTC is wall clock in the location", decimal64,
			when(parquet.TimestampAdjusted(parquet.Microsecond, false),
				parquet.Int64Value(tms[0].Add(5*time.Hour+30*time.Minute).UnixMicro()),
				parquet.Int64Value(tms[1].Add(5*time.Hour+30*time.Minute).UnixMicro()),
				parquet.Int64Value(tms[2].Add(5*time.Hour+30*time.Minute).UnixMicro())), kolkata, nil},
		{"exact paise from a double", amount(parquet.Leaf(parquet.DoubleType),
			parquet.DoubleValue(0.1), parquet.DoubleValue(1000.07), parquet.DoubleValue(9999999999999.99)), micros, nil, []cdc.Input{
			wantUpsert(1, "T001", "upi1@bank", "M001", 10, seed[0].Row.Time, cdc.StatusInitiated),
			wantUpsert(2, "T002", "upi2@bank", "M002", 100007, seed[1].Row.Time, cdc.StatusInitiated),
			wantUpsert(3, "T003", "upi3@bank", "M003", 999999999999999, seed[2].Row.Time, cdc.StatusInitiated),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := writeParquet(t, seedParquetColumns(tc.amount, tc.time), 0)
			path := writeBatchFile(t, "b.parquet", data)
			b, err := cdc.ParseFile(path, cdc.ParseOptions{Location: tc.loc})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == nil {
				want = seed
			}
			checkInputs(t, b.Rows, want)
		})
	}
}

func TestParseParquetDeletesAndNulls(t *testing.T) {
	null := parquet.NullValue()
	opt := func(n parquet.Node) parquet.Node { return parquet.Optional(n) }
	cols := []pqColumn{
		{"transaction_id", parquet.String(), pqStrs("T001", "T002", "T003")},
		{"upi_id", opt(parquet.String()), []parquet.Value{pqStr("upi1@bank"), null, pqStr("upi3@bank")}},
		{"merchant_id", opt(parquet.String()), []parquet.Value{pqStr("M001"), null, pqStr("M003")}},
		{"transaction_amount", opt(parquet.Decimal(2, 18, parquet.Int64Type)), []parquet.Value{parquet.Int64Value(50050), null, null}},
		{"transaction_time", parquet.Timestamp(parquet.Microsecond), []parquet.Value{
			parquet.Int64Value(usAt(t, "2024-12-21T10:00:00Z")), parquet.Int64Value(usAt(t, "2024-12-21T11:00:00Z")), parquet.Int64Value(usAt(t, "2024-12-21T12:00:00Z"))}},
		{"transaction_status", opt(parquet.String()), []parquet.Value{pqStr("completed"), null, pqStr("Failed")}},
		{"op", opt(parquet.String()), []parquet.Value{null, pqStr("delete"), pqStr("DELETE")}},
	}
	got, err := cdc.Parse(writeParquet(t, cols, 0), "d.parquet", cdc.FormatParquet, cdc.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t003 := wantUpsert(3, "T003", "upi3@bank", "M003", 0, usAt(t, "2024-12-21T12:00:00Z"), cdc.StatusFailed)
	t003.Op = cdc.OpDelete
	checkInputs(t, got, []cdc.Input{
		wantUpsert(1, "T001", "upi1@bank", "M001", 50050, usAt(t, "2024-12-21T10:00:00Z"), cdc.StatusCompleted),
		wantDelete(2, "T002", usAt(t, "2024-12-21T11:00:00Z")),
		t003,
	})
}

func TestParseParquetEmpty(t *testing.T) {
	cols := seedParquetColumns(
		pqColumn{"transaction_amount", parquet.Leaf(parquet.DoubleType), nil},
		pqColumn{"transaction_time", parquet.Timestamp(parquet.Microsecond), nil})
	for i := range cols {
		cols[i].values = nil
	}
	got, err := cdc.Parse(writeParquet(t, cols, 0), "e.parquet", cdc.FormatParquet, cdc.ParseOptions{})
	if err != nil || len(got) != 0 {
		t.Fatalf("Parse = %d rows, %v; want no rows and no error", len(got), err)
	}
}

func TestParseParquetRowGroups(t *testing.T) {
	// 7 rows in row groups of 3: Pos counts across groups.
	var ids, times []parquet.Value
	var want []cdc.Input
	for i := range 7 {
		id := "T00" + string(rune('1'+i))
		tm := usAt(t, "2024-12-21T10:00:00Z") + int64(i)*1_000_000
		ids = append(ids, pqStr(id))
		times = append(times, parquet.Int64Value(tm))
		want = append(want, wantUpsert(i+1, id, "u", "M", 100, tm, cdc.StatusInitiated))
	}
	cols := func(statuses []parquet.Value) []pqColumn {
		return []pqColumn{
			{"transaction_id", parquet.String(), ids},
			{"upi_id", parquet.String(), pqStrs("u", "u", "u", "u", "u", "u", "u")},
			{"merchant_id", parquet.String(), pqStrs("M", "M", "M", "M", "M", "M", "M")},
			{"transaction_amount", parquet.Leaf(parquet.Int64Type), slices.Repeat([]parquet.Value{parquet.Int64Value(1)}, 7)},
			{"transaction_time", parquet.Timestamp(parquet.Microsecond), times},
			{"transaction_status", parquet.String(), statuses},
		}
	}
	statuses := pqStrs("initiated", "initiated", "initiated", "initiated", "initiated", "initiated", "initiated")
	data := writeParquet(t, cols(statuses), 3)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.RowGroups()); n != 3 {
		t.Fatalf("test file has %d row groups, want 3", n)
	}
	got, err := cdc.Parse(data, "g.parquet", cdc.FormatParquet, cdc.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkInputs(t, got, want)

	statuses[6] = pqStr("settled")
	_, err = cdc.Parse(writeParquet(t, cols(statuses), 3), "g.parquet", cdc.FormatParquet, cdc.ParseOptions{})
	checkParseError(t, err, cdc.ErrBadStatus,
		`g.parquet: row 7: transaction_status: "settled" is not a status (want initiated, completed, failed or refunded)`)
}

// badParquet is a Parquet file Parse must refuse, written from cols.
type badParquet struct {
	name     string
	cols     []pqColumn
	sentinel error
	want     string
}

// badParquetFiles returns the refused Parquet cases; every file is called
// b.parquet.
func badParquetFiles(t testing.TB) []badParquet {
	seed := seedBatches(t)[0]
	tm := seed[1].Row.TimeUTC()
	micros := pqColumn{"transaction_time", parquet.Timestamp(parquet.Microsecond), []parquet.Value{
		parquet.Int64Value(seed[0].Row.Time), parquet.Int64Value(seed[1].Row.Time), parquet.Int64Value(seed[2].Row.Time)}}
	double := func(vs ...float64) pqColumn {
		c := pqColumn{"transaction_amount", parquet.Leaf(parquet.DoubleType), nil}
		for _, v := range vs {
			c.values = append(c.values, parquet.DoubleValue(v))
		}
		return c
	}
	good := double(500, 1000, 1500)
	tenth := 0.1 // a variable: constant 0.1+0.2 would be exact
	// replace returns the seed columns with the named column's node and
	// values replaced, or removed when node is nil.
	replace := func(cols []pqColumn, name string, node parquet.Node, vs ...parquet.Value) []pqColumn {
		out := slices.Clone(cols)
		for i, c := range out {
			if c.name == name {
				if node == nil {
					return slices.Delete(out, i, i+1)
				}
				out[i] = pqColumn{name, node, vs}
				return out
			}
		}
		return append(out, pqColumn{name, node, vs})
	}
	base := seedParquetColumns(good, micros)
	const (
		allowed = "(allowed: transaction_id, upi_id, merchant_id, transaction_amount, transaction_time, transaction_status and optional op)"
		amtWant = "want DECIMAL (scale 2), INT32/INT64 (whole rupees), DOUBLE/FLOAT or a string"
	)
	return []badParquet{
		{"double with 3 decimals", seedParquetColumns(double(500, 0.123, 1), micros), cdc.ErrBadAmount,
			`b.parquet: row 2: transaction_amount: "0.123" has more than 2 decimals`},
		{"double that is not exact", seedParquetColumns(double(500, tenth+2*tenth, 1), micros), cdc.ErrBadAmount,
			`b.parquet: row 2: transaction_amount: "0.30000000000000004" has more than 2 decimals`},
		{"negative double", seedParquetColumns(double(500, 1, -1), micros), cdc.ErrBadAmount,
			`b.parquet: row 3: transaction_amount: "-1" is negative`},
		{"NaN double", seedParquetColumns(double(500, nanValue(), 1), micros), cdc.ErrBadAmount,
			`b.parquet: row 2: transaction_amount: "NaN" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"huge double", seedParquetColumns(double(1e17, 1, 1), micros), cdc.ErrBadAmount,
			`b.parquet: row 1: transaction_amount: "100000000000000000" is too large (more than 16 integer digits does not fit decimal(18,2))`},
		{"decimal(18,4) with a fourth digit", replace(base, "transaction_amount", parquet.Decimal(4, 18, parquet.Int64Type),
			parquet.Int64Value(5000000), parquet.Int64Value(5005001), parquet.Int64Value(1)), cdc.ErrBadAmount,
			`b.parquet: row 2: transaction_amount: "500.5001" has more than 2 decimals`},
		{"negative FIXED_LEN_BYTE_ARRAY decimal", replace(base, "transaction_amount", parquet.Decimal(2, 18, parquet.FixedLenByteArrayType(8)),
			parquet.FixedLenByteArrayValue(decimalBytes(1, 8)), parquet.FixedLenByteArrayValue(decimalBytes(-50050, 8)), parquet.FixedLenByteArrayValue(decimalBytes(1, 8))), cdc.ErrBadAmount,
			`b.parquet: row 2: transaction_amount: "-500.50" is negative`},
		{"negative INT32 decimal", replace(base, "transaction_amount", parquet.Decimal(2, 9, parquet.Int32Type),
			parquet.Int32Value(-5), parquet.Int32Value(1), parquet.Int32Value(1)), cdc.ErrBadAmount,
			`b.parquet: row 1: transaction_amount: "-0.05" is negative`},
		{"bad string amount", replace(base, "transaction_amount", parquet.String(), pqStrs("1", "1", "12.5.0")...), cdc.ErrBadAmount,
			`b.parquet: row 3: transaction_amount: "12.5.0" is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`},
		{"nanos finer than micros", replace(base, "transaction_time", parquet.Timestamp(parquet.Nanosecond),
			parquet.Int64Value(tm.UnixNano()), parquet.Int64Value(tm.UnixNano()+1), parquet.Int64Value(tm.UnixNano())), cdc.ErrBadTime,
			`b.parquet: row 2: transaction_time: 2024-12-21T10:05:00.000000001Z has precision finer than microseconds`},
		{"INT96 finer than micros", replace(base, "transaction_time", parquet.Leaf(parquet.Int96Type),
			pqInt96(tm, 0), pqInt96(tm, 0), pqInt96(tm, 999)), cdc.ErrBadTime,
			`b.parquet: row 3: transaction_time: 2024-12-21T10:05:00.000000999Z has precision finer than microseconds`},
		{"millis out of range", replace(base, "transaction_time", parquet.Timestamp(parquet.Millisecond),
			parquet.Int64Value(1<<62), parquet.Int64Value(0), parquet.Int64Value(0)), cdc.ErrBadTime,
			`b.parquet: row 1: transaction_time: 4611686018427387904 milliseconds since the epoch is outside years 0001-9999`},
		{"bad string time", replace(base, "transaction_time", parquet.String(),
			pqStrs("2024-12-21 10:00:00", "2024-12-21 10:00", "2024-12-21 10:00:00")...), cdc.ErrBadTime,
			`b.parquet: row 2: transaction_time: "2024-12-21 10:00" is not a timestamp (want 2006-01-02 15:04:05, 2006-01-02T15:04:05 or RFC 3339 with a zone)`},
		{"null in a column an upsert needs", replace(base, "upi_id", parquet.Optional(parquet.String()),
			pqStr("u"), parquet.NullValue(), pqStr("u")), cdc.ErrMissingField,
			`b.parquet: row 2: upi_id: missing or empty; only a delete row (op=delete) may leave it out`},
		{"not UTF-8", replace(base, "merchant_id", parquet.String(), pqStrs("M1", "M2", "M\xc0")...), cdc.ErrNotUTF8,
			`b.parquet: row 3: merchant_id: byte 0xc0 at offset 1 is not UTF-8 (re-encode the file as UTF-8)`},
		{"bad op", append(slices.Clone(base), pqColumn{"op", parquet.String(), pqStrs("upsert", "delete", "merge")}), cdc.ErrBadOp,
			`b.parquet: row 3: op: "merge" is not an op (want upsert or delete)`},
		{"missing column", replace(base, "upi_id", nil), cdc.ErrMissingField,
			`b.parquet: schema: missing column "upi_id" (without an op column every row is an upsert, which needs it)`},
		{"unknown column", replace(base, "amount", parquet.Leaf(parquet.DoubleType), parquet.DoubleValue(1), parquet.DoubleValue(1), parquet.DoubleValue(1)), cdc.ErrUnknownColumn,
			`b.parquet: schema: unknown column "amount" ` + allowed},
		{"INT64 id", replace(base, "transaction_id", parquet.Leaf(parquet.Int64Type),
			parquet.Int64Value(1), parquet.Int64Value(2), parquet.Int64Value(3)), cdc.ErrWrongType,
			`b.parquet: schema: column "transaction_id" has type INT64; want a string (BYTE_ARRAY)`},
		{"BOOLEAN amount", replace(base, "transaction_amount", parquet.Leaf(parquet.BooleanType),
			parquet.BooleanValue(true), parquet.BooleanValue(true), parquet.BooleanValue(true)), cdc.ErrWrongType,
			`b.parquet: schema: column "transaction_amount" has type BOOLEAN; ` + amtWant},
		{"DATE time", replace(base, "transaction_time", parquet.Date(),
			parquet.Int32Value(1), parquet.Int32Value(1), parquet.Int32Value(1)), cdc.ErrWrongType,
			`b.parquet: schema: column "transaction_time" has type INT32 (DATE); want TIMESTAMP (millis, micros or nanos), INT96 or a string`},
		{"plain INT64 time", replace(base, "transaction_time", parquet.Leaf(parquet.Int64Type),
			parquet.Int64Value(1), parquet.Int64Value(1), parquet.Int64Value(1)), cdc.ErrWrongType,
			`b.parquet: schema: column "transaction_time" has type INT64; want TIMESTAMP (millis, micros or nanos), INT96 or a string`},
		{"JSON status", replace(base, "transaction_status", parquet.JSON(), pqStrs(`"a"`, `"a"`, `"a"`)...), cdc.ErrWrongType,
			`b.parquet: schema: column "transaction_status" has type BYTE_ARRAY (JSON); want a string (BYTE_ARRAY)`},
		{"repeated column", replace(base, "upi_id", parquet.Repeated(parquet.String()), pqStr("a"), pqStr("b"), pqStr("c")), cdc.ErrWrongType,
			`b.parquet: schema: column "upi_id" is repeated; want a single value per row`},
	}
}

func TestParseParquetBadFiles(t *testing.T) {
	for _, tc := range badParquetFiles(t) {
		t.Run(tc.name, func(t *testing.T) {
			path := writeBatchFile(t, "b.parquet", writeParquet(t, tc.cols, 0))
			b, err := cdc.ParseFile(path, cdc.ParseOptions{})
			if b != nil {
				t.Errorf("got a batch of %d rows with the error; want nil", len(b.Rows))
			}
			checkParseError(t, err, tc.sentinel, tc.want)
		})
	}

	t.Run("group column", func(t *testing.T) {
		type nested struct {
			TransactionID string `parquet:"transaction_id"`
			UPIID         struct {
				Handle string `parquet:"handle"`
			} `parquet:"upi_id"`
		}
		path := filepath.Join(t.TempDir(), "n.parquet")
		if err := parquet.WriteFile(path, []nested{{TransactionID: "T1"}}); err != nil {
			t.Fatal(err)
		}
		_, err := cdc.ParseFile(path, cdc.ParseOptions{})
		checkParseError(t, err, cdc.ErrWrongType,
			`n.parquet: schema: column "upi_id" is a group (struct, list or map); want a top-level primitive column`)
	})
	t.Run("truncated file", func(t *testing.T) {
		data := truncatedParquet(t)
		_, err := cdc.Parse(data, "t.parquet", cdc.FormatParquet, cdc.ParseOptions{})
		var pe *cdc.ParseError
		if !errors.As(err, &pe) || !errors.Is(err, cdc.ErrMalformed) || pe.File != "t.parquet" {
			t.Errorf("error %v, want a *ParseError for t.parquet matching ErrMalformed", err)
		}
	})
}

// truncatedParquet returns the first half of a good Parquet file.
func truncatedParquet(t testing.TB) []byte {
	tm := parquet.Int64Value(0)
	data := writeParquet(t, seedParquetColumns(
		pqColumn{"transaction_amount", parquet.Leaf(parquet.DoubleType), []parquet.Value{parquet.DoubleValue(1), parquet.DoubleValue(1), parquet.DoubleValue(1)}},
		pqColumn{"transaction_time", parquet.Timestamp(parquet.Microsecond), []parquet.Value{tm, tm, tm}}), 0)
	return data[:len(data)/2]
}

// nanValue returns a NaN without a constant expression (which Go forbids).
func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

// Properties

// genRow draws a valid row and the op it comes with. Deletes may leave out
// everything but id and time.
func genRow(t *rapid.T) cdc.Input {
	id := rapid.StringMatching(`[A-Za-z0-9é₹]([A-Za-z0-9@._,"' é₹-]{0,12}[A-Za-z0-9])?`)
	in := cdc.Input{Op: rapid.SampledFrom([]cdc.Op{cdc.OpUpsert, cdc.OpDelete}).Draw(t, "op")}
	in.Row = cdc.Row{
		TransactionID: id.Draw(t, "transaction_id"),
		UPIID:         id.Draw(t, "upi_id"),
		MerchantID:    id.Draw(t, "merchant_id"),
		Amount:        store.Paise(rapid.Int64Range(0, int64(store.MaxPaise)).Draw(t, "amount")),
		// Years 0001 to 9999.
		Time:   rapid.Int64Range(-62135596800_000_000, 253402300799_999_999).Draw(t, "time"),
		Status: rapid.SampledFrom([]cdc.Status{cdc.StatusInitiated, cdc.StatusCompleted, cdc.StatusFailed, cdc.StatusRefunded}).Draw(t, "status"),
	}
	if in.Op == cdc.OpDelete && rapid.Bool().Draw(t, "sparse delete") {
		in.Row = cdc.Row{TransactionID: in.Row.TransactionID, Time: in.Row.Time}
	}
	return in
}

// timeText writes a time in one of the accepted textual forms.
func timeText(t *rapid.T, us int64) string {
	tm := time.UnixMicro(us).UTC()
	layouts := []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.000000", time.RFC3339Nano}
	s := tm.Format(rapid.SampledFrom(layouts).Draw(t, "layout"))
	// With an offset, the local year must still have 4 digits.
	if ist := tm.In(time.FixedZone("", 5*3600+1800)); ist.Year() <= 9999 && rapid.Bool().Draw(t, "zone") {
		s = ist.Format(time.RFC3339Nano)
	}
	return s
}

// TestParseRoundTrip writes random valid rows in each format with the
// ordinary writers (encoding/csv, encoding/json, parquet-go) and checks
// that parsing gives the rows back.
func TestParseRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		want := rapid.SliceOfN(rapid.Custom(genRow), 0, 20).Draw(t, "rows")
		empty := func(in cdc.Input) bool { return in.Op == cdc.OpDelete && in.Row.UPIID == "" }

		// CSV, columns in a random order.
		names := []string{"transaction_id", "upi_id", "merchant_id", "transaction_amount", "transaction_time", "transaction_status", "op"}
		perm := rapid.Permutation(names).Draw(t, "columns")
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write(perm)
		for _, in := range want {
			vals := map[string]string{"transaction_id": in.Row.TransactionID, "transaction_time": timeText(t, in.Row.Time), "op": in.Op.String()}
			if !empty(in) {
				vals["upi_id"], vals["merchant_id"] = in.Row.UPIID, in.Row.MerchantID
				vals["transaction_amount"], vals["transaction_status"] = in.Row.Amount.Decimal(), in.Row.Status.String()
			}
			rec := make([]string, len(perm))
			for i, n := range perm {
				rec[i] = vals[n]
			}
			_ = w.Write(rec)
		}
		w.Flush()
		got, err := cdc.Parse(buf.Bytes(), "r.csv", cdc.FormatCSV, cdc.ParseOptions{})
		if err != nil {
			t.Fatalf("CSV: %v\n%s", err, buf.Bytes())
		}
		checkSameRows(t, "CSV", got, want)

		// JSON Lines, amounts as numbers or strings.
		buf.Reset()
		for _, in := range want {
			obj := map[string]any{"transaction_id": in.Row.TransactionID, "transaction_time": timeText(t, in.Row.Time)}
			if in.Op == cdc.OpDelete {
				obj["op"] = "delete"
			}
			if !empty(in) {
				obj["upi_id"], obj["merchant_id"], obj["transaction_status"] = in.Row.UPIID, in.Row.MerchantID, in.Row.Status.String()
				obj["transaction_amount"] = json.Number(in.Row.Amount.String())
				if rapid.Bool().Draw(t, "amount as string") {
					obj["transaction_amount"] = in.Row.Amount.Decimal()
				}
			}
			line, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(append(line, '\n'))
		}
		if len(want) == 0 {
			buf.WriteString("\n") // zero bytes would be ErrEmptyFile
		}
		got, err = cdc.Parse(buf.Bytes(), "r.jsonl", cdc.FormatJSONL, cdc.ParseOptions{})
		if err != nil {
			t.Fatalf("JSONL: %v\n%s", err, buf.Bytes())
		}
		checkSameRows(t, "JSONL", got, want)

		// Parquet as Spark writes it, with nulls where a delete has no value.
		null := parquet.NullValue()
		cols := []pqColumn{
			{"transaction_id", parquet.String(), nil},
			{"upi_id", parquet.Optional(parquet.String()), nil},
			{"merchant_id", parquet.Optional(parquet.String()), nil},
			{"transaction_amount", parquet.Optional(parquet.Decimal(2, 18, parquet.Int64Type)), nil},
			{"transaction_time", parquet.Timestamp(parquet.Microsecond), nil},
			{"transaction_status", parquet.Optional(parquet.String()), nil},
			{"op", parquet.String(), nil},
		}
		for _, in := range want {
			vs := []parquet.Value{pqStr(in.Row.TransactionID), null, null, null, parquet.Int64Value(in.Row.Time), null, pqStr(in.Op.String())}
			if !empty(in) {
				vs[1], vs[2], vs[3], vs[5] = pqStr(in.Row.UPIID), pqStr(in.Row.MerchantID), parquet.Int64Value(int64(in.Row.Amount)), pqStr(in.Row.Status.String())
			}
			for i := range cols {
				cols[i].values = append(cols[i].values, vs[i])
			}
		}
		got, err = cdc.Parse(writeParquet(t, cols, 7), "r.parquet", cdc.FormatParquet, cdc.ParseOptions{})
		if err != nil {
			t.Fatalf("Parquet: %v", err)
		}
		checkSameRows(t, "Parquet", got, want)
	})
}

// checkSameRows compares rows ignoring Pos, which differs by format.
func checkSameRows(t *rapid.T, format string, got, want []cdc.Input) {
	if len(got) != len(want) {
		t.Fatalf("%s: got %d rows, want %d", format, len(got), len(want))
	}
	for i := range want {
		g := got[i]
		g.Pos = 0
		if !reflect.DeepEqual(g, want[i]) {
			t.Fatalf("%s row %d:\n got: %+v\nwant: %+v", format, i, g, want[i])
		}
	}
}

// TestParseParquetInt96Range checks INT96 days far outside the calendar.
func TestParseParquetInt96Range(t *testing.T) {
	base := seedParquetColumns(
		pqColumn{"transaction_amount", parquet.Leaf(parquet.DoubleType), []parquet.Value{parquet.DoubleValue(1), parquet.DoubleValue(1), parquet.DoubleValue(1)}},
		pqColumn{"transaction_time", parquet.Leaf(parquet.Int96Type), []parquet.Value{
			parquet.Int96Value(deprecated.Int96{0, 0, 1<<32 - 1}), parquet.Int96Value(deprecated.Int96{0, 0, 2440588}), parquet.Int96Value(deprecated.Int96{0, 0, 2440588})}})
	_, err := cdc.Parse(writeParquet(t, base, 0), "i.parquet", cdc.FormatParquet, cdc.ParseOptions{})
	checkParseError(t, err, cdc.ErrBadTime, `i.parquet: row 1: transaction_time: INT96 timestamp's Julian day 4294967295 is outside years 0001-9999`)

	base[4].values[0] = parquet.Int96Value(deprecated.Int96{0xffffffff, 0xffffffff, 2440588})
	_, err = cdc.Parse(writeParquet(t, base, 0), "i.parquet", cdc.FormatParquet, cdc.ParseOptions{})
	checkParseError(t, err, cdc.ErrBadTime, `i.parquet: row 1: transaction_time: INT96 timestamp has 18446744073709551615 nanoseconds in a day`)
}
