package cdc

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// releaseBatch is a batch with inserts, several steps of one transaction
// and a delete, in no particular order.
func releaseBatch(name string) *Batch {
	var rows []Input
	for i := range 500 {
		id := fmt.Sprintf("T%05d", (i*7919)%500)
		rows = append(rows, Input{Pos: len(rows) + 2, Op: OpUpsert, Row: Row{TransactionID: id, UPIID: "u@bank",
			MerchantID: fmt.Sprintf("M%03d", i%37), Amount: store.Paise(100 + i), Time: int64(1000 + i), Status: StatusInitiated}})
	}
	rows = append(rows,
		Input{Pos: len(rows) + 2, Op: OpUpsert, Row: Row{TransactionID: "T00007", UPIID: "u@bank", MerchantID: "M001", Amount: 5, Time: 9000, Status: StatusCompleted}},
		Input{Pos: len(rows) + 3, Op: OpUpsert, Row: Row{TransactionID: "T00007", UPIID: "u@bank", MerchantID: "M001", Amount: 5, Time: 10, Status: StatusFailed}},
		Input{Pos: len(rows) + 4, Op: OpDelete, Row: Row{TransactionID: "T00011", Time: 9500}},
	)
	return &Batch{Name: name, Format: FormatCSV, Size: 1, SHA256: [32]byte{1}, Rows: rows}
}

func scanAll(t *testing.T, db *store.DB) []Row {
	t.Helper()
	var out []Row
	if _, err := ScanRows(context.Background(), db, -1, func(r Row) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A file the Merger read itself has its parsed rows released as they are
// applied (the batch lets go of them, and each chunk of them in apply order
// is dropped once applied) so that the commit does not hold them; a batch
// from the caller (Merge) is left as it was. Both MERGE the same.
func TestMergeReleasesOwnRows(t *testing.T) {
	ctx := context.Background()
	own := storetest.Open(t, t.TempDir(), RawDef())
	theirs := storetest.Open(t, t.TempDir(), RawDef())

	b := releaseBatch("a.csv")
	rows := len(b.Rows)
	res, err := NewMerger(own, ParseOptions{}, nil).merge(ctx, b, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rows != nil {
		t.Errorf("own batch still holds %d rows after the MERGE", len(b.Rows))
	}

	b2 := releaseBatch("a.csv")
	want := slices.Clone(b2.Rows)
	res2, err := NewMerger(theirs, ParseOptions{}, nil).Merge(ctx, b2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b2.Rows, want) {
		t.Error("Merge changed the caller's batch")
	}
	if got, want := res.Commit.OperationParameters["sourceRows"], fmt.Sprint(rows); got != want || res2.Commit.OperationParameters["sourceRows"] != want {
		t.Errorf("sourceRows: own %q, caller's %q, want %q", got, res2.Commit.OperationParameters["sourceRows"], want)
	}
	if res.Rows != rows || res.Stats != res2.Stats || res.Stats.Updated != 2 || res.Stats.Deleted != 1 {
		t.Errorf("stats: own %d rows %+v, caller's %+v", res.Rows, res.Stats, res2.Stats)
	}
	if got, want := scanAll(t, own), scanAll(t, theirs); !slices.Equal(got, want) || len(got) != 499 {
		t.Errorf("own MERGE left %d rows, the caller's %d (want 499, equal)", len(got), len(want))
	}
}

// inApplyOrder copies the rows in apply order into chunks of applyChunk;
// applyRows with release drops each chunk once applied, without release
// leaves them.
func TestApplyRowsDropsAppliedChunks(t *testing.T) {
	ctx := context.Background()
	var rows []Input
	for i := range 2*applyChunk + 5 {
		id := fmt.Sprintf("T%06d", (i*7919)%(2*applyChunk+5))
		rows = append(rows, Input{Pos: i + 2, Op: OpUpsert, Row: Row{TransactionID: id, UPIID: "u@bank",
			MerchantID: "M001", Amount: store.Paise(100 + i), Time: int64(1000 + i), Status: StatusInitiated}})
	}
	order := applyOrder(rows)
	chunks := inApplyOrder(rows, order)
	if len(chunks) != 3 || len(chunks[0]) != applyChunk || len(chunks[2]) != 5 {
		t.Fatalf("chunk sizes: %d chunks", len(chunks))
	}
	var flat []Input
	for _, c := range chunks {
		flat = append(flat, c...)
	}
	for i, idx := range order {
		if flat[i] != rows[idx] {
			t.Fatalf("position %d of the chunks holds %+v, want row %d %+v", i, flat[i], idx, rows[idx])
		}
	}
	for _, release := range []bool{false, true} {
		db := storetest.Open(t, t.TempDir(), RawDef())
		cs := inApplyOrder(rows, order)
		if _, err := Merge(ctx, db, MergeMeta{Source: store.Source{Name: "c.csv"}, SHA256: [32]byte{byte(len(cs))}},
			func(tx *MergeTx) error { return applyRows(tx, cs, release) }); err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			if release && c != nil || !release && len(c) != len(chunks[i]) {
				t.Errorf("release %v: chunk %d holds %d rows after the MERGE", release, i, len(c))
			}
		}
		if got := scanAll(t, db); len(got) != len(rows) {
			t.Errorf("release %v: %d rows in the table, want %d", release, len(got), len(rows))
		}
	}
}
