package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// readTestdata returns a file of testdata/parse.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "parse", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// maxMessage bounds the length of any refusal's message: whatever a file
// holds, the message quotes only the start of it.
const maxMessage = 400

// hugeFiles returns files with a 1 MB value in each place a value can be,
// in every format. Each must be refused with a short message.
func hugeFiles(t testing.TB) map[string][]byte {
	const mb = 1 << 20
	huge := strings.Repeat("x", mb)
	digits := strings.Repeat("1", mb)
	files := map[string][]byte{}

	// CSV: a header with one column replaced, or a row with one value.
	names := []string{"transaction_id", "upi_id", "merchant_id", "transaction_amount", "transaction_time", "transaction_status", "op"}
	good := []string{"T1", "u@b", "M1", "500", "2024-12-21 10:00:00", "initiated", "upsert"}
	csvFile := func(header, row []string) []byte {
		return []byte(strings.Join(header, ",") + "\n" + strings.Join(row, ",") + "\n")
	}
	for i, n := range names {
		h := append([]string(nil), names...)
		h[i] = huge
		files["csv header "+n+".csv"] = csvFile(h, good)
		h[i] = n + strings.Repeat(" ", mb) + "x"
		files["csv header "+n+" with spaces.csv"] = csvFile(h, good)
		for j, v := range []string{huge, digits, "1" + huge, "\x01" + huge, digits + ".5"} {
			r := append([]string(nil), good...)
			r[i] = v
			files[fmt.Sprintf("csv %s %d.csv", n, j)] = csvFile(names, r)
		}
	}
	files["csv ;-header.csv"] = []byte(strings.Join(names, ";") + ";" + huge + "\n")
	files["csv control id.csv"] = csvFile(names, []string{strings.Repeat("\x01", 250), "u", "m", "1", "2024-12-21 10:00:00", "failed", ""})

	// JSON Lines: a key, a string value, a number value, text around.
	// jsonFile returns a good object with key k set to the raw JSON v.
	jsonFile := func(k, v string) []byte {
		var parts []string
		found := false
		for i, n := range names {
			if n == k {
				parts, found = append(parts, `"`+n+`":`+v), true
				continue
			}
			parts = append(parts, `"`+n+`":"`+good[i]+`"`)
		}
		if !found {
			parts = append(parts, `"`+k+`":`+v)
		}
		return []byte("{" + strings.Join(parts, ",") + "}\n")
	}
	files["jsonl key.jsonl"] = jsonFile(huge, "1")
	files["jsonl key spaces.jsonl"] = jsonFile("upi_id"+strings.Repeat(" ", mb)+"x", "1")
	files["jsonl key surrogate.jsonl"] = jsonFile(huge+`\ud800`, "1")
	for _, n := range names {
		files["jsonl "+n+" string.jsonl"] = jsonFile(n, `"`+huge+`"`)
		files["jsonl "+n+" digits.jsonl"] = jsonFile(n, `"`+digits+`"`)
		files["jsonl "+n+" number.jsonl"] = jsonFile(n, digits)
		files["jsonl "+n+" float.jsonl"] = jsonFile(n, digits+".5e"+digits)
		files["jsonl "+n+" surrogate.jsonl"] = jsonFile(n, `"`+huge+`\udfff"`)
		files["jsonl "+n+" array.jsonl"] = jsonFile(n, `["`+huge+`"]`)
		files["jsonl "+n+" object.jsonl"] = jsonFile(n, `{"`+huge+`":1}`)
	}
	files["jsonl string line.jsonl"] = []byte(`"` + huge + `"`)
	files["jsonl number line.jsonl"] = []byte(digits)
	line := jsonFile("op", `"upsert"`)
	files["jsonl trailing text.jsonl"] = append(line[:len(line)-1:len(line)-1], huge...)
	files["jsonl bad syntax.jsonl"] = []byte(`{"` + huge + `" "x"}`)

	// Parquet: a column name, or a value of a string column.
	type pq = pqColumn
	base := func() []pqColumn {
		return []pqColumn{
			{"transaction_id", parquet.String(), pqStrs("T1")},
			{"upi_id", parquet.String(), pqStrs("u@b")},
			{"merchant_id", parquet.String(), pqStrs("M1")},
			{"transaction_amount", parquet.String(), pqStrs("500")},
			{"transaction_time", parquet.String(), pqStrs("2024-12-21 10:00:00")},
			{"transaction_status", parquet.String(), pqStrs("initiated")},
			{"op", parquet.String(), pqStrs("upsert")},
		}
	}
	for i, n := range names {
		cols := base()
		cols[i].name = huge
		files["parquet column "+n+".parquet"] = writeParquet(t, cols, 0)
		cols[i] = pq{n, parquet.Leaf(parquet.BooleanType), []parquet.Value{parquet.BooleanValue(true)}}
		cols = append(cols, pq{huge, parquet.Leaf(parquet.BooleanType), []parquet.Value{parquet.BooleanValue(true)}})
		files["parquet wrong type "+n+".parquet"] = writeParquet(t, cols, 0)
		for j, v := range []string{huge, digits, "\x01" + huge} {
			cols := base()
			cols[i].values = pqStrs(v)
			files[fmt.Sprintf("parquet %s %d.parquet", n, j)] = writeParquet(t, cols, 0)
		}
	}
	return files
}

