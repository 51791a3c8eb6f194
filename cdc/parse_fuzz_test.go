package cdc_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// checkParsed checks what every Parse result must satisfy, whatever the
// input: an error is a *ParseError with no rows, and every row is valid.
func checkParsed(t *testing.T, rows []cdc.Input, err error) {
	t.Helper()
	if err != nil {
		var pe *cdc.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *cdc.ParseError", err, err)
		}
		if rows != nil {
			t.Fatalf("%d rows returned with error %v", len(rows), err)
		}
		if pe.Err == nil || pe.Error() == "" {
			t.Fatalf("ParseError without a cause: %#v", pe)
		}
		if msg := pe.Error(); len(msg) > maxMessage || strings.ContainsAny(msg, "\n\r") {
			t.Fatalf("message of %d bytes (at most %d, one line): %q", len(msg), maxMessage, msg)
		}
		return
	}
	prev := 0
	for i, in := range rows {
		r := in.Row
		if in.Pos <= prev {
			t.Fatalf("row %d: Pos %d after %d", i, in.Pos, prev)
		}
		prev = in.Pos
		if in.Op != cdc.OpUpsert && in.Op != cdc.OpDelete {
			t.Fatalf("row %d: op %v", i, in.Op)
		}
		if r.TransactionID == "" {
			t.Fatalf("row %d: empty transaction_id", i)
		}
		for _, id := range []string{r.TransactionID, r.UPIID, r.MerchantID} {
			if len(id) > cdc.MaxIDLen || !utf8.ValidString(id) || strings.TrimSpace(id) != id ||
				strings.ContainsFunc(id, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
				t.Fatalf("row %d: bad id %q", i, id)
			}
		}
		if r.Amount < 0 || r.Amount > store.MaxPaise {
			t.Fatalf("row %d: amount %d out of range", i, r.Amount)
		}
		if y := r.TimeUTC().Year(); y < 1 || y > 9999 {
			t.Fatalf("row %d: time %d out of range", i, r.Time)
		}
		if in.Op == cdc.OpUpsert && (r.UPIID == "" || r.MerchantID == "" || r.Status == cdc.StatusInvalid) {
			t.Fatalf("row %d: incomplete upsert %+v", i, r)
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	const header = "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status"
	for _, s := range []string{
		"",
		header,
		header + "\nT001,upi1@bank,M001,500.0,2024-12-21 10:00:00,initiated\n",
		header + ",op\r\nT001,,,,2024-12-21T10:00:00Z,,delete\r\n",
		"\ufeffop,transaction_status,transaction_time,transaction_amount,merchant_id,upi_id,transaction_id\n" +
			"upsert,completed,2024-12-21 10:00:00.5,\"1\",\"M,1\",\"u\n1\",T1\n",
		header + "\nT001,upi1@bank,M001,12.345,2024-12-21 10:00:00,initiated\n",
		header + "\n\"T001,upi1@bank\n",
		header + "\nT\xff,u,m,1,2024-12-21 10:00:00,failed\n",
		"Transaction_ID ,transaction_time,OP\nT1,2024-12-21 10:00:00,delete\nT2,2024-12-21 10:00:00,\n",
		"transaction_id;upi_id;merchant_id\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := cdc.Parse(data, "f.csv", cdc.FormatCSV, cdc.ParseOptions{})
		checkParsed(t, rows, err)
	})
}

