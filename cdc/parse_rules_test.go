package cdc_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/upicdc/upicdc/cdc"
)

// TestParseParquetEmptyFromWriters: a Parquet file of no rows, as real
// writers make it, is an empty batch like a header-only CSV.
func TestParseParquetEmptyFromWriters(t *testing.T) {
	// testdata/parse/empty-pyarrow.parquet was written by pyarrow 26.0.1
	// (python3 -m venv v && v/bin/pip install pyarrow), with
	//
	//	import pyarrow as pa, pyarrow.parquet as pq
	//	schema = pa.schema([("transaction_id", pa.string()), ("upi_id", pa.string()),
	//	    ("merchant_id", pa.string()), ("transaction_amount", pa.decimal128(18, 2)),
	//	    ("transaction_time", pa.timestamp("us", tz="UTC")), ("transaction_status", pa.string())])
	//	pq.write_table(schema.empty_table(), "empty-pyarrow.parquet")
	//
	// pyarrow writes one row group of 0 rows whose column chunks hold no
	// pages, which parquet-go cannot seek into.
	t.Run("pyarrow", func(t *testing.T) {
		b, err := cdc.ParseFile(filepath.Join("testdata", "parse", "empty-pyarrow.parquet"), cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Rows) != 0 {
			t.Errorf("got %d rows, want none", len(b.Rows))
		}
	})
	t.Run("parquet-go WriteFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "empty.parquet")
		if err := parquet.WriteFile(path, []sparkRow{}); err != nil {
			t.Fatal(err)
		}
		b, err := cdc.ParseFile(path, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Rows) != 0 {
			t.Errorf("got %d rows, want none", len(b.Rows))
		}
	})
	t.Run("ingested as a no-op", func(t *testing.T) {
		e := newEnv(t)
		data := readTestdata(t, "empty-pyarrow.parquet")
		res, err := e.m.IngestFile(t.Context(), e.file("empty.parquet", string(data)))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Empty || res.Version != 0 {
			t.Errorf("result %+v, want an empty batch and no version", res)
		}
		if v := e.latest(); v != 0 {
			t.Errorf("latest version %d, want 0", v)
		}
	})
}

// TestParseJSONLLoneSurrogates: encoding/json turns an escaped lone UTF-16
// surrogate into U+FFFD, which would make "T\ud800" and "T\udbff" one
// transaction; such escapes are refused like invalid UTF-8.
func TestParseJSONLLoneSurrogates(t *testing.T) {
	const rest = `"upi_id":"u","merchant_id":"M","transaction_amount":1,"transaction_time":"2024-12-21 10:00:00","transaction_status":"initiated"`
	const why = "is a lone UTF-16 surrogate, not a character (re-encode the file as UTF-8)"
	for _, tc := range []struct {
		name, line, want string
	}{
		{"high", `{"transaction_id":"T\ud800",` + rest + `}`, `b.jsonl: line 1: transaction_id: \ud800 at offset 1 ` + why},
		{"other high", `{"transaction_id":"T\udbff",` + rest + `}`, `b.jsonl: line 1: transaction_id: \udbff at offset 1 ` + why},
		{"low", `{"transaction_id":"\uDC00T",` + rest + `}`, `b.jsonl: line 1: transaction_id: \uDC00 at offset 0 ` + why},
		{"high then a letter", `{"transaction_id":"T\ud800\u0041",` + rest + `}`, `b.jsonl: line 1: transaction_id: \ud800 at offset 1 ` + why},
		{"two highs", `{"transaction_id":"T\ud800\ud800",` + rest + `}`, `b.jsonl: line 1: transaction_id: \ud800 at offset 1 ` + why},
		{"low then high", `{"transaction_id":"T\ude00\ud83d",` + rest + `}`, `b.jsonl: line 1: transaction_id: \ude00 at offset 1 ` + why},
		{"after other escapes", `{"transaction_id":"T\"\\\n\u00e9\udfff",` + rest + `}`, `b.jsonl: line 1: transaction_id: \udfff at offset 13 ` + why},
		{"status", `{"transaction_id":"T1",` + strings.Replace(rest, `"initiated"`, `"failed\ud800"`, 1) + `}`,
			`b.jsonl: line 1: transaction_status: \ud800 at offset 6 ` + why},
		{"key", `{"transaction_id\ud800":"T1",` + rest + `}`,
			`b.jsonl: line 1: an object key has \ud800 at offset 14, which ` + why},
		{"second line", `{"transaction_id":"T1",` + rest + "}\n" + `{"transaction_id":"T2","upi_id":"u\udbff"}`,
			`b.jsonl: line 2: upi_id: \udbff at offset 1 ` + why},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := cdc.Parse([]byte(tc.line), "b.jsonl", cdc.FormatJSONL, cdc.ParseOptions{})
			if rows != nil {
				t.Errorf("got %d rows with the error", len(rows))
			}
			checkParseError(t, err, cdc.ErrNotUTF8, tc.want)
		})
	}

	// Whole pairs, an escaped backslash before "u", and U+FFFD itself
	// (escaped or not) are fine.
	rows, err := cdc.Parse([]byte(
		`{"transaction_id":"T\ud83d\ude00",`+rest+"}\n"+
			`{"transaction_id":"T\\ud800",`+rest+"}\n"+
			`{"transaction_id":"T\uFFFD",`+rest+"}\n"+
			`{"transaction_id":"T`+"\ufffd"+`x",`+rest+"}\n"), "b.jsonl", cdc.FormatJSONL, cdc.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range rows {
		got = append(got, in.Row.TransactionID)
	}
	equal(t, "ids", got, []string{"T😀", `T\ud800`, "T\ufffd", "T\ufffdx"})
}