// TestRefusalMessagesAreShort: a message quotes at most the first 80 or so
// bytes of any value the file holds, so a 1 MB value makes a short, single
// line message.
func TestRefusalMessagesAreShort(t *testing.T) {
	for name, data := range hugeFiles(t) {
		t.Run(name, func(t *testing.T) {
			file := "f" + filepath.Ext(name)
			rows, err := cdc.Parse(data, file, formatOf(t, file), cdc.ParseOptions{})
			if err == nil {
				t.Fatalf("accepted %d rows", len(rows))
			}
			var pe *cdc.ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *cdc.ParseError", err)
			}
			msg := err.Error()
			if len(msg) > maxMessage || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("message of %d bytes (at most %d, one line): %.600q", len(msg), maxMessage, msg)
			}
		})
	}
	t.Run("the cut is marked with the length", func(t *testing.T) {
		data := "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n" +
			"T1,u@b,M1,500," + strings.Repeat("2", 1<<20) + ",initiated\n"
		_, err := cdc.Parse([]byte(data), "b.csv", cdc.FormatCSV, cdc.ParseOptions{})
		checkParseError(t, err, cdc.ErrBadTime, `b.csv: line 2: transaction_time: "`+strings.Repeat("2", 80)+
			`"… (1048576 bytes) is not a timestamp (want 2006-01-02 15:04:05, 2006-01-02T15:04:05 or RFC 3339 with a zone)`)
	})
	t.Run("cut on a character boundary", func(t *testing.T) {
		_, err := cdc.ParseAmount("₹" + strings.Repeat("₹", 100))
		want := `"` + strings.Repeat("₹", 26) + `"… (303 bytes) is not a plain decimal number (only digits and one '.'; no sign, exponent, NaN or Inf)`
		if err == nil || err.Error() != want {
			t.Errorf("error\n got: %v\nwant: %s", err, want)
		}
	})
}

