package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestServeWarnsOffLoopback: the API has no authentication, so listening
// beyond loopback is allowed but warned about at start.
func TestServeWarnsOffLoopback(t *testing.T) {
	const warning = "the API has no authentication"
	for _, tc := range []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:0", false},
		{"0.0.0.0:0", true},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			p := startServe(t, t.TempDir(), []string{"UPICDC_HTTP_LISTEN=" + tc.listen})
			if code := p.stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d:\n%s", code, p.log())
			}
			log := p.log()
			warned := strings.Contains(log, "level=WARN") && strings.Contains(log, warning)
			if warned != tc.warn {
				t.Errorf("warned %v, want %v:\n%s", warned, tc.warn, log)
			}
		})
	}
}

// TestServeInboxExistsWhenListening: once serve says it is listening, the
// inbox and its processed/ and rejected/ exist, so a script may copy files
// in right after that line.
func TestServeInboxExistsWhenListening(t *testing.T) {
	data := filepath.Join(t.TempDir(), "new")
	p := startServe(t, data, nil)
	for _, dir := range []string{"inbox", "inbox/processed", "inbox/rejected"} {
		if fi, err := os.Stat(filepath.Join(data, dir)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", dir, err)
		}
	}
	p.stop(syscall.SIGTERM)
}
