// Package progress draws a one-line status on a terminal, redrawn in place
// (carriage return, erase line), for commands that run long: `upicdc
// export`, `upicdc bench`. Progress belongs on a terminal only: OnTerminal
// returns nil for a pipe or a file, and every method of a nil *Line does
// nothing, so callers need no checks of their own and logs stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"
)

// Interval is the shortest time between two redraws by Update.
const Interval = 100 * time.Millisecond

// eraseLine returns the cursor to the start of the line and clears it.
const eraseLine = "\r\033[K"

// Line is one status line. It is not safe for concurrent use.
type Line struct {
	w     io.Writer
	now   func() time.Time
	last  time.Time
	drawn bool
}

// New returns a Line that draws on w, whatever w is.
func New(w io.Writer) *Line { return &Line{w: w, now: time.Now} }

// OnTerminal returns a Line drawing on w if w is a terminal, else nil.
func OnTerminal(w io.Writer) *Line {
	if !IsTerminal(w) {
		return nil
	}
	return New(w)
}

// IsTerminal reports whether w is a terminal (a character device).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Update redraws the line unless it was drawn less than Interval ago: call
// it as often as there is news.
func (l *Line) Update(format string, args ...any) {
	if l == nil || (l.drawn && l.now().Sub(l.last) < Interval) {
		return
	}
	l.Show(format, args...)
}

// Show redraws the line now: for a state that must be seen, such as the
// start of a phase or its last step.
func (l *Line) Show(format string, args ...any) {
	if l == nil {
		return
	}
	l.last, l.drawn = l.now(), true
	fmt.Fprintf(l.w, eraseLine+format, args...)
}

// Clear erases the line, if anything was drawn, so that what follows starts
// on a clean line.
func (l *Line) Clear() {
	if l == nil || !l.drawn {
		return
	}
	l.drawn = false
	fmt.Fprint(l.w, eraseLine)
}