// TestBadInputIsParseError: every refusal of a file, from Parse, ParseFile
// or IngestFile, is a *cdc.ParseError (the file's fault: the daemon moves
// the file to rejected/), and leaves the store as it was.
func TestBadInputIsParseError(t *testing.T) {
	type file struct {
		name string
		data []byte
	}
	var files []file
	for _, tc := range badFiles() {
		files = append(files, file{tc.name, []byte(tc.content)})
	}
	for _, tc := range badParquetFiles(t) {
		files = append(files, file{"b.parquet", writeParquet(t, tc.cols, 0)})
	}
	files = append(files, file{"t.parquet", truncatedParquet(t)})
	for name, data := range hugeFiles(t) {
		files = append(files, file{"h" + filepath.Ext(name), data})
	}
	files = append(files,
		file{"noext", []byte("x")}, file{".csv", []byte("x")}, file{"b.CSV.gz", []byte("x")},
		file{"zero.parquet", nil}, file{"zero.json", nil},
		file{"s.jsonl", []byte(`{"transaction_id":"\ud800"}`)},
		file{"semi.csv", []byte("transaction_id;upi_id\n")},
		file{"dels.csv", []byte("transaction_id,transaction_time,op\nT1,2024-12-21 10:00:00,upsert\n")},
	)

	e := newEnv(t)
	e.ingest("good.csv", header+"T0,u@b,M0,1,2024-12-21 09:00:00,initiated,\n")
	before := e.changes(1)
	for i, f := range files {
		// A fresh directory each time: names repeat.
		dir := filepath.Join(e.dir, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if format, err := cdc.FormatFromName(f.name); err == nil {
			_, err := cdc.Parse(f.data, f.name, format, cdc.ParseOptions{})
			checkIsParseError(t, "Parse", path, err)
		}
		_, err := cdc.ParseFile(path, cdc.ParseOptions{})
		checkIsParseError(t, "ParseFile", path, err)
		_, err = e.m.IngestFile(t.Context(), path)
		checkIsParseError(t, "IngestFile", path, err)
		if err != nil && !strings.HasPrefix(err.Error(), "ingest "+f.name+": ") {
			t.Errorf("IngestFile(%s): message %.200q does not start with ingest and the file name", path, err)
		}
	}
	if v := e.latest(); v != 1 {
		t.Errorf("latest version %d after refused files, want 1", v)
	}
	equal(t, "version 1 unchanged", e.changes(1), before)
	if files, _ := e.db.Files(); len(files) != 1 {
		t.Errorf("ledger has %d files, want 1", len(files))
	}
}

func checkIsParseError(t *testing.T, what, path string, err error) {
	t.Helper()
	var pe *cdc.ParseError
	switch {
	case err == nil:
		t.Errorf("%s(%s) accepted a bad file", what, path)
	case !errors.As(err, &pe):
		t.Errorf("%s(%s) = %.200q (%T), not a *cdc.ParseError", what, path, err, err)
	}
}

// TestNotTheFilesFault: errors that are not the file's fault (a read error,
// the store, a cancelled context) are not *cdc.ParseError, so the daemon
// retries the file instead of rejecting it.
func TestNotTheFilesFault(t *testing.T) {
	notParseError := func(t *testing.T, err error, is error) {
		t.Helper()
		var pe *cdc.ParseError
		if err == nil || errors.As(err, &pe) || !errors.Is(err, is) {
			t.Errorf("error %v (%T): want a non-ParseError matching %v", err, err, is)
		}
	}
	t.Run("missing file", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.m.IngestFile(t.Context(), filepath.Join(e.dir, "gone.csv"))
		notParseError(t, err, fs.ErrNotExist)
		_, err = cdc.ParseFile(filepath.Join(e.dir, "gone.csv"), cdc.ParseOptions{})
		notParseError(t, err, fs.ErrNotExist)
	})
	t.Run("closed store", func(t *testing.T) {
		dir := t.TempDir()
		db, err := store.Open(filepath.Join(dir, "data"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "b.csv")
		if err := os.WriteFile(path, []byte(header+"T1,u@b,M1,1,2024-12-21 09:00:00,initiated,\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(t.Context(), path)
		var pe *cdc.ParseError
		if err == nil || errors.As(err, &pe) {
			t.Errorf("error %v (%T): want a non-ParseError", err, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		e := newEnv(t)
		var b strings.Builder
		b.WriteString(header)
		for i := range 10_000 {
			fmt.Fprintf(&b, "T%05d,u@b,M1,1,2024-12-21 09:00:00,initiated,\n", i)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := e.m.IngestFile(ctx, e.file("big.csv", b.String()))
		notParseError(t, err, context.Canceled)
		if v := e.latest(); v != 0 {
			t.Errorf("latest version %d, want 0", v)
		}
	})
}
