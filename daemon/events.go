package daemon

import (
	"log/slog"
	"sync"
	"time"

	"github.com/upicdc/upicdc/daemon/httpapi"
	"github.com/upicdc/upicdc/store"
)

// Bounds of the commit feed.
const (
	// subscriberBuffer is how many events a subscriber may have unread; one
	// that falls further behind is dropped (its stream ends, and the
	// browser reconnects and reloads).
	subscriberBuffer = 1024
	// maxCatchUp is the most versions of one table published at once (a
	// rebuild or a long batch commits many); older ones are summarised by
	// the newest, which is what a reader reloads from anyway.
	maxCatchUp = 1000
)

// commitFeed fans the daemon's commits out to /api/v1/events subscribers.
// The daemon calls committed after each MERGE and each micro-batch run
// (which may also have rebuilt tables); it reads the tables' latest
// versions then, so every committed version of every table is published
// once, in order, whoever wrote it. Nothing polls.
type commitFeed struct {
	db  *store.DB
	log *slog.Logger

	mu     sync.Mutex
	seen   map[string]int64 // table → last version published
	subs   map[chan httpapi.Event]struct{}
	closed bool
}

func newCommitFeed(db *store.DB, log *slog.Logger) (*commitFeed, error) {
	f := &commitFeed{db: db, log: log, seen: map[string]int64{}, subs: map[chan httpapi.Event]struct{}{}}
	for _, t := range db.Tables() {
		v, err := db.LatestVersion(t.Name)
		if err != nil {
			return nil, err
		}
		f.seen[t.Name] = v
	}
	return f, nil
}

// subscribe returns a channel of events and its cancel. After close the
// channel is closed at once.
func (f *commitFeed) subscribe() (<-chan httpapi.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan httpapi.Event, subscriberBuffer)
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// committed publishes every version committed since the last call.
func (f *commitFeed) committed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.db.Tables() {
		latest, err := f.db.LatestVersion(t.Name)
		if err != nil {
			f.log.Warn("commit feed: reading the latest version", "table", t.Name, "err", err)
			continue
		}
		from := max(f.seen[t.Name]+1, latest-maxCatchUp+1)
		for v := from; v <= latest; v++ {
			ev := httpapi.Event{Table: t.Name, Version: v}
			if c, err := f.db.Commit(t.Name, v); err == nil {
				ev.Time, ev.Operation = time.UnixMilli(c.Timestamp).UTC(), c.Operation
			}
			f.publish(ev)
		}
		f.seen[t.Name] = max(f.seen[t.Name], latest)
	}
}

// publish sends ev to every subscriber without blocking; callers hold mu.
func (f *commitFeed) publish(ev httpapi.Event) {
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
			f.log.Warn("event subscriber too far behind; closing its stream", "buffer", subscriberBuffer)
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// close ends every stream (the server is shutting down: open streams must
// not hold up its graceful shutdown) and refuses new subscribers.
func (f *commitFeed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}
