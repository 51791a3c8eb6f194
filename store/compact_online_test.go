package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/storetest"
)

// TestCompactOnlineUnderLoad compacts an open store while writers MERGE,
// readers scan and snapshots come and go: every write commits (none
// fails), the file shrinks, it passes bbolt's check, the old versions read
// as before, and the store reopens the same.
func TestCompactOnlineUnderLoad(t *testing.T) {
	dir := t.TempDir()
	// Big enough that what the vacuum freed outweighs the slack a store
	// file grows by (1 MiB) when the writes resume on the copy.
	want := vacuumedStore(t, dir, 200)
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	base, err := db.LatestVersion("items")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes, reads atomic.Int64
	wg.Go(func() { // a writer: one MERGE after another
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			merge(t, db, fmt.Sprint("load", i), row(fmt.Sprintf("L%05d", i), "o", store.Paise(i), i%60, "new"))
			writes.Add(1)
		}
	})
	for range 2 { // readers: scans, and snapshots
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := scanText(t, db, base); got != want {
					t.Error("a read during the compaction differs")
					return
				}
				s, err := db.Snapshot()
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.LatestVersion("items"); err != nil {
					t.Error(err)
				}
				_ = s.Close()
				reads.Add(1)
			}
		})
	}
	for writes.Load() < 3 { // the load is running
		time.Sleep(time.Millisecond)
	}
	var steps []store.CompactStep
	res, err := db.CompactOnline(ctx, store.CompactOptions{Hook: func(s store.CompactStep) error {
		steps = append(steps, s)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := writes.Load()
	for writes.Load() < n+3 { // writes go on after the swap
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if res.After >= res.Before || res.Paused > res.WritersPaused || res.WritersPaused <= 0 {
		t.Errorf("result %+v", res)
	}
	if fmt.Sprint(steps) != "[copied synced checked renamed]" {
		t.Errorf("steps %v", steps)
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName+".compact")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy is left behind: %v", err)
	}
	latest, err := db.LatestVersion("items")
	if err != nil {
		t.Fatal(err)
	}
	if latest != base+writes.Load() {
		t.Errorf("latest version %d, want %d + %d writes", latest, base, writes.Load())
	}
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := scanText(t, db, base); got != want {
		t.Error("the table reads differently after the compaction")
	}
	final := scanText(t, db, -1)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := open(t, dir)
	if got := scanText(t, db2, -1); got != final {
		t.Error("the reopened store reads differently")
	}
	t.Logf("%d writes, %d reads meanwhile; %+v", writes.Load(), reads.Load(), res)
}

// TestCompactOnlineBusy: a snapshot or a write transaction that holds on
// past the wait skips the compaction with a BusyError, and the store goes
// on (reads and writes that waited meanwhile succeed); once it ends, the
// compaction runs.
func TestCompactOnlineBusy(t *testing.T) {
	dir := t.TempDir()
	bigThenVacuumed(t, dir)
	db := open(t, dir)
	ctx := context.Background()
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { // a reader arriving during the wait waits, then reads
		time.Sleep(20 * time.Millisecond)
		_, err := db.LatestVersion("items")
		waited <- err
	}()
	_, err = db.CompactOnline(ctx, store.CompactOptions{Wait: 100 * time.Millisecond})
	var busy *store.BusyError
	if !errors.As(err, &busy) || !errors.Is(err, store.ErrBusy) || busy.Readers != 1 || !strings.Contains(err.Error(), "read transaction") {
		t.Fatalf("compaction with a snapshot open: %v", err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	merge(t, db, "after the skip", row("Z", "o", 1, 1, "new"))
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}

	inWrite, release := make(chan struct{}), make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		_, err := db.Write(ctx, "items", store.WriteMeta{Operation: "MERGE"}, func(w *store.TableWriter) error {
			close(inWrite)
			<-release
			_, err := w.Upsert(row("Y", "o", 2, 2, "new"))
			return err
		})
		wrote <- err
	}()
	<-inWrite
	_, err = db.CompactOnline(ctx, store.CompactOptions{Wait: 50 * time.Millisecond})
	if !errors.As(err, &busy) || busy.Writers != 1 {
		t.Fatalf("compaction with a write running: %v", err)
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	res, err := db.CompactOnline(ctx, store.CompactOptions{})
	if err != nil || res.After >= res.Before {
		t.Fatalf("compaction once idle: %+v %v", res, err)
	}
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCompactOnlineCanceled: a context ended during the wait skips the
// compaction and leaves the store as it was.
func TestCompactOnlineCanceled(t *testing.T) {
	dir := t.TempDir()
	want := bigThenVacuumed(t, dir)
	db := open(t, dir)
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := db.CompactOnline(ctx, store.CompactOptions{Wait: time.Hour}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled compaction: %v", err)
	}
	_ = snap.Close()
	if got := scanText(t, db, -1); got != want {
		t.Error("reads differently after a canceled compaction")
	}
}

const envOnlineDir = "UPICDC_TEST_ONLINE_DIR"

// TestCompactOnlineChild is not a test of its own: TestCompactOnlineKilled
// runs the test binary with it as a child that, writing all the while,
// SIGKILLs itself at a step of an online compaction.
func TestCompactOnlineChild(t *testing.T) {
	dir := os.Getenv(envOnlineDir)
	if dir == "" {
		t.Skip("helper process for TestCompactOnlineKilled")
	}
	db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 0; ; i++ {
			merge(t, db, fmt.Sprint("child", i), row(fmt.Sprintf("C%05d", i), "o", store.Paise(i), i%60, "new"))
			fmt.Printf("committed C%05d\n", i)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	step := store.CompactStep(os.Getenv(envCompactStep))
	_, err = db.CompactOnline(context.Background(), store.CompactOptions{Hook: func(s store.CompactStep) error {
		if s == step {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}})
	t.Fatalf("child was not killed (err %v)", err)
}

// TestCompactOnlineKilled kills a process at each step of an online
// compaction while it writes: the store opens, passes bbolt's check, reads
// the same at the versions before, and holds every write the child saw
// committed.
func TestCompactOnlineKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for _, step := range []store.CompactStep{store.CompactCopied, store.CompactSynced, store.CompactChecked, store.CompactRenamed} {
		t.Run(string(step), func(t *testing.T) {
			dir := t.TempDir()
			want := bigThenVacuumed(t, dir)
			db, err := store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
			if err != nil {
				t.Fatal(err)
			}
			base, err := db.LatestVersion("items")
			if err != nil {
				t.Fatal(err)
			}
			_ = db.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCompactOnlineChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envOnlineDir+"="+dir, envCompactStep+"="+string(step))
			out, err := cmd.Output()
			if !storetest.KilledBySIGKILL(cmd.ProcessState) {
				t.Fatalf("child not killed by SIGKILL: %v\n%s", err, out)
			}
			db, err = store.Open(dir, store.Options{Tables: []store.TableDef{itemsDef, byOwnerDef}})
			if err != nil {
				t.Fatalf("open after a kill at %s: %v", step, err)
			}
			defer db.Close()
			if err := db.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := scanText(t, db, base); got != want {
				t.Fatalf("after a kill at %s the table reads differently", step)
			}
			now := scanText(t, db, -1)
			committed := 0
			for _, l := range strings.Fields(string(out)) {
				if !strings.HasPrefix(l, "C0") {
					continue
				}
				committed++
				if !strings.Contains(now, l+":") {
					t.Errorf("committed %s is lost after a kill at %s", l, step)
				}
			}
			if committed == 0 {
				t.Fatalf("the child committed nothing before the kill:\n%s", out)
			}
			if res, err := db.CompactOnline(context.Background(), store.CompactOptions{}); err != nil {
				t.Fatal(err)
			} else if step != store.CompactRenamed && res.After >= res.Before {
				t.Errorf("compaction after the kill did not shrink the file: %+v", res)
			}
			if got := scanText(t, db, -1); got != now {
				t.Error("reads differently after compacting again")
			}
		})
	}
}