// TestParseDeletesOnly: a file of deletes needs no column but
// transaction_id, transaction_time and op; a column is required only when
// a row needs it.
func TestParseDeletesOnly(t *testing.T) {
	tm := usAt(t, "2024-12-21T11:00:00Z")
	t.Run("csv", func(t *testing.T) {
		got, err := cdc.Parse([]byte("transaction_id,transaction_time,op\nT1,2024-12-21 11:00:00,delete\nT2,2024-12-21 11:00:00,DELETE\n"),
			"d.csv", cdc.FormatCSV, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInputs(t, got, []cdc.Input{wantDelete(2, "T1", tm), wantDelete(3, "T2", tm)})
	})
	t.Run("csv with a status", func(t *testing.T) {
		got, err := cdc.Parse([]byte("op,transaction_time,transaction_status,transaction_id\ndelete,2024-12-21 11:00:00,failed,T1\n"),
			"d.csv", cdc.FormatCSV, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := wantDelete(2, "T1", tm)
		want.Row.Status = cdc.StatusFailed
		checkInputs(t, got, []cdc.Input{want})
	})
	t.Run("parquet", func(t *testing.T) {
		cols := []pqColumn{
			{"transaction_id", parquet.String(), pqStrs("T1", "T2")},
			{"transaction_time", parquet.Timestamp(parquet.Microsecond), []parquet.Value{parquet.Int64Value(tm), parquet.Int64Value(tm)}},
			{"op", parquet.String(), pqStrs("delete", "delete")},
		}
		got, err := cdc.Parse(writeParquet(t, cols, 0), "d.parquet", cdc.FormatParquet, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInputs(t, got, []cdc.Input{wantDelete(1, "T1", tm), wantDelete(2, "T2", tm)})
	})

	const noCol = "the file has no such column; only a delete row (op=delete) may leave it out"
	for _, tc := range []struct {
		name, content, want string
	}{
		{"an upsert among deletes", "transaction_id,transaction_time,op\nT1,2024-12-21 11:00:00,delete\nT2,2024-12-21 11:00:00,upsert\n",
			`d.csv: line 3: upi_id: ` + noCol},
		{"an op left empty is an upsert", "transaction_id,transaction_time,op,upi_id,merchant_id\nT2,2024-12-21 11:00:00,,u,m\n",
			`d.csv: line 2: transaction_amount: ` + noCol},
		{"no op column: all upserts", "transaction_id,transaction_time,transaction_status\nT1,2024-12-21 11:00:00,failed\n",
			`d.csv: line 1: header: missing column "upi_id" (without an op column every row is an upsert, which needs it)`},
		{"every row needs a time", "transaction_id,op\nT1,delete\n",
			`d.csv: line 1: header: missing column "transaction_time" (every row needs it)`},
		{"every row needs an id", "transaction_time,op\n2024-12-21 11:00:00,delete\n",
			`d.csv: line 1: header: missing column "transaction_id" (every row needs it)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cdc.Parse([]byte(tc.content), "d.csv", cdc.FormatCSV, cdc.ParseOptions{})
			checkParseError(t, err, cdc.ErrMissingField, tc.want)
		})
	}
	t.Run("parquet upsert among deletes", func(t *testing.T) {
		cols := []pqColumn{
			{"transaction_id", parquet.String(), pqStrs("T1", "T2")},
			{"transaction_time", parquet.Timestamp(parquet.Microsecond), []parquet.Value{parquet.Int64Value(tm), parquet.Int64Value(tm)}},
			{"op", parquet.Optional(parquet.String()), []parquet.Value{pqStr("delete"), parquet.NullValue()}},
			{"merchant_id", parquet.String(), pqStrs("M", "M")},
		}
		_, err := cdc.Parse(writeParquet(t, cols, 0), "d.parquet", cdc.FormatParquet, cdc.ParseOptions{})
		checkParseError(t, err, cdc.ErrMissingField, `d.parquet: row 2: upi_id: `+noCol)
	})
}

// TestParseColumnNamesAnyCase: column names match in any ASCII case, with
// surrounding spaces, in every format.
func TestParseColumnNamesAnyCase(t *testing.T) {
	want := []cdc.Input{wantUpsert(0, "T1", "u@b", "M1", 50000, usAt(t, "2024-12-21T10:00:00Z"), cdc.StatusInitiated)}
	t.Run("csv", func(t *testing.T) {
		got, err := cdc.Parse([]byte("Transaction_ID ,UPI_ID, Merchant_Id,TRANSACTION_AMOUNT,transaction_Time,Transaction_Status,OP\n"+
			"T1,u@b,M1,500,2024-12-21 10:00:00,initiated,upsert\n"), "c.csv", cdc.FormatCSV, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInputs(t, got, shiftPos(want, 2))
	})
	t.Run("jsonl", func(t *testing.T) {
		got, err := cdc.Parse([]byte(`{"Transaction_ID":"T1","UPI_ID":"u@b","Merchant_Id":"M1","TRANSACTION_AMOUNT":500,`+
			`" transaction_time ":"2024-12-21 10:00:00","Transaction_Status":"initiated","Op":"upsert"}`), "c.jsonl", cdc.FormatJSONL, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInputs(t, got, shiftPos(want, 1))
	})
	t.Run("parquet", func(t *testing.T) {
		cols := []pqColumn{
			{"Transaction_ID", parquet.String(), pqStrs("T1")},
			{"UPI_ID", parquet.String(), pqStrs("u@b")},
			{"Merchant_Id", parquet.String(), pqStrs("M1")},
			{"TRANSACTION_AMOUNT", parquet.Decimal(2, 18, parquet.Int64Type), []parquet.Value{parquet.Int64Value(50000)}},
			{"Transaction_Time", parquet.Timestamp(parquet.Microsecond), []parquet.Value{parquet.Int64Value(usAt(t, "2024-12-21T10:00:00Z"))}},
			{"transaction_STATUS", parquet.String(), pqStrs("initiated")},
		}
		got, err := cdc.Parse(writeParquet(t, cols, 0), "c.parquet", cdc.FormatParquet, cdc.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInputs(t, got, shiftPos(want, 1))
	})

	const allowed = "(allowed: transaction_id, upi_id, merchant_id, transaction_amount, transaction_time, transaction_status and optional op)"
	for _, tc := range []struct {
		name, file, content string
		sentinel            error
		want                string
	}{
		{"same column in two cases", "c.csv", "transaction_id,upi_id,UPI_ID\n", cdc.ErrDuplicateColumn,
			`c.csv: line 1: header: column "UPI_ID" appears more than once`},
		{"same key in two cases", "c.jsonl", `{"op":"delete","OP":"delete"}`, cdc.ErrDuplicateColumn,
			`c.jsonl: line 1: column "OP" appears more than once`},
		{"only ASCII letters fold", "c.csv", "tranſaction_id,upi_id\n", cdc.ErrUnknownColumn,
			`c.csv: line 1: header: unknown column "tranſaction_id" ` + allowed},
		{";-separated header", "c.csv", "transaction_id;upi_id;merchant_id;transaction_amount;transaction_time;transaction_status\n" +
			"T1;u@b;M1;500,50;2024-12-21 10:00:00;initiated\n", cdc.ErrUnknownColumn,
			`c.csv: line 1: header: unknown column "transaction_id;upi_id;merchant_id;transaction_amount;transaction_time;transactio"… (88 bytes) ` +
				`(the header looks ;-separated; upicdc reads comma-separated CSV)`},
		{";-separated header, capitalised", "c.csv", "Transaction_ID; UPI_ID\n", cdc.ErrUnknownColumn,
			`c.csv: line 1: header: unknown column "Transaction_ID; UPI_ID" (the header looks ;-separated; upicdc reads comma-separated CSV)`},
		{"a ; in an unknown name alone is no hint", "c.csv", "transaction_id,a;b\n", cdc.ErrUnknownColumn,
			`c.csv: line 1: header: unknown column "a;b" ` + allowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cdc.Parse([]byte(tc.content), tc.file, formatOf(t, tc.file), cdc.ParseOptions{})
			checkParseError(t, err, tc.sentinel, tc.want)
		})
	}
}

// formatOf returns the format a file name's extension picks.
func formatOf(t testing.TB, name string) cdc.Format {
	t.Helper()
	f, err := cdc.FormatFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
