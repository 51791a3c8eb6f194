package cdc

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestKeepCopiesOutOfTheRecord checks that a kept row's text no longer
// points into the record it was parsed from: a big file's rows would
// otherwise keep every line alive through the MERGE.
func TestKeepCopiesOutOfTheRecord(t *testing.T) {
	line := "T0001,user1@bank,M7"
	r := Row{TransactionID: line[:5], UPIID: line[6:16], MerchantID: line[17:]}
	keep(&r)
	lo := uintptr(unsafe.Pointer(unsafe.StringData(line)))
	for _, s := range []string{r.TransactionID, r.UPIID, r.MerchantID} {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); p >= lo && p < lo+uintptr(len(line)) {
			t.Errorf("%q still points into the record", s)
		}
	}
	if r != (Row{TransactionID: "T0001", UPIID: "user1@bank", MerchantID: "M7"}) {
		t.Errorf("kept row = %+v", r)
	}
}

// TestParseCSVSharesMerchantIDs checks that parsed CSV rows have their text
// kept (see keep): repeated merchant ids share one copy, where rows holding
// their records would each point into their own line.
func TestParseCSVSharesMerchantIDs(t *testing.T) {
	var b strings.Builder
	b.WriteString("transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status\n")
	for i := range 50 {
		fmt.Fprintf(&b, "T%04d,user%d@bank,M%d,10.50,2024-12-21 10:%02d:00,initiated\n", i, i, i%3, i)
	}
	data := []byte(b.String())
	rows, err := Parse(data, "b.csv", FormatCSV, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 50 {
		t.Fatalf("got %d rows, want 50", len(rows))
	}
	merchants := map[string]*byte{}
	for i, r := range rows {
		if want := fmt.Sprintf("T%04d", i); r.Row.TransactionID != want || r.Row.MerchantID != fmt.Sprintf("M%d", i%3) {
			t.Fatalf("row %d = %+v", i, r.Row)
		}
		p := unsafe.StringData(r.Row.MerchantID)
		if q, ok := merchants[r.Row.MerchantID]; ok && q != p {
			t.Fatalf("row %d: merchant %q is a second copy", i, r.Row.MerchantID)
		}
		merchants[r.Row.MerchantID] = p
	}
	if len(merchants) != 3 {
		t.Fatalf("got %d merchants, want 3", len(merchants))
	}
}

// TestLinesHint checks that a line-based file reserves room for its rows
// without letting a file of blank lines reserve more than its size allows.
func TestLinesHint(t *testing.T) {
	for _, c := range []struct {
		data string
		want int
	}{
		{"", 1},
		{"h\n" + strings.Repeat("T1,u@b,M1,1.00,2024-12-21 10:00:00,failed\n", 10), 12},
		{strings.Repeat("\n", 1200), 101},
	} {
		if got := linesHint([]byte(c.data)); got != c.want {
			t.Errorf("linesHint(%d bytes) = %d, want %d", len(c.data), got, c.want)
		}
	}
}
