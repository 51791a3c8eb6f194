package daemon

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fsnotify/fsnotify"

	"github.com/upicdc/upicdc/cdc"
)

// Subdirectories of the inbox. They live inside it so that a move is a
// rename on one file system (atomic, never a copy); the scan skips them.
const (
	ProcessedDir = "processed"
	RejectedDir  = "rejected"
)

// errorSuffix is appended to a rejected file's name for the file that holds
// the reason.
const errorSuffix = ".error"

// maxName is the longest file name, in bytes, of the usual file systems
// (ext4, xfs, btrfs, tmpfs). Names the inbox makes (a "-N" suffix, NAME.error
// and its temporary file) are shortened to fit it.
const maxName = 255

// ignored reports whether a name in the inbox is not (yet) a batch: writers
// create dotfiles, *.tmp or *.partial and rename them when complete.
func ignored(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasSuffix(lower, ".tmp") || strings.HasSuffix(lower, ".partial")
}

// inboxFile is a candidate batch file, as listed (without following links).
type inboxFile struct {
	name    string
	modTime time.Time
	size    int64
	info    fs.FileInfo
	// bad is set for an entry that is not a regular file (a symbolic link,
	// FIFO, device or socket): it is rejected without being opened.
	bad error
}

// observed is what the inbox last saw of a file it has not taken yet.
type observed struct {
	known   bool // size and modTime are set (a Create event may come first)
	size    int64
	modTime time.Time
	// since is when (on the daemon's clock) the file was first seen with
	// this size and modification time, or last had a write event.
	since time.Time
	// renamed: the file arrived by a rename from a temporary name in the
	// inbox, so it is complete.
	renamed bool
}

// badFileError says why an inbox entry cannot be taken whatever its content:
// it is not a regular file, or it cannot be read. Such a file is rejected.
type badFileError struct {
	Name   string
	Reason string // "is a symbolic link, ...", "cannot be read"
	Err    error  // the cause, if any
}

func (e *badFileError) Error() string {
	msg := "inbox " + e.Name + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *badFileError) Unwrap() error { return e.Err }

// notRegular returns the error for an inbox entry of the given mode.
func notRegular(name string, mode fs.FileMode) *badFileError {
	kind := "not a regular file"
	switch {
	case mode&fs.ModeSymlink != 0:
		kind = "a symbolic link"
	case mode&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		kind = "a socket"
	case mode&fs.ModeDevice != 0:
		kind = "a device"
	}
	return &badFileError{Name: name, Reason: "is " + kind + ", not a regular file, and was not read " +
		"(write the batch itself into the inbox under a temporary name, then rename it)"}
}

// errChanged: the file changed between the scan and the read (it is still
// being written, or was replaced). It is looked at again once settled.
var errChanged = errors.New("changed while being read")

// refused reports whether an error taking a file is the file's fault (its
// name or content, or it is not a readable regular file): such a file goes
// to rejected/. Anything else (the store, the disk, shutdown) leaves the file
// where it is, to be tried again. The decision is by type, so a new kind of
// parse error is refused without this package knowing of it.
func refused(err error) bool {
	var pe *cdc.ParseError
	var bf *badFileError
	return errors.As(err, &pe) || errors.As(err, &bf)
}

// fitName returns name if it has at most limit bytes, or else a shorter name
// that keeps its start and its extension, with a hash of the whole name in
// between so that different long names stay different:
// "nnn…nnn~1a2b3c4d.csv".
func fitName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	tag := "~" + hex.EncodeToString(sum[:4])
	ext := filepath.Ext(name)
	if len(ext) > 16 {
		ext = "" // not an extension, just a dot in a long name
	}
	stem := strings.TrimSuffix(name, ext)
	keep := min(len(stem), max(0, limit-len(tag)-len(ext)))
	for keep > 0 && keep < len(stem) && !utf8.RuneStart(stem[keep]) {
		keep-- // do not cut a character in half
	}
	return stem[:keep] + tag + ext
}

// freeName returns name, or name with a "-N" suffix before its extension,
// shortened if need be (fitName) so that it and it+extra fit maxName, such
// that neither it nor it+extra exists in dir.
func freeName(dir, name, extra string) string {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; ; i++ {
		n := name
		if i > 0 {
			n = stem + "-" + strconv.Itoa(i) + ext
		}
		n = fitName(n, maxName-len(extra))
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			continue
		}
		if extra != "" {
			if _, err := os.Lstat(filepath.Join(dir, n+extra)); err == nil {
				continue
			}
		}
		return n
	}
}

