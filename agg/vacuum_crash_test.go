package agg_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/agg/aggtest"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

const envVacuumCrashAt = "UPICDC_TEST_VACUUM_CRASH_TABLE"

// TestVacuumCrashChild is not a test of its own: TestVacuumKilled runs the
// test binary with it as a child that SIGKILLs itself inside the vacuum of
// the table numbered envVacuumCrashAt, before that table's transaction
// commits (the tables before it are committed).
func TestVacuumCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" || os.Getenv(envVacuumCrashAt) == "" {
		t.Skip("helper process for TestVacuumKilled")
	}
	at, _ := strconv.Atoi(os.Getenv(envVacuumCrashAt))
	db, err := agg.Open(dir, agg.Config{}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_, err = agg.Vacuum(context.Background(), db, agg.VacuumOptions{Policy: store.Retention{Versions: 1}, Hook: func(string) error {
		if n == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		n++
		return nil
	}})
	t.Fatalf("child was not killed (err %v)", err)
}

// TestVacuumKilled kills a vacuum inside each table's transaction: the
// store opens, passes bbolt's check and reconcile, reads the same, and the
// next vacuum finishes the job.
func TestVacuumKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for at := range 3 {
		t.Run("table"+strconv.Itoa(at), func(t *testing.T) {
			dir := t.TempDir()
			db, err := agg.Open(dir, agg.Config{}, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			proc := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 1})
			for i := 1; i <= 3; i++ {
				ingestSeed(t, db, i)
				if _, err := proc.RunOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestVacuumCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envVacuumCrashAt+"="+strconv.Itoa(at))
			out, err := cmd.CombinedOutput()
			if !storetest.KilledBySIGKILL(cmd.ProcessState) {
				t.Fatalf("child not killed by SIGKILL: %v\n%s", err, out)
			}

			db = openStore(t, dir)
			if err := db.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			for i, tb := range db.Tables() {
				h, err := db.Horizon(tb.Name)
				if err != nil {
					t.Fatal(err)
				}
				if vacuumed := h > 0; vacuumed != (i < at) {
					t.Errorf("%s: horizon %d after a kill inside table %d's vacuum", tb.Name, h, at)
				}
			}
			mustReconcile(t, db)
			if _, err := agg.Vacuum(context.Background(), db, agg.VacuumOptions{Policy: store.Retention{Versions: 1}}); err != nil {
				t.Fatal(err)
			}
			if h, _ := db.Horizon(cdc.RawTable); h != 2 {
				t.Errorf("raw horizon %d after the second vacuum, want 2", h)
			}
			if got := aggtest.AggregateLines(t, db, -1); got != seedTables[2] {
				t.Errorf("aggregates:\n%s", got)
			}
			mustReconcile(t, db)
		})
	}
}
