package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

const (
	envCompactDir  = "UPICDC_TEST_COMPACT_DIR"
	envCompactStep = "UPICDC_TEST_COMPACT_STEP"
)

// TestCompactChild is not a test of its own: TestCompactKilled runs the
// test binary with it as a child that SIGKILLs itself at a step.
func TestCompactChild(t *testing.T) {
	dir := os.Getenv(envCompactDir)
	if dir == "" {
		t.Skip("helper process for TestCompactKilled")
	}
	step := store.CompactStep(os.Getenv(envCompactStep))
	_, err := store.Compact(dir, store.CompactOptions{Hook: func(s store.CompactStep) error {
		if s == step {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}})
	t.Fatalf("child was not killed (err %v)", err)
}

// bigThenVacuumed builds a store whose change feed was mostly vacuumed:
// a file with many free pages.
func bigThenVacuumed(t *testing.T, dir string) string {
	t.Helper()
	return vacuumedStore(t, dir, 30)
}

// vacuumedStore is bigThenVacuumed with versions versions.
func vacuumedStore(t *testing.T, dir string, versions int) string {
	t.Helper()
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	for v := range versions {
		rows := make([]store.Row, 0, 200)
		for i := range 200 {
			rows = append(rows, row(fmt.Sprintf("K%04d", i), "o", store.Paise(v*1000+i), v%60, "new"))
		}
		merge(t, db, fmt.Sprint("b", v), rows...)
	}
	if _, err := db.Vacuum(context.Background(), store.VacuumOptions{Policy: store.Retention{Versions: 1}}); err != nil {
		t.Fatal(err)
	}
	want := scanText(t, db, -1)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestCompactKilled kills a compaction at each of its steps: the store
// always opens, passes bbolt's check and reads the same; a compaction
// after the kill finishes and shrinks the file.
func TestCompactKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for _, step := range []store.CompactStep{store.CompactCopied, store.CompactSynced, store.CompactChecked, store.CompactRenamed} {
		t.Run(string(step), func(t *testing.T) {
			dir := t.TempDir()
			want := bigThenVacuumed(t, dir)
			cmd := exec.Command(os.Args[0], "-test.run=^TestCompactChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCompactDir+"="+dir, envCompactStep+"="+string(step))
			out, err := cmd.CombinedOutput()
			if !storetest.KilledBySIGKILL(cmd.ProcessState) {
				t.Fatalf("child not killed by SIGKILL: %v\n%s", err, out)
			}
			check := func() {
				t.Helper()
				db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
				if err != nil {
					t.Fatalf("open after a kill at %s: %v", step, err)
				}
				defer db.Close()
				if err := db.Check(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := scanText(t, db, -1); got != want {
					t.Fatalf("after a kill at %s the table reads differently", step)
				}
			}
			check()
			before, _ := os.Stat(filepath.Join(dir, store.FileName))
			res, err := store.Compact(dir, store.CompactOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if step != store.CompactRenamed && res.After >= before.Size() {
				t.Errorf("compaction did not shrink the file: %d → %d", before.Size(), res.After)
			}
			check()
		})
	}
}

func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	want := bigThenVacuumed(t, dir)
	db := open(t, dir)
	var buf bytes.Buffer
	announced := int64(-1)
	n, err := db.Backup(&buf, func(size int64) { announced = size })
	if err != nil || n != int64(buf.Len()) || announced != n {
		t.Fatalf("backup: %d bytes (announced %d), %v", n, announced, err)
	}
	restored := t.TempDir()
	if _, err := store.Restore(restored, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Restore(restored, bytes.NewReader(buf.Bytes())); !errors.Is(err, store.ErrStoreExists) {
		t.Errorf("restore over a store: %v", err)
	}
	if _, err := store.Restore(t.TempDir(), bytes.NewReader(buf.Bytes()[:buf.Len()/2])); !errors.Is(err, store.ErrDamaged) {
		t.Errorf("restore of half a backup: %v", err)
	}
	rdb := open(t, restored)
	if got := scanText(t, rdb, -1); got != want {
		t.Error("the restored store reads differently")
	}
	if err := rdb.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Space reports the file's size and the free pages a vacuum left, which a
// compaction gives back.
func TestSpace(t *testing.T) {
	dir := t.TempDir()
	bigThenVacuumed(t, dir)
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := db.Space()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if sp.File != st.Size() || sp.Free <= 0 || sp.Free >= sp.File {
		t.Fatalf("space %+v; file is %d bytes", sp, st.Size())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Compact(dir, store.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	db = open(t, dir)
	after, err := db.Space()
	if err != nil {
		t.Fatal(err)
	}
	if after.File >= sp.File || after.Free >= sp.Free {
		t.Errorf("after compaction %+v, before %+v", after, sp)
	}
}
