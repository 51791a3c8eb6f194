package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The gate every bbolt transaction of an open store passes (guardedBolt's
// View, Update and Begin). Normally it only counts them. An online
// compaction (CompactOnline) closes it in two steps: first to writers
// (readers go on; the file no longer changes, so a copy made now is the
// store as it is), then to everyone for the swap of the bbolt handle. A
// transaction that meets a closed gate waits until it opens again: callers
// see a slow call, never an error. Closing waits a bounded time for the
// transactions already admitted to end; if they do not, the gate opens
// again and the compaction is skipped with an *BusyError.

// gateLevel says who the gate holds back.
type gateLevel int

const (
	gateOpen    gateLevel = iota
	gateWriters           // new write transactions wait
	gateAll               // every new transaction waits
)

type gate struct {
	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) when level or a count changes
	bolt    *bolt.DB
	level   gateLevel
	// readers and writers count transactions admitted and not yet ended
	// (View, Update) or not yet begun (Begin: once begun, bbolt counts the
	// read transaction in Stats().OpenTxN).
	readers, writers int
	// compacting is held by an online compaction from start to end, and by
	// Close, which so waits for a compaction to finish.
	compacting sync.Mutex
}

func newGate(b *bolt.DB) *gate {
	return &gate{bolt: b, changed: make(chan struct{})}
}

// broadcast wakes every waiter. g.mu is held.
func (g *gate) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// enter admits one transaction (waiting while the gate holds it back) and
// returns the handle to run it on and the function that ends the admission.
func (g *gate) enter(write bool) (*bolt.DB, func()) {
	g.mu.Lock()
	for g.level == gateAll || (write && g.level == gateWriters) {
		ch := g.changed
		g.mu.Unlock()
		<-ch
		g.mu.Lock()
	}
	if write {
		g.writers++
	} else {
		g.readers++
	}
	b := g.bolt
	g.mu.Unlock()
	return b, func() {
		g.mu.Lock()
		if write {
			g.writers--
		} else {
			g.readers--
		}
		if g.level != gateOpen {
			g.broadcast()
		}
		g.mu.Unlock()
	}
}

// BusyError means an online compaction was skipped because transactions
// already running did not end within the wait: the store was left as it
// was, and every transaction went on.
type BusyError struct {
	Waited           time.Duration
	Writers, Readers int // still running when the wait ended
}

func (e *BusyError) Error() string {
	if e.Writers > 0 {
		return fmt.Sprintf("a write transaction still ran after %s (skipped; the next scheduled compaction tries again)", e.Waited)
	}
	return fmt.Sprintf("%d read transaction(s) (an HTTP, SQL or backup read, a snapshot) still ran after %s (skipped; the next scheduled compaction tries again)", e.Readers, e.Waited)
}

// ErrBusy matches a *BusyError with errors.Is.
var ErrBusy = errors.New("store busy")

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// gatePoll is how often a closing gate looks at bbolt's count of open read
// transactions (snapshots end without passing the gate).
const gatePoll = 2 * time.Millisecond

// hold closes the gate to level and waits, at most wait, for the
// transactions it holds back that are running to end. On failure the gate
// is back at its previous level.
func (g *gate) hold(ctx context.Context, level gateLevel, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.level
	g.level = level
	for {
		readers := 0
		if level == gateAll {
			readers = g.readers + g.bolt.Stats().OpenTxN
		}
		if g.writers == 0 && readers == 0 {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			g.level = prev
			g.broadcast()
			if err := ctx.Err(); err != nil {
				return err
			}
			return &BusyError{Waited: wait, Writers: g.writers, Readers: readers}
		}
		ch := g.changed
		g.mu.Unlock()
		t := time.NewTimer(min(left, gatePoll))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		g.mu.Lock()
	}
}

// open opens the gate again, with b as the handle from now on.
func (g *gate) open(b *bolt.DB) {
	g.mu.Lock()
	g.bolt = b
	g.level = gateOpen
	g.broadcast()
	g.mu.Unlock()
}

// current is the handle, for what is no transaction (Stats, Info).
func (g *gate) current() *bolt.DB {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bolt
}

// Begin begins a read transaction the caller ends (a Snapshot). Write
// transactions go through Update only: the gate must see them end.
func (g guardedBolt) Begin(writable bool) (*bolt.Tx, error) {
	if writable {
		return nil, errors.New("store: a write transaction runs through Update")
	}
	b, done := g.gate.enter(false)
	defer done()
	return b.Begin(false)
}

// Stats is bbolt's statistics of the current handle.
func (g guardedBolt) Stats() bolt.Stats { return g.gate.current().Stats() }

// Close closes the file, after a running online compaction.
func (g guardedBolt) Close() error {
	g.gate.compacting.Lock()
	defer g.gate.compacting.Unlock()
	return g.gate.current().Close()
}

// errChecked rolls back the transaction Consistency checks in.
var errChecked = errors.New("checked")
