package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLineThrottlesAndClears(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2024, 12, 21, 10, 0, 0, 0, time.UTC)
	l := New(&b)
	l.now = func() time.Time { return now }
	l.Clear() // nothing drawn: nothing to erase
	l.Update("step %d", 1)
	l.Update("step %d", 2) // too soon: skipped
	now = now.Add(Interval)
	l.Update("step %d", 3)
	l.Show("done %d", 4) // always drawn
	l.Clear()
	l.Clear()
	if got, want := b.String(), "\r\033[Kstep 1\r\033[Kstep 3\r\033[Kdone 4\r\033[K"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOnTerminalIsNilForFilesAndNilIsQuiet(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	for _, w := range []io.Writer{f, &b} {
		if l := OnTerminal(w); l != nil {
			t.Errorf("OnTerminal(%T) = %v, want nil", w, l)
		}
	}
	var l *Line
	l.Update("x")
	l.Show("x")
	l.Clear()
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("a nil Line wrote %d bytes", fi.Size())
	}
}
