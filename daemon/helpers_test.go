package daemon_test

import (
	"context"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// ingestWith MERGEs one file into db as `upicdc ingest` does.
func ingestWith(db *store.DB, path string) (cdc.Result, bool, error) {
	res, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), path)
	return res, res.Duplicate, err
}
