package delta

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/upicdc/upicdc/store"
)

// TestMultiPartCheckpoint splits a checkpoint we wrote into the protocol's
// multi-part form (NNN.checkpoint.PPPPPPPPPP.TTTTTTTTTT.parquet) and checks
// the replay reads all parts; an incomplete set is not a checkpoint.
func TestMultiPartCheckpoint(t *testing.T) {
	dir := t.TempDir()
	schema := store.Schema{KeyColumns: 1, Columns: []store.Column{
		{Name: "merchant_id", Type: store.String},
		{Name: "net_sales", Type: store.Money},
	}}
	e, err := newExporter(nil, dir, Options{TargetFileRows: 2, CheckpointInterval: 10}, store.TableInfo{Name: "t", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	e.dir = dir
	// A table of 25 files written straight from the exporter's state.
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.proto = Protocol{MinReaderVersion: 1, MinWriterVersion: 4}
	e.meta = Metadata{ID: newUUID(), Format: Format{Provider: "parquet"}, SchemaString: e.layout.schemaString, PartitionColumns: []string{},
		Configuration: map[string]string{"delta.enableChangeDataFeed": "true"}}
	var want []string
	for i := 0; i < 25; i++ {
		rows := []store.Row{{store.S(fmt.Sprintf("M%03d", i)), store.M(store.Paise(i * 100))}}
		name := fmt.Sprintf("part-%05d.parquet", i)
		size, err := e.writeData(filepath.Join(dir, name), rows)
		if err != nil {
			t.Fatal(err)
		}
		e.files[name] = &liveFile{rows: 1, add: AddFile{Path: name, PartitionValues: map[string]*string{}, Size: size, Stats: e.layout.stats(rows)}}
		want = append(want, fmt.Sprintf("M%03d|%d.00", i, i))
	}
	if err := e.checkpoint(10, 1); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "_delta_log")
	single := filepath.Join(logDir, "00000000000000000010.checkpoint.parquet")
	var rows []cpRow
	if err := readParquet(single, func(pf *parquet.File) error {
		rows = make([]cpRow, pf.NumRows())
		n, err := parquet.NewGenericReader[cpRow](pf).Read(rows)
		rows = rows[:n]
		if n == len(rows) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const parts = 3
	for p := 0; p < parts; p++ {
		lo, hi := p*len(rows)/parts, (p+1)*len(rows)/parts
		name := fmt.Sprintf("00000000000000000010.checkpoint.%010d.%010d.parquet", p+1, parts)
		if _, err := writeParquetFile(filepath.Join(logDir, name), rows[lo:hi]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(single); err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tbl.Snapshot(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.Rows(context.Background(), func(r Row) error {
		got = append(got, FormatValue(r[0])+"|"+FormatValue(r[1]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if s.Checkpoint != 10 || !slices.Equal(got, want) {
		t.Errorf("multi-part checkpoint: replay from %d, rows %v", s.Checkpoint, got)
	}
	// Without part 2 the checkpoint is incomplete, and there are no commits.
	if err := os.Remove(filepath.Join(logDir, fmt.Sprintf("00000000000000000010.checkpoint.%010d.%010d.parquet", 2, parts))); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("a table whose only checkpoint is incomplete opened")
	}
}
