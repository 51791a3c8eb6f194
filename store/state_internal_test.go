package store

import (
	"context"
	"fmt"
	"testing"
)

// TestPutStateCopiesValue: a stream may reuse its buffer between PutState
// calls (the processor does); each key must keep the value it was given,
// although bbolt keeps a Put's value slice until the transaction commits.
func TestPutStateCopiesValue(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Tables: []TableDef{{Name: "src", Schema: Schema{KeyColumns: 1, Columns: []Column{{Name: "k", Type: String}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	keys := []string{"a", "b", "c"}
	if _, _, err := db.Process(ctx, "s", "src", func(p *ProcessTx) error {
		var buf []byte
		for i, k := range keys {
			buf = fmt.Appendf(buf[:0], "value-%d", i)
			if err := p.PutState([]byte(k), buf); err != nil {
				return err
			}
		}
		p.Rebuilt("TEST", nil, nil)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Process(ctx, "s", "src", func(p *ProcessTx) error {
		for i, k := range keys {
			if got, want := string(p.State([]byte(k))), fmt.Sprintf("value-%d", i); got != want {
				t.Errorf("state %s = %q, want %q", k, got, want)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