// inbox takes batch files from a directory: MERGE, then move. The order
// (commit, then move) and the store's sha256 ledger make a crash between the
// two harmless: on restart the file is still in the inbox, MERGE reports it
// as a duplicate without applying anything, and it is moved.
//
// A file is taken only when complete: it arrived by a rename from a
// temporary name in the inbox (the contract for writers), or its size and
// modification time stayed the same for settle. fsnotify reports a file
// created in place and one renamed into the inbox alike (Create), so a
// Create alone proves nothing; a rename inside the inbox shows as the
// temporary name's Rename followed at once by the new name's Create.
type inbox struct {
	dir   string
	clock Clock
	log   *slog.Logger
	// ingest MERGEs one file's content; ctx is the daemon's work context
	// (cancelled only when the shutdown timeout runs out).
	ingest func(name string, data []byte) (cdc.Result, error)
	// merged is called after each file taken (merged, duplicate or empty).
	merged func(cdc.Result)
	// rejected is called after a file was moved to rejected/.
	rejected func(name string, err error)
	// audit, if set, records a rejection the inbox decides itself (ingest
	// records its own); its error leaves the file to be tried again.
	audit func(name string, size int64, err error) error
	// failed is called when a file could not be ingested and stays.
	failed func(name string, err error)
	// recovered is called after a pass over the inbox met no failure.
	recovered func()
	// pollInterval returns inbox.poll_interval, settle inbox.settle (they
	// change on reload).
	pollInterval, settle func() time.Duration
	// pollChanged is signalled when poll_interval or settle was reloaded.
	pollChanged <-chan struct{}

	watcher *fsnotify.Watcher
	// Only open and then the loop's goroutine use these.
	seen     map[string]*observed // files waiting, by name
	dirs     map[string]bool      // directories already logged
	renaming bool                 // the last event renamed a temporary name away

	mu      sync.Mutex
	backlog int
	oldest  time.Time // modification time of the oldest waiting file
}

// open creates the inbox's directories and starts watching it.
func (in *inbox) open() error {
	for _, d := range []string{in.dir, filepath.Join(in.dir, ProcessedDir), filepath.Join(in.dir, RejectedDir)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
	}
	in.seen, in.dirs = map[string]*observed{}, map[string]bool{}
	// The backlog is known from the start, before the loop takes anything.
	files, err := in.scan()
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	in.setState(files)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("inbox: watch %s: %w", in.dir, err)
	}
	if err := w.Add(in.dir); err != nil {
		_ = w.Close()
		return fmt.Errorf("inbox: watch %s: %w", in.dir, err)
	}
	in.watcher = w
	return nil
}

// close stops watching.
func (in *inbox) close() error {
	if in.watcher == nil {
		return nil
	}
	return in.watcher.Close()
}

// state returns the backlog and the oldest waiting file's modification time.
func (in *inbox) state() (int, time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.backlog, in.oldest
}

func (in *inbox) setState(files []inboxFile) {
	oldest := time.Time{}
	if len(files) > 0 {
		oldest = files[0].modTime
	}
	in.setBacklog(len(files), oldest)
}

func (in *inbox) setBacklog(n int, oldest time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.backlog, in.oldest = n, oldest
}

// scan lists the batch files waiting in the inbox, oldest first
// (modification time, then name). It never follows a link: a symbolic link
// or other non-regular entry is listed with bad set. Directories (other than
// processed/ and rejected/, which are skipped) are left alone and logged the
// first time they are seen.
func (in *inbox) scan() ([]inboxFile, error) {
	entries, err := os.ReadDir(in.dir)
	if err != nil {
		return nil, fmt.Errorf("scan inbox: %w", err)
	}
	var out []inboxFile
	present := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if ignored(name) || name == ProcessedDir || name == RejectedDir {
			continue
		}
		info, err := e.Info() // lstat: a link is reported as a link
		if err != nil {
			continue // vanished since ReadDir
		}
		present[name] = true
		if info.IsDir() {
			if !in.dirs[name] {
				in.dirs[name] = true
				in.log.Warn("directory in the inbox left alone: only files are taken", "dir", name)
			}
			continue
		}
		f := inboxFile{name: name, modTime: info.ModTime(), size: info.Size(), info: info}
		if !info.Mode().IsRegular() {
			f.bad = notRegular(name, info.Mode())
		}
		out = append(out, f)
	}
	for name := range in.dirs {
		if !present[name] {
			delete(in.dirs, name) // logged again if it comes back
		}
	}
	for name := range in.seen {
		if !present[name] {
			delete(in.seen, name)
		}
	}
	slices.SortFunc(out, func(a, b inboxFile) int {
		if c := a.modTime.Compare(b.modTime); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	return out, nil
}

// loop takes files until ctx is done: at start (files already there), on
// file-system events, and every poll interval as a safety net. A file being
// ingested when ctx ends is finished (committed and moved) first.
func (in *inbox) loop(ctx context.Context) error {
	for {
		retry := in.drain(ctx)
		timer := in.clock.NewTimer(in.pollInterval())
		var settled Timer = stopped{}
		if !retry.IsZero() {
			settled = in.clock.NewTimer(max(0, retry.Sub(in.clock.Now())))
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				settled.Stop()
				return nil
			case ev, ok := <-in.watcher.Events:
				if !ok {
					timer.Stop()
					settled.Stop()
					return nil
				}
				if in.event(ev) {
					break wait
				}
			case err, ok := <-in.watcher.Errors:
				if ok {
					// An overflowed event queue loses events; the rescan
					// right after (and the poll) finds the files anyway.
					in.log.Warn("inbox watcher error; rescanning", "err", err)
				}
				break wait
			case <-in.pollChanged:
				break wait
			case <-timer.C():
				break wait
			case <-settled.C():
				break wait
			}
		}
		timer.Stop()
		settled.Stop()
	}
}

