package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBenchScale runs the scale scenario with the real binary at a small
// size and checks that its phases account for what was generated.
func TestBenchScale(t *testing.T) {
	files := filepath.Join(t.TempDir(), "files")
	out := runOK(t, "bench", "--scenario=scale", "--rows=3000", "--file-rows=1000", "--bin="+binary,
		"--keep-files="+files, "--windows=none", "--windows=1d,1w", "--format=json")
	var rows []map[string]any
	decode(t, out, &rows)
	phase := map[string]map[string]any{}
	for _, r := range rows {
		phase[r["phase"].(string)] = r
	}
	num := func(p, col string) float64 {
		t.Helper()
		r, ok := phase[p]
		if !ok {
			t.Fatalf("no phase %q in\n%s", p, out)
		}
		v, ok := r[col].(float64)
		if !ok {
			t.Fatalf("%s: %s is %v, want a number\n%s", p, col, r[col], out)
		}
		return v
	}
	csv := num("csv files (not timed)", "bytes")
	if n := num("csv files (not timed)", "rows"); n != 3000 {
		t.Errorf("generated %v rows, want 3000", n)
	}
	var kept float64
	names, err := filepath.Glob(filepath.Join(files, "*.csv"))
	if err != nil || len(names) != 3 {
		t.Fatalf("--keep-files holds %v (%v), want 3 files", names, err)
	}
	for _, n := range names {
		st, err := os.Stat(n)
		if err != nil {
			t.Fatal(err)
		}
		kept += float64(st.Size())
	}
	if kept != csv {
		t.Errorf("csv bytes %v, the kept files hold %v", csv, kept)
	}
	// Every row is ingested; the first and last file are one third each.
	if n := num("ingest: parse + MERGE, every file", "rows"); n != 3000 {
		t.Errorf("ingested %v rows, want 3000", n)
	}
	if num("ingest: first file", "rows") != 1000 || num("ingest: last file", "rows") != 1000 {
		t.Errorf("first/last file rows:\n%s", out)
	}
	if num("ingest: parse + MERGE, every file", "bytes") <= 0 {
		t.Errorf("no store size after ingest:\n%s", out)
	}
	for _, p := range []string{"ingest: parse + MERGE, every file", "ingest: first file", "ingest: last file", "process: windows 1d,1w", "reconcile: windows 1d,1w"} {
		if num(p, "peak_rss_mb") <= 0 || num(p, "seconds") <= 0 {
			t.Errorf("%s: no RSS or time:\n%s", p, out)
		}
	}
	// Each row inserts or updates one transaction: the processor reads at
	// least one change row per ingested row (two for an update when the feed
	// holds preimages), and reconcile at least one per row too, at most what
	// the processor read (it may skip the preimages).
	feed, rec := num("process: windows 1d,1w", "rows"), num("reconcile: windows 1d,1w", "rows")
	if feed < 3000 || rec < 3000 || rec > feed {
		t.Errorf("process read %v change rows, reconcile %v; want both >= 3000, reconcile <= process:\n%s", feed, rec, out)
	}
	if num("process: windows 1d,1w", "bytes") < num("ingest: parse + MERGE, every file", "bytes") {
		t.Errorf("the store shrank in process:\n%s", out)
	}
	// This binary takes windows.sizes [] and measures it like the others
	// (the bench notes it as skipped for a binary that refuses it).
	if none := phase["process: windows none"]; none == nil {
		t.Errorf("no windows none variant:\n%s", out)
	} else if num("process: windows none", "rows") != feed {
		t.Errorf("windows none read %v change rows, want %v:\n%s", none["rows"], feed, out)
	}

	// The same files again, from the directory: the same rows.
	out2 := runOK(t, "bench", "--scenario=scale", "--files-from="+files, "--bin="+binary, "--windows=1d", "--format=json")
	var rows2 []map[string]any
	decode(t, out2, &rows2)
	if rows2[0]["rows"].(float64) != 3000 || rows2[0]["bytes"].(float64) != csv || rows2[1]["rows"].(float64) != 3000 {
		t.Errorf("--files-from:\n%s", out2)
	}

	for _, bad := range [][]string{
		{"--rows=0"},
		{"--ids=sorted"},
		{"--windows=2d"},
		{"--keep-files=" + files, "--files-from=" + files},
		{"--bin=" + filepath.Join(t.TempDir(), "nope")},
		{"--files-from=" + t.TempDir()},
	} {
		args := append([]string{"bench", "--scenario=scale", "--rows=10"}, bad...)
		if _, errOut, code := run(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", bad, code, errOut)
		}
	}
}
