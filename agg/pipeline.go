package agg

import (
	"context"
	"errors"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// A full recompute reads millions of raw rows and folds each into a map:
// decoding the store and folding take about as long as each other. With
// two cores they can overlap: pipelined reads in a goroutine of its own
// (the only one that touches the store) and hands the rows over in
// batches.

// rawItem is one raw row handed over by pipelined.
type rawItem struct {
	typ store.ChangeType
	row cdc.Row
}

const pipelineBatch = 4096

var errPipelineDone = errors.New("consumer stopped")

// pipelined calls fn with every row read calls its callback with, in
// order. read runs in another goroutine; fn runs in this one. A read error
// or fn's error ends both, and is returned.
func pipelined(ctx context.Context, read func(emit func(store.ChangeType, store.Row) error) error, fn func(*rawItem) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := make(chan []rawItem, 4)
	free := make(chan []rawItem, 6)
	for range cap(free) {
		free <- make([]rawItem, 0, pipelineBatch)
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		batch := <-free
		err := read(func(t store.ChangeType, r store.Row) error {
			batch = append(batch, rawItem{t, cdc.RowOf(r)})
			if len(batch) < pipelineBatch {
				return nil
			}
			select {
			case full <- batch:
			case <-ctx.Done():
				return errPipelineDone
			}
			select {
			case batch = <-free:
			case <-ctx.Done():
				return errPipelineDone
			}
			batch = batch[:0]
			return nil
		})
		if err == nil && len(batch) > 0 {
			select {
			case full <- batch:
			case <-ctx.Done():
			}
		}
		readErr <- err
	}()
	var fnErr error
	for batch := range full {
		if fnErr == nil {
			for i := range batch {
				if fnErr = fn(&batch[i]); fnErr != nil {
					cancel() // the reader stops at its next hand-over
					break
				}
			}
		}
		clear(batch) // drop the strings
		free <- batch[:0]
	}
	if err := <-readErr; err != nil && !errors.Is(err, errPipelineDone) {
		return err
	}
	return fnErr
}