// event records what a file-system event says and reports whether it may
// announce a new file (then the inbox is scanned).
func (in *inbox) event(ev fsnotify.Event) bool {
	renaming := in.renaming
	in.renaming = false
	if filepath.Dir(ev.Name) != filepath.Clean(in.dir) {
		return false
	}
	name := filepath.Base(ev.Name)
	if ignored(name) {
		// A temporary name renamed: if to a batch name in the inbox, that
		// name's Create is the next event (inotify queues both at once).
		in.renaming = ev.Has(fsnotify.Rename)
		return false
	}
	switch {
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		delete(in.seen, name) // moved away (by us, usually)
		return false
	case ev.Has(fsnotify.Create):
		if renaming {
			in.seen[name] = &observed{renamed: true}
		} else {
			delete(in.seen, name) // created in place, or renamed from elsewhere: settle
		}
	case ev.Has(fsnotify.Write):
		// Being written: wait for settle from now. The settle timer looks
		// again, so a write needs no scan (a copy makes thousands).
		if o := in.seen[name]; o != nil {
			o.renamed = false
			o.since = in.clock.Now()
		}
		return false
	case !ev.Has(fsnotify.Chmod):
		return false
	}
	in.log.Debug("inbox event", "op", ev.Op.String(), "file", name)
	return true
}

// pump handles the events already queued, without waiting, so that what is
// known of a file is current before it is taken. It reports whether one may
// announce a new file.
func (in *inbox) pump() bool {
	fresh := false
	for {
		select {
		case ev, ok := <-in.watcher.Events:
			if !ok {
				return fresh
			}
			fresh = in.event(ev) || fresh
		default:
			return fresh
		}
	}
}

// waiting reports whether f may still be being written, and until when to
// wait: unless it was renamed into the inbox, it must have kept its size
// and modification time (and had no write event) for settle.
func (in *inbox) waiting(f inboxFile) (time.Time, bool) {
	now := in.clock.Now()
	o := in.seen[f.name]
	if o == nil || !o.known || o.size != f.size || !o.modTime.Equal(f.modTime) {
		renamed := o != nil && o.renamed && !o.known // its first look since the rename
		o = &observed{known: true, size: f.size, modTime: f.modTime, since: now, renamed: renamed}
		in.seen[f.name] = o
	}
	if o.renamed {
		return time.Time{}, false
	}
	if until := o.since.Add(in.settle()); now.Before(until) {
		return until, true
	}
	return time.Time{}, false
}

// drain ingests every waiting file, oldest first, and rescans until the
// inbox is empty, ctx is done or a file fails for a reason that a retry may
// fix (then it waits for the next poll, keeping the order). Files still
// being written are left for later: drain returns when to look again.
func (in *inbox) drain(ctx context.Context) (retry time.Time) {
	for ctx.Err() == nil {
		files, err := in.scan()
		if err != nil {
			in.failed("", err)
			return retry
		}
		in.setState(files)
		retry = time.Time{}
		taken, fresh := 0, false
		var firstDeferred time.Time // files are in age order: the first is the oldest
		later := func(f inboxFile, until time.Time) {
			if retry.IsZero() || until.Before(retry) {
				retry = until
			}
			if firstDeferred.IsZero() {
				firstDeferred = f.modTime
			}
		}
		for i, f := range files {
			if ctx.Err() != nil {
				return retry
			}
			fresh = in.pump() || fresh
			if f.bad == nil {
				if until, ok := in.waiting(f); ok {
					in.log.Debug("inbox file may still be being written; waiting for it to settle", "file", f.name)
					later(f, until)
					continue
				}
			}
			err := in.take(f)
			if errors.Is(err, errChanged) {
				in.log.Debug("inbox file changed while being read; waiting for it to settle", "file", f.name)
				delete(in.seen, f.name)
				later(f, in.clock.Now().Add(in.settle()))
				continue
			}
			if err != nil {
				in.failed(f.name, err)
				return retry
			}
			taken++
			oldest := firstDeferred
			if oldest.IsZero() && i+1 < len(files) {
				oldest = files[i+1].modTime
			}
			in.setBacklog(len(files)-taken, oldest)
		}
		if taken == 0 && !fresh {
			in.recovered()
			return retry
		}
	}
	return retry
}

