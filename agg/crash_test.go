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
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// Environment of the crashing child process.
const (
	envCrashDir  = "UPICDC_TEST_CRASH_DIR"
	envCrashStep = "UPICDC_TEST_CRASH_STEP"
	envCrashAt   = "UPICDC_TEST_CRASH_BATCH"
	// envCrashBackfill makes the child backfill weekly windows (the store
	// was built with daily ones only) instead of running micro-batches.
	envCrashBackfill = "UPICDC_TEST_CRASH_BACKFILL"
	// envCrashAlerts makes the child run with the seed's alert rule.
	envCrashAlerts = "UPICDC_TEST_CRASH_ALERTS"
)

var (
	dailyOnly = agg.Config{WindowSizes: []string{"1d"}}
	withWeeks = agg.Config{WindowSizes: []string{"1d", "1w"}}
)

// TestCrashChild is not a test of its own: TestProcessorKilledBetweenSteps
// runs the test binary with it as a child that SIGKILLs itself at a step.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process for TestProcessorKilledBetweenSteps")
	}
	cfg := agg.Config{}
	backfill := os.Getenv(envCrashBackfill) != ""
	if backfill {
		cfg = withWeeks
	}
	if os.Getenv(envCrashAlerts) != "" {
		cfg = alertsCfg(highRefunds)
	}
	db, err := agg.Open(dir, cfg, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	step := agg.Step(os.Getenv(envCrashStep))
	at, _ := strconv.Atoi(os.Getenv(envCrashAt))
	batch := 0
	p := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 1, Tables: cfg, Hook: func(s agg.Step) error {
		if s == step {
			if batch == at {
				// A real crash: no deferred code, no bbolt rollback, no close.
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
			batch++
		}
		return nil
	}})
	if backfill {
		_, err = p.Prepare(context.Background())
	} else {
		_, err = p.RunAvailableNow(context.Background())
	}
	t.Fatalf("child was not killed (err %v)", err)
}

// TestBackfillKilledBetweenSteps kills the backfill of a newly configured
// window size at each of its steps: the store keeps what it had (no weekly
// windows, nothing double counted), and the next start backfills it whole.
func TestBackfillKilledBetweenSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for _, step := range []agg.Step{agg.StepRead, agg.StepComputed, agg.StepWritten} {
		t.Run(string(step), func(t *testing.T) {
			dir := t.TempDir()
			db, err := agg.Open(dir, dailyOnly, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			workload(t, db, agg.NewProcessor(db, agg.Options{Tables: dailyOnly}))
			daily := windowLines(t, db, "1d", -1)
			db.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashStep+"="+string(step), envCrashAt+"=0", envCrashBackfill+"=1")
			out, err := cmd.CombinedOutput()
			if !storetest.KilledBySIGKILL(cmd.ProcessState) {
				t.Fatalf("child not killed by SIGKILL: %v\n%s", err, out)
			}

			db = aggtest.Open(t, dir, withWeeks)
			if got := windowLines(t, db, "1w", -1); got != "" {
				t.Fatalf("a killed backfill left weekly windows:\n%s", got)
			}
			if got := windowLines(t, db, "1d", -1); got != daily {
				t.Fatalf("a killed backfill changed the daily windows")
			}
			if rep, err := agg.Reconcile(context.Background(), db, "", dailyOnly); err != nil || !rep.OK() {
				t.Fatalf("reconcile after the kill: %v %+v", err, rep.Differences)
			}
			p := agg.NewProcessor(db, agg.Options{Tables: withWeeks})
			if _, err := p.Prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			fromStart := aggtest.Open(t, t.TempDir(), withWeeks)
			workload(t, fromStart, agg.NewProcessor(fromStart, agg.Options{Tables: withWeeks}))
			if got, want := windowLines(t, db, "1w", -1), windowLines(t, fromStart, "1w", -1); got != want {
				t.Errorf("weekly windows after the restart:\n%s\nwant\n%s", got, want)
			}
			if rep, err := agg.Reconcile(context.Background(), db, "", withWeeks); err != nil || !rep.OK() {
				t.Errorf("reconcile: %v %+v", err, rep.Differences)
			}
		})
	}
}

// TestProcessorKilledBetweenSteps kills the processor with SIGKILL at every
// step of every micro-batch of the seed, then restarts it: the aggregates
// always end equal to the seed's and to a full recomputation, and each
// micro-batch is committed exactly once.
func TestProcessorKilledBetweenSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for _, step := range []agg.Step{agg.StepRead, agg.StepComputed, agg.StepWritten, agg.StepCommit} {
		for at := 0; at < 3; at++ {
			t.Run(string(step)+"/batch"+strconv.Itoa(at), func(t *testing.T) {
				dir := t.TempDir()
				db, err := agg.Open(dir, agg.Config{}, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for i := 1; i <= 3; i++ {
					ingestSeed(t, db, i)
				}
				db.Close()

				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashStep+"="+string(step), envCrashAt+"="+strconv.Itoa(at))
				out, err := cmd.CombinedOutput()
				if !storetest.KilledBySIGKILL(cmd.ProcessState) {
					t.Fatalf("child not killed by SIGKILL: %v\n%s", err, out)
				}

				db = openStore(t, dir)
				cp, err := db.Checkpoint(agg.DefaultStream)
				if err != nil {
					t.Fatal(err)
				}
				// Batches before the crashed one are committed; the crashed
				// one is committed only if the kill came after its commit.
				wantBatch := int64(at) - 1
				if step == agg.StepCommit {
					wantBatch = int64(at)
				}
				if cp.BatchID != wantBatch || cp.SourceVersion != wantBatch+1 {
					t.Fatalf("checkpoint after crash %+v, want batch %d", cp, wantBatch)
				}
				mustReconcile(t, db)
				if _, err := agg.NewProcessor(db, agg.Options{MaxVersionsPerTrigger: 1}).RunAvailableNow(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := aggtest.AggregateLines(t, db, -1); got != seedTables[2] {
					t.Errorf("after restart:\ngot\n%s\nwant\n%s", got, seedTables[2])
				}
				mustReconcile(t, db)
				hist, err := db.History(agg.TotalsTable)
				if err != nil {
					t.Fatal(err)
				}
				if len(hist) != 4 {
					t.Fatalf("aggregated table has %d versions, want 4 (create + one per raw version)", len(hist))
				}
				for v := 1; v < len(hist); v++ {
					if hist[v].Txn.Version != int64(v-1) {
						t.Errorf("version %d has batch id %d: a batch was committed twice or skipped", v, hist[v].Txn.Version)
					}
				}
			})
		}
	}
}
