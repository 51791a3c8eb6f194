package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

const (
	envVacuumDir  = "UPICDC_TEST_VACUUM_DIR"
	envVacuumKill = "UPICDC_TEST_VACUUM_KILL"
)

// The consumers of the store vacuumKilled builds: the stream "s" has
// processed items up to version 20, the reader is registered at 15, an
// export (passed in, as the daemon does) holds 25.
const (
	killedVersions = 30
	killedReaderAt = 15
)

var killedExport = []store.Consumer{{Name: "export", Kind: "export", Table: "items", Version: 25}}

// killedVacuum is the vacuum the child runs and the parent reruns.
func killedVacuum(ctx context.Context, db *store.DB, hook func(string) error) ([]store.TableVacuum, error) {
	return db.Vacuum(ctx, store.VacuumOptions{Policy: store.Retention{Versions: 1}, Consumers: killedExport, Hook: hook,
		Baseline: func(b *store.BaselineTx) error {
			return b.Changes(func(c store.Change) error {
				return b.Put([]byte(c.Row[0].Str), []byte(fmt.Sprint(c.Version)))
			})
		}})
}

// TestVacuumChild is not a test of its own: TestVacuumKilled runs the
// test binary with it as a child that is killed during a vacuum.
func TestVacuumChild(t *testing.T) {
	dir := os.Getenv(envVacuumDir)
	if dir == "" {
		t.Skip("helper process for TestVacuumKilled")
	}
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	kill := os.Getenv(envVacuumKill)
	fmt.Println("vacuuming")
	_, err = killedVacuum(context.Background(), db, func(table string) error {
		if kill == "hook:"+table {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	})
	if kill == "timed" {
		// The parent kills it. A sleep, not an empty select: with no
		// timer pending the runtime would call that a deadlock and exit.
		time.Sleep(time.Hour)
	}
	t.Fatalf("child was not killed (err %v)", err)
}

// TestVacuumKilled kills a vacuum inside a table's transaction and at
// varied moments after it started: the store opens and passes bbolt's
// check, no version a consumer (the stream behind, the export behind, a
// registered reader) has not consumed lost its change feed, the table
// reads the same at every version it still keeps, and a rerun completes.
func TestVacuumKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	ctx := context.Background()
	// One store, copied for each kill.
	tmpl := t.TempDir()
	db, err := store.Open(tmpl, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	for v := range killedVersions {
		rows := make([]store.Row, 0, 300)
		for i := range 300 {
			rows = append(rows, row(fmt.Sprintf("K%04d", (v*37+i*7)%2000), "o", store.Paise(v*1000+i), v%60, "new"))
		}
		sortRows(rows)
		merge(t, db, fmt.Sprint("b", v), rows...)
		if v+1 == 20 {
			process(t, db, 20)
		}
	}
	if err := db.SetConsumer("reader", "items", killedReaderAt); err != nil {
		t.Fatal(err)
	}
	// What every consumer still needs, and the table at every version.
	wantChanges, err := changesText(t, db, killedReaderAt)
	if err != nil {
		t.Fatal(err)
	}
	wantAt := map[int64]string{}
	for v := int64(0); v <= killedVersions; v++ {
		wantAt[v] = scanText(t, db, v)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	copyStore := func(t *testing.T) string {
		dir := t.TempDir()
		b, err := os.ReadFile(filepath.Join(tmpl, store.FileName))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, store.FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// How long a vacuum takes here: the timed kills land at fractions of it.
	var took time.Duration
	{
		db, err := store.Open(copyStore(t), store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := killedVacuum(ctx, db, nil); err != nil {
			t.Fatal(err)
		}
		took = time.Since(start)
		_ = db.Close()
	}
	type kill struct {
		mode  string
		delay time.Duration
	}
	kills := []kill{{"hook:items", 0}}
	for _, f := range []float64{0, 0.2, 0.4, 0.6, 0.8, 0.9, 1, 1.1, 1.5} {
		kills = append(kills, kill{"timed", time.Duration(f * float64(took))})
	}
	moved := 0
	for _, k := range kills {
		t.Run(fmt.Sprintf("%s+%s", k.mode, k.delay.Round(time.Microsecond)), func(t *testing.T) {
			dir := copyStore(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestVacuumChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envVacuumDir+"="+dir, envVacuumKill+"="+k.mode)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if k.mode == "timed" {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() && sc.Text() != "vacuuming" {
				}
				time.Sleep(k.delay)
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
			_ = cmd.Wait()
			if !storetest.KilledBySIGKILL(cmd.ProcessState) {
				t.Fatalf("child not killed by SIGKILL: %v", cmd.ProcessState)
			}

			verify := func(when string) int64 {
				t.Helper()
				db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
				if err != nil {
					t.Fatalf("open %s: %v", when, err)
				}
				defer db.Close()
				if err := db.Check(ctx); err != nil {
					t.Fatalf("%s: %v", when, err)
				}
				h, err := db.Horizon("items")
				if err != nil {
					t.Fatal(err)
				}
				if h != 0 && h != killedReaderAt-1 {
					t.Errorf("%s: horizon %d, want 0 or %d (the reader at %d holds it)", when, h, killedReaderAt-1, killedReaderAt)
				}
				if got, err := changesText(t, db, killedReaderAt); err != nil || got != wantChanges {
					t.Errorf("%s: the change feed the reader, the stream and the export still need differs (%v)", when, err)
				}
				for v := h; v <= killedVersions; v++ {
					if got := scanText(t, db, v); got != wantAt[v] {
						t.Errorf("%s: items reads differently at version %d (horizon %d)", when, v, h)
					}
				}
				return h
			}
			h := verify("after the kill")
			db, err = store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := killedVacuum(ctx, db, nil); err != nil {
				t.Fatalf("rerun after the kill: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if h2 := verify("after the rerun"); h2 != killedReaderAt-1 {
				t.Errorf("rerun: horizon %d, want %d", h2, killedReaderAt-1)
			}
			if h > 0 {
				moved++
			}
		})
	}
	t.Logf("a vacuum takes %s here; %d of %d kills came after items' vacuum committed", took, moved, len(kills))
}

// sortRows sorts rows by id (the keys of one MERGE are distinct).
func sortRows(rows []store.Row) {
	slices.SortFunc(rows, func(a, b store.Row) int { return strings.Compare(a[0].Str, b[0].Str) })
}
