package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
)

// runUntil runs the real binary with -v and sends sig as soon as a line of
// its stderr matches when. It returns stderr and the exit status.
func runUntil(t *testing.T, env []string, when *regexp.Regexp, sig syscall.Signal, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"-v"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sent := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if !sent && when.MatchString(sc.Text()) {
			sent = true
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = cmd.Wait()
	return stderr.String(), cmd.ProcessState.ExitCode()
}

// lastLine is the last line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestIngestInterrupted signals `upicdc ingest` while it MERGEs a big file:
// the message says that file was not applied and which files are in, not
// which row happened to be in hand.
func TestIngestInterrupted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			files := t.TempDir()
			g := &benchGen{rng: rand.New(rand.NewPCG(7, 8)), clock: time.Date(2024, 12, 21, 0, 0, 0, 0, time.UTC)}
			small := []string{filepath.Join(files, "batch1.csv"), filepath.Join(files, "batch2.csv")}
			for _, p := range small {
				if err := g.file(p, 100, 0.5); err != nil {
					t.Fatal(err)
				}
			}
			// The signal goes out when batch2.csv is merged; if batch3.csv
			// was merged before it landed, try again with a bigger one.
			after2 := regexp.MustCompile(`msg="file merged" file=batch2.csv`)
			for rows := 200_000; ; rows *= 2 {
				data := t.TempDir()
				big := filepath.Join(files, "batch3.csv")
				if err := g.file(big, rows, 0); err != nil {
					t.Fatal(err)
				}
				stderr, code := runUntil(t, nil, after2, sig, "--data-dir", data, "ingest", small[0], small[1], big, small[0])
				if code == 0 {
					if rows >= 1_600_000 {
						t.Fatalf("the signal never landed during the MERGE:\n%s", stderr)
					}
					continue
				}
				want := "upicdc: interrupted: batch3.csv was not applied (nor 1 later file(s)); batch1.csv, batch2.csv are in (versions 1–2)"
				if code != 1 || lastLine(stderr) != want {
					t.Fatalf("exit %d, stderr:\n%s\nwant last line:\n%s", code, stderr, want)
				}
				if strings.Contains(stderr, "context canceled") || strings.Contains(stderr, "input position") {
					t.Errorf("stderr blames a row:\n%s", stderr)
				}
				db, err := store.Open(data, store.Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				v, err := db.LatestVersion(cdc.RawTable)
				db.Close()
				if err != nil || v != 2 {
					t.Errorf("raw table at version %d (%v), want 2", v, err)
				}
				return
			}
		})
	}
}

// TestProcessInterrupted signals `upicdc process` between or during its
// micro-batches: the message says how far the committed batches go, and
// that is the stream's checkpoint.
func TestProcessInterrupted(t *testing.T) {
	data := t.TempDir()
	files := t.TempDir()
	g := &benchGen{rng: rand.New(rand.NewPCG(9, 10)), clock: time.Date(2024, 12, 21, 0, 0, 0, 0, time.UTC)}
	env := []string{"UPICDC_STREAM_MAX_VERSIONS_PER_TRIGGER=1"}
	firstBatch := regexp.MustCompile(`msg="micro-batch committed"`)
	wantRE := regexp.MustCompile(`^upicdc: interrupted: micro-batches up to (\d+) are committed \(raw versions up to (\d+), aggregated_upi_transactions version \d+\); nothing half-applied$`)
	for round := 0; ; round++ {
		var args []string
		for i := range 40 {
			p := filepath.Join(files, fmt.Sprintf("r%d-%02d.csv", round, i))
			if err := g.file(p, 3000, 0.5); err != nil {
				t.Fatal(err)
			}
			args = append(args, p)
		}
		if _, errOut, code := run(t, nil, append([]string{"--data-dir", data, "ingest"}, args...)...); code != 0 {
			t.Fatal(errOut)
		}
		stderr, code := runUntil(t, env, firstBatch, syscall.SIGINT, "--data-dir", data, "process")
		if code == 0 {
			if round == 3 {
				t.Fatalf("the signal never landed before the processor caught up:\n%s", stderr)
			}
			continue
		}
		m := wantRE.FindStringSubmatch(lastLine(stderr))
		if code != 1 || m == nil {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		db, err := store.Open(data, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := db.Checkpoint("merchant_aggregates")
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if strconv.FormatInt(cp.BatchID, 10) != m[1] || strconv.FormatInt(cp.SourceVersion, 10) != m[2] {
			t.Errorf("message says batch %s, raw version %s; checkpoint %+v", m[1], m[2], cp)
		}
		// Nothing was half-applied: the next run catches up and reconciles.
		runOK(t, "--data-dir", data, "process")
		if out := runOK(t, "--data-dir", data, "reconcile"); !strings.Contains(out, " 0 difference(s)") {
			t.Errorf("reconcile: %s", out)
		}
		return
	}
}