func FuzzParseJSONL(f *testing.F) {
	for _, s := range []string{
		"",
		"\n\n",
		`{"transaction_id":"T001","upi_id":"upi1@bank","merchant_id":"M001","transaction_amount":500.0,"transaction_time":"2024-12-21 10:00:00","transaction_status":"initiated"}`,
		`{"op":"delete","transaction_id":"T1","transaction_time":"2024-12-21T10:00:00+05:30","upi_id":null}` + "\r\n",
		`{"transaction_id":"T1","transaction_id":"T2"}`,
		`{"transaction_amount":1e400}`,
		`{"transaction_id":"\ud800\u0000"} x`,
		"[1]\nnull\n{\"a\":{\"b\":[]}}",
		"{\"transaction_id\":\"T\xff\"}",
		`{"transaction_id":"T\ud83d\ude00\\ud800","upi_id":"\uD800x","merchant_id":"\"\\\u00e9"}`,
		`{"Transaction_ID ":"T1","OP":"delete","transaction_time":"2024-12-21 10:00:00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := cdc.Parse(data, "f.jsonl", cdc.FormatJSONL, cdc.ParseOptions{})
		checkParsed(t, rows, err)
		// encoding/json writes U+FFFD for a lone surrogate escape; a value
		// may hold U+FFFD only if the file spelled one.
		spelled := bytes.Contains(data, []byte("\ufffd")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
		for _, in := range rows {
			r := in.Row
			if !spelled && strings.ContainsRune(r.TransactionID+r.UPIID+r.MerchantID, utf8.RuneError) {
				t.Fatalf("row %+v has U+FFFD that the file does not hold", r)
			}
		}
	})
}

func FuzzParseParquet(f *testing.F) {
	tm := parquet.Int64Value(time.Date(2024, 12, 21, 10, 0, 0, 0, time.UTC).UnixMicro())
	f.Add(writeParquet(f, seedParquetColumns(
		pqColumn{"transaction_amount", parquet.Decimal(2, 18, parquet.Int64Type), []parquet.Value{parquet.Int64Value(1), parquet.Int64Value(2), parquet.Int64Value(3)}},
		pqColumn{"transaction_time", parquet.Timestamp(parquet.Microsecond), []parquet.Value{tm, tm, tm}}), 2))
	f.Add(writeParquet(f, seedParquetColumns(
		pqColumn{"transaction_amount", parquet.Decimal(2, 20, parquet.FixedLenByteArrayType(9)), []parquet.Value{
			parquet.FixedLenByteArrayValue(decimalBytes(1, 9)), parquet.FixedLenByteArrayValue(decimalBytes(2, 9)), parquet.FixedLenByteArrayValue(decimalBytes(3, 9))}},
		pqColumn{"transaction_time", parquet.Optional(parquet.String()), []parquet.Value{pqStr("2024-12-21 10:00:00"), parquet.NullValue(), pqStr("x")}}), 0))
	f.Add(writeParquet(f, seedParquetColumns(
		pqColumn{"transaction_amount", parquet.Leaf(parquet.DoubleType), []parquet.Value{parquet.DoubleValue(1), parquet.DoubleValue(2), parquet.DoubleValue(3)}},
		pqColumn{"transaction_time", parquet.Leaf(parquet.Int96Type), []parquet.Value{pqInt96(time.Unix(0, 0), 0), pqInt96(time.Unix(0, 0), 0), pqInt96(time.Unix(0, 0), 1)}}), 0))
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := cdc.Parse(data, "f.parquet", cdc.FormatParquet, cdc.ParseOptions{})
		checkParsed(t, rows, err)
	})
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"500", "500.0", "500.50", "0.5", ".5", "5.", ".", "", "-1", "1e3", "NaN",
		"9999999999999999.99", "10000000000000000", " 7 ", "00000000000000000001.10", "1.2.3", "१२"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := cdc.ParseAmount(s)
		if err != nil {
			if !errors.Is(err, cdc.ErrBadAmount) {
				t.Fatalf("ParseAmount(%q) error %v does not match ErrBadAmount", s, err)
			}
			return
		}
		if p < 0 || p > store.MaxPaise {
			t.Fatalf("ParseAmount(%q) = %d, out of range", s, p)
		}
		for _, text := range []string{p.Decimal(), p.String()} {
			if q, err := cdc.ParseAmount(text); err != nil || q != p {
				t.Fatalf("ParseAmount(%q) = %d, but ParseAmount(%q) = %d, %v", s, p, text, q, err)
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2024-12-21 10:00:00", "2024-12-21T10:00:00.123456", "2024-12-21T10:00:00+05:30",
		"2024-12-21T10:00:00Z", "2024-02-30 00:00:00", "2024-12-21 10:00:00.1234567", "0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999-00:00", "", "2024-12-21"} {
		f.Add(s)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		kolkata = time.FixedZone("IST", 5*3600+1800)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, loc := range []*time.Location{nil, kolkata} {
			us, err := cdc.ParseTime(s, loc)
			if err != nil {
				if !errors.Is(err, cdc.ErrBadTime) {
					t.Fatalf("ParseTime(%q) error %v does not match ErrBadTime", s, err)
				}
				continue
			}
			tm := time.UnixMicro(us).UTC()
			if y := tm.Year(); y < 1 || y > 9999 {
				t.Fatalf("ParseTime(%q) = %d, year %d", s, us, y)
			}
			// Written back as RFC 3339, the time reads the same.
			back := tm.Format(time.RFC3339Nano)
			if again, err := cdc.ParseTime(back, nil); err != nil || again != us {
				t.Fatalf("ParseTime(%q) = %d; ParseTime(%q) = %d, %v", s, us, back, again, err)
			}
			// And the standard library agrees on what it means.
			if std, err := time.Parse(time.RFC3339Nano, back); err != nil || std.UnixMicro() != us {
				t.Fatalf("time.Parse(%q) = %v, %v; want %d", back, std, err, us)
			}
		}
	})
}
