package agg

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/upicdc/upicdc/store"
)

// TestPipelined: every row arrives once, in order, across batch hand-overs;
// an error on either side ends both sides and is returned.
func TestPipelined(t *testing.T) {
	const n = 3*pipelineBatch + 17
	read := func(failAt int) func(emit func(store.ChangeType, store.Row) error) error {
		return func(emit func(store.ChangeType, store.Row) error) error {
			row := make(store.Row, 6)
			for i := range n {
				if i == failAt {
					return errors.New("read failed")
				}
				row[0] = store.Value{Str: fmt.Sprint(i)}
				row[5] = store.Value{Str: "completed"}
				if err := emit(store.Insert, row); err != nil {
					return err
				}
			}
			return nil
		}
	}
	next := 0
	err := pipelined(context.Background(), read(-1), func(it *rawItem) error {
		if want := fmt.Sprint(next); it.row.TransactionID != want {
			return fmt.Errorf("row %q, want %q", it.row.TransactionID, want)
		}
		next++
		return nil
	})
	if err != nil || next != n {
		t.Fatalf("got %d rows, err %v; want %d", next, err, n)
	}

	if err := pipelined(context.Background(), read(pipelineBatch+5), func(*rawItem) error { return nil }); err == nil || err.Error() != "read failed" {
		t.Errorf("a read error: got %v", err)
	}
	stop := errors.New("stop")
	seen := 0
	err = pipelined(context.Background(), read(-1), func(*rawItem) error {
		if seen++; seen == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 10 {
		t.Errorf("the consumer's error: got %v after %d rows", err, seen)
	}
}
