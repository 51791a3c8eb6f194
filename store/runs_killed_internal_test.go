package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const envSweepDir = "UPICDC_TEST_SWEEP_DIR"

// killedSweepPolicy makes a sweep of the test's runs take about 75 steps.
func killedSweepPolicy() runPolicy { return runPolicy{minKeys: 1, share: 0, maxRuns: 2, stepKeys: 40} }

// TestSweepChild is not a test of its own: TestSweepKilled runs the test
// binary with it as a child that is killed during a sweep.
func TestSweepChild(t *testing.T) {
	dir := os.Getenv(envSweepDir)
	if dir == "" {
		t.Skip("helper process for TestSweepKilled")
	}
	db, err := Open(dir, Options{Tables: []TableDef{recItems}})
	if err != nil {
		t.Fatal(err)
	}
	db.runs = killedSweepPolicy()
	fmt.Println("sweeping")
	err = db.sweep(context.Background(), "items")
	time.Sleep(time.Hour) // the parent kills it: a sleep, not a select the runtime calls a deadlock
	t.Fatalf("child was not killed (err %v)", err)
}

// storeText renders what a store reads: items at every version, its change
// feed and the history of every key of the runs test's workload.
func storeText(t *testing.T, db *DB, versions int64) string {
	t.Helper()
	var b strings.Builder
	ctx := context.Background()
	for v := int64(0); v <= versions; v++ {
		fmt.Fprintf(&b, "version %d\n", v)
		if _, err := db.Scan(ctx, "items", v, KeyRange{}, func(r Row) error {
			fmt.Fprintln(&b, r)
			return nil
		}); err != nil {
			t.Fatalf("scan at %d: %v", v, err)
		}
	}
	if err := db.Changes(ctx, "items", 1, -1, func(c Change) error {
		fmt.Fprintln(&b, c.Version, c.Type, c.Timestamp, c.Row)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rp := runsPair{}
	for i := range 3000 {
		h, err := db.KeyHistory("items", Row{S(rp.key(i))})
		fmt.Fprintln(&b, rp.key(i), h, err)
	}
	return b.String()
}

// TestSweepKilled kills a sweep at varied moments: the store opens and
// passes bbolt's check, reads exactly what the same commits read without
// runs at every version, and a rerun finishes the sweep, after which it
// still does and the swept runs are gone.
func TestSweepKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	ctx := context.Background()
	rp := openRunsPair(t, runPolicy{minKeys: 1, share: 0, maxRuns: 1 << 30, stepKeys: 40})
	for range 14 {
		rp.commit()
	}
	want := storeText(t, rp.ref, rp.versions)
	if got := storeText(t, rp.dut, rp.versions); got != want {
		t.Fatal("the store with runs reads differently before any sweep")
	}
	tmpl := filepath.Dir(rp.dut.Path())
	if err := rp.dut.Close(); err != nil {
		t.Fatal(err)
	}
	copyStore := func(t *testing.T) string {
		dir := t.TempDir()
		b, err := os.ReadFile(filepath.Join(tmpl, FileName))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	open := func(dir string) *DB {
		t.Helper()
		db, err := Open(dir, Options{Tables: []TableDef{recItems}})
		if err != nil {
			t.Fatal(err)
		}
		db.runs = killedSweepPolicy()
		return db
	}
	// How long a sweep takes here: the kills land at fractions of it.
	var took time.Duration
	{
		db := open(copyStore(t))
		start := time.Now()
		if err := db.sweep(ctx, "items"); err != nil {
			t.Fatal(err)
		}
		took = time.Since(start)
		if runs, sweeping, _ := runsOf(t, db); len(runs) != 0 || sweeping {
			t.Fatalf("after a whole sweep: runs %v, sweeping %v", runs, sweeping)
		}
		_ = db.Close()
	}
	midway := 0
	for _, f := range []float64{0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.1} {
		delay := time.Duration(f * float64(took))
		t.Run(delay.Round(time.Microsecond).String(), func(t *testing.T) {
			dir := copyStore(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestSweepChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envSweepDir+"="+dir)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stdout)
			for sc.Scan() && sc.Text() != "sweeping" {
			}
			time.Sleep(delay)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child not killed by SIGKILL: %v", cmd.ProcessState)
			}
			db := open(dir)
			if err := db.Check(ctx); err != nil {
				t.Fatalf("after the kill: %v", err)
			}
			if _, sweeping, _ := runsOf(t, db); sweeping {
				midway++
			}
			if got := storeText(t, db, rp.versions); got != want {
				t.Fatal("after the kill the store reads differently")
			}
			if err := db.sweep(ctx, "items"); err != nil {
				t.Fatalf("rerun: %v", err)
			}
			if runs, sweeping, mainKeys := runsOf(t, db); len(runs) != 0 || sweeping || mainKeys != keysOf(t, rp.ref) {
				t.Errorf("after the rerun: runs %v, sweeping %v, %d keys counted (want none, false, %d)", runs, sweeping, mainKeys, keysOf(t, rp.ref))
			}
			if got := storeText(t, db, rp.versions); got != want {
				t.Error("after the rerun the store reads differently")
			}
			_ = db.Close()
		})
	}
	t.Logf("a sweep takes %s here; %d kills left it midway", took, midway)
}
