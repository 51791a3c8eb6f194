package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchShowsProgressOnATerminal runs bench under script(1), which gives
// it a terminal: each phase appears on the redrawn status line, which is
// cleared before the results. Without a terminal (a pipe) stderr stays
// empty.
func TestBenchShowsProgressOnATerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) (util-linux) is not installed")
	}
	args := "bench --table-rows=3000 --file-rows=1000 --files=2 --lookups=100"
	cmd := exec.Command(script, "-qec", binary+" "+args, "/dev/null")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SHELL=/bin/sh", "TERM=dumb"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%q", err, out)
	}
	tty := string(out)
	for _, want := range []string{
		"\r\033[Kbench: building the table, 0 of 3000 rows: writing build-0000.csv",
		"\r\033[Kbench: building the table, 2000 of 3000 rows: merging build-0002.csv",
		"\r\033[Kbench: measured file 2 of 2: merging file-0001.csv",
		"\r\033[Kbench: stream processor: raw version 0 of 5",
		"\r\033[K| phase ", // cleared, then the table
	} {
		if !strings.Contains(tty, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, tty)
		}
	}

	_, errOut, code := run(t, nil, strings.Fields(args)...)
	if code != 0 || errOut != "" {
		t.Errorf("bench on a pipe: exit %d, stderr %q", code, errOut)
	}
}
