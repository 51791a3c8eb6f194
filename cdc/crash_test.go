package cdc_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

const (
	envCrashDir  = "UPICDC_TEST_MERGE_DIR"
	envCrashFile = "UPICDC_TEST_MERGE_FILE"
)

// TestMergeChild is the child of TestMergeKilled: it ingests one file and is
// killed by its parent somewhere along the way.
func TestMergeChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process for TestMergeKilled")
	}
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{cdc.RawDef()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), os.Getenv(envCrashFile)); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// TestMergeKilled SIGKILLs a MERGE of a 30k-row file at assorted moments.
// Whatever the moment, the store holds all of the file or none of it, and
// ingesting the file again afterwards never applies it twice.
func TestMergeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	const n = 30_000
	var b strings.Builder
	b.WriteString(header)
	for i := range n {
		fmt.Fprintf(&b, "TX%07d,u%d@bank,M%d,%d.%02d,2024-12-21 10:%02d:00,completed,\n", i, i, i%97, i%5000, i%100, i%60)
	}
	src := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(src, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	committed := 0
	for _, delay := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second} {
		t.Run(delay.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMergeChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashFile+"="+src)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay) // any outcome is valid; the delay only varies where the kill lands
			_ = cmd.Process.Kill()
			_ = cmd.Wait()

			db, err := store.Open(dir, store.Options{Tables: []store.TableDef{cdc.RawDef()}})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Check(context.Background()); err != nil {
				t.Fatalf("bbolt check after kill: %v", err)
			}
			v, err := db.LatestVersion(cdc.RawTable)
			if err != nil {
				t.Fatal(err)
			}
			rows := 0
			if _, err := cdc.ScanRows(context.Background(), db, -1, func(cdc.Row) error { rows++; return nil }); err != nil {
				t.Fatal(err)
			}
			files, err := db.Files()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case v == 0 && rows == 0 && len(files) == 0:
			case v == 1 && rows == n && len(files) == 1:
				committed++
			default:
				t.Fatalf("half-applied file: version %d, %d rows, %d ledger entries", v, rows, len(files))
			}
			res, err := cdc.NewMerger(db, cdc.ParseOptions{}, nil).IngestFile(context.Background(), src)
			if err != nil {
				t.Fatal(err)
			}
			if res.Duplicate != (v == 1) {
				t.Errorf("re-ingest after kill at version %d: duplicate=%v", v, res.Duplicate)
			}
			if v, _ := db.LatestVersion(cdc.RawTable); v != 1 {
				t.Errorf("after re-ingest: version %d, want 1", v)
			}
		})
	}
	t.Logf("%d of the kills landed after the commit", committed)
}
