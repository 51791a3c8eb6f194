package cdc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/upicdc/upicdc/cdc"
)

// benchBatch returns n rows in the given format ("csv" or "jsonl"); with
// escapes, every JSON id is spelled with a \u escape, which makes the
// parser look for lone surrogates.
func benchBatch(format string, n int, escapes bool) []byte {
	var b strings.Builder
	if format == "csv" {
		b.WriteString("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n")
	}
	for i := range n {
		switch {
		case format == "csv":
			fmt.Fprintf(&b, "T%08d,upi%d@bank,M%04d,%d.%02d,2024-12-21 10:%02d:%02d,completed\n", i, i%1000, i%500, i%100000, i%100, i/60%60, i%60)
		case escapes:
			fmt.Fprintf(&b, `{"transaction_id":"T\u00e9%08d","upi_id":"upi%d@bank","merchant_id":"M%04d","transaction_amount":%d.%02d,"transaction_time":"2024-12-21 10:%02d:%02d","transaction_status":"completed"}`+"\n", i, i%1000, i%500, i%100000, i%100, i/60%60, i%60)
		default:
			fmt.Fprintf(&b, `{"transaction_id":"T%08d","upi_id":"upi%d@bank","merchant_id":"M%04d","transaction_amount":%d.%02d,"transaction_time":"2024-12-21 10:%02d:%02d","transaction_status":"completed"}`+"\n", i, i%1000, i%500, i%100000, i%100, i/60%60, i%60)
		}
	}
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name    string
		format  cdc.Format
		escapes bool
	}{
		{"csv", cdc.FormatCSV, false},
		{"jsonl", cdc.FormatJSONL, false},
		{"jsonl with escapes", cdc.FormatJSONL, true},
	} {
		data := benchBatch(bc.format.String(), 10_000, bc.escapes)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := cdc.Parse(data, "b."+bc.format.String(), bc.format, cdc.ParseOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