// readFile reads the inbox file f whole. It opens it without following a
// symbolic link and without blocking on a FIFO (either may have been put in
// its place since the scan), and reads only a regular file that is still
// the one the scan listed, with the same size and modification time.
func (in *inbox) readFile(f inboxFile) ([]byte, error) {
	path := filepath.Join(in.dir, f.name)
	fd, err := openNoFollow(path)
	if err != nil {
		if info, lerr := os.Lstat(path); lerr == nil && !info.Mode().IsRegular() {
			return nil, notRegular(f.name, info.Mode())
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, &badFileError{Name: f.name, Reason: "cannot be read", Err: err}
		}
		return nil, fmt.Errorf("read %s: %w", f.name, err)
	}
	defer fd.Close()
	info, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.name, err)
	}
	switch {
	case !info.Mode().IsRegular():
		return nil, notRegular(f.name, info.Mode())
	case !os.SameFile(info, f.info) || info.Size() != f.size || !info.ModTime().Equal(f.modTime):
		return nil, errChanged
	}
	data := make([]byte, 0, f.size+1) // one more, to see it grow
	for {
		n, err := fd.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.name, err)
		}
		if len(data) == cap(data) {
			return nil, errChanged // longer than when it was listed
		}
	}
	if int64(len(data)) != f.size {
		return nil, errChanged
	}
	return data, nil
}

// take ingests one file and moves it. A nil error means the file left the
// inbox (or vanished); errChanged that it is to be looked at again.
func (in *inbox) take(f inboxFile) error {
	if f.bad != nil {
		return in.auditedReject(f, f.bad)
	}
	data, err := in.readFile(f)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // taken away by someone else
	case refused(err):
		return in.auditedReject(f, err)
	case err != nil:
		return err
	}
	res, err := in.ingest(f.name, data)
	switch {
	case err == nil:
	case refused(err):
		return in.reject(f.name, err)
	default:
		return err
	}
	path := filepath.Join(in.dir, f.name)
	dir := filepath.Join(in.dir, ProcessedDir)
	if err := os.MkdirAll(dir, 0o750); err != nil { // an operator may have removed it
		return fmt.Errorf("move %s to %s/: %w", f.name, ProcessedDir, err)
	}
	dst := freeName(dir, f.name, "")
	if err := os.Rename(path, filepath.Join(dir, dst)); err != nil {
		return fmt.Errorf("move %s to %s/: %w", f.name, ProcessedDir, err)
	}
	in.merged(res)
	return nil
}

// auditedReject records a rejection the inbox decided and moves the file.
func (in *inbox) auditedReject(f inboxFile, cause error) error {
	if in.audit != nil {
		if err := in.audit(f.name, f.size, cause); err != nil {
			return err
		}
	}
	return in.reject(f.name, cause)
}

// reject moves a refused file to rejected/ with NAME.error beside it. The
// .error file is written first (atomically), under the name the file will
// get, so a crash leaves the file in the inbox to be refused again. A link
// or FIFO is moved itself, never what it points to.
func (in *inbox) reject(name string, cause error) error {
	dir := filepath.Join(in.dir, RejectedDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("reject %s: %w", name, err)
	}
	dst := freeName(dir, name, errorSuffix)
	msg := fmt.Sprintf("%s\n", cause.Error())
	reason := filepath.Join(dir, dst+errorSuffix)
	tmp := filepath.Join(dir, "."+fitName(dst+errorSuffix, maxName-len(".")-len(".tmp"))+".tmp")
	if err := os.WriteFile(tmp, []byte(msg), 0o640); err != nil {
		return fmt.Errorf("reject %s: %w", name, err)
	}
	if err := os.Rename(tmp, reason); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("reject %s: %w", name, err)
	}
	if err := os.Rename(filepath.Join(in.dir, name), filepath.Join(dir, dst)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(reason) // taken away by someone else
			return nil
		}
		return fmt.Errorf("move %s to %s/: %w", name, RejectedDir, err)
	}
	in.rejected(dst, cause)
	return nil
}
