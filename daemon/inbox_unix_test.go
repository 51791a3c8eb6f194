//go:build unix

package daemon_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/upicdc/upicdc/daemon"
)

// logBuffer is a log sink that tests read while the daemon writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestInboxRejectsNonRegularFiles: symbolic links (to a secret outside the
// inbox, to a valid batch outside it, dangling) and a FIFO are
// moved to rejected/ with a reason, never read through; nothing of the
// secret reaches the log or the .error file, the linked batch is not merged
// and the FIFO does not block the inbox. A directory is left alone and
// logged once, not on every rescan.
func TestInboxRejectsNonRegularFiles(t *testing.T) {
	cfg := testConfig(t)
	inbox := cfg.InboxDir()
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	const secret = "root:x:0:0:TOP-SECRET-LINE:/root:/bin/bash"
	secretPath := filepath.Join(outside, "passwd")
	if err := os.WriteFile(secretPath, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	batchPath := filepath.Join(outside, "batch1.csv")
	if err := os.WriteFile(batchPath, read(t, batches+"batch1.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"passwd.csv": secretPath, "linked.csv": batchPath, "dangling.csv": filepath.Join(outside, "nothing.csv"),
	} {
		if err := os.Symlink(target, filepath.Join(inbox, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(inbox, "pipe.csv"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(inbox, "incoming"), 0o755); err != nil {
		t.Fatal(err)
	}

	logs := &logBuffer{}
	d := start(t, daemon.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	rejected := filepath.Join(inbox, daemon.RejectedDir)
	nonRegular := map[string]string{
		"passwd.csv": "symbolic link", "linked.csv": "symbolic link", "dangling.csv": "symbolic link",
		"pipe.csv": "named pipe",
	}
	waitFor(t, "the non-regular files to be rejected", func() bool { return len(names(t, rejected)) == 2*len(nonRegular) })
	// The inbox is not blocked: later files are taken, and each one rescans.
	for _, b := range []string{"batch2.csv", "batch3.csv"} {
		drop(t, inbox, b, read(t, batches+b), time.Time{})
		waitFor(t, b+" to be processed", func() bool {
			return slices.Contains(names(t, filepath.Join(inbox, daemon.ProcessedDir)), b)
		})
	}
	st := settled(t, d)

	for name, reason := range nonRegular {
		info, err := os.Lstat(filepath.Join(rejected, name))
		if err != nil {
			t.Errorf("rejected/%s: %v", name, err)
		} else if info.Mode().IsRegular() {
			t.Errorf("rejected/%s is a regular file: the link or pipe itself must be moved", name)
		}
		msg := string(read(t, filepath.Join(rejected, name+".error")))
		if !strings.Contains(msg, reason) || !strings.Contains(msg, name) {
			t.Errorf("rejected/%s.error = %q, want it to name the file and say %q", name, msg, reason)
		}
		if strings.Contains(msg, "TOP-SECRET") {
			t.Errorf("rejected/%s.error holds the link target's content: %q", name, msg)
		}
	}
	if strings.Contains(logs.String(), "TOP-SECRET") {
		t.Errorf("the log holds the link target's content:\n%s", logs.String())
	}
	if got := sources(t, d.DB()); !slices.Equal(got, []string{"batch2.csv", "batch3.csv"}) {
		t.Errorf("commits %v, want only the two regular files (a link to a batch is not merged)", got)
	}
	if st.LastError != nil {
		t.Errorf("last_error %+v: rejecting a file is not a failure", st.LastError)
	}
	if got := read(t, secretPath); string(got) != secret+"\n" {
		t.Errorf("the link target changed: %q", got)
	}
	if info, err := os.Stat(filepath.Join(inbox, "incoming")); err != nil || !info.IsDir() {
		t.Errorf("the directory incoming/ was not left alone: %v", err)
	}
	var dirLines int
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "incoming") {
			dirLines++
		}
	}
	if dirLines != 1 {
		t.Errorf("the directory was logged %d times over several rescans, want once:\n%s", dirLines, logs.String())
	}
}
