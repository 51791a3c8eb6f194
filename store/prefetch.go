package store

import (
	"bytes"
	"fmt"
	"iter"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A commit that scatters its keys over a big table spends about a third of
// its time in bbolt's searches for them: one lookup per key, each a walk
// from the root through pages nobody has touched this commit. Those
// lookups need not wait for the puts. The writer holds bbolt's writer lock,
// so a read transaction begun now sees exactly the state the commit started
// from, and for a key the commit has not yet put that state is also what
// the writer would find. A prefetcher looks the commit's keys up in such a
// transaction, in a goroutine of its own, and hands the values over in key
// order while the writer applies and puts on the other core.
//
// The read transaction must end before bbolt's commit: a commit that grows
// the file remaps it, and a remap waits for every read transaction. So
// every commit stops its writers' prefetchers as soon as its function
// returns (see stopPrefetch).

// prefetchChunk is a run of looked-up keys, in order; vals[i] is nil for a
// key the table does not have. Keys and values are copies in slabs of the
// goroutine's, so the slabs the writer has passed are garbage.
type prefetchChunk struct {
	keys, vals [][]byte
}

// keyList is the announced keys, encoded one after another into slab:
// key i ends at ends[i], and order lists them by key. Eight bytes a key
// besides the keys themselves, for a list that may hold a million.
type keyList struct {
	slab  []byte
	ends  []uint32
	order []uint32
}

func (l *keyList) key(i uint32) []byte {
	start := uint32(0)
	if i > 0 {
		start = l.ends[i-1]
	}
	return l.slab[start:l.ends[i]:l.ends[i]]
}

// prefetcher hands a read transaction's lookups of sorted keys to the
// writer (see above).
type prefetcher struct {
	ch   chan prefetchChunk
	stop chan struct{}
	done chan struct{}
	err  error // the goroutine's; read once done is closed
	cur  prefetchChunk
	i    int // the next entry of cur
	gone bool
}

// prefetchFirst and prefetchChunkKeys size the chunks: a small first one
// so that the writer waits little for it, then chunks big enough that the
// channel costs nothing next to the searches.
const (
	prefetchFirst     = 128
	prefetchChunkKeys = 1024
	prefetchAhead     = 16 // chunks the goroutine may run ahead by
)

// Prefetch announces the keys (the first KeyColumns values of each row)
// the writer is about to Get, so that a goroutine looks them up while the
// writer works. Keys are encoded before Prefetch returns, so the rows may
// change afterwards. They may come in any order and more than once; a Get
// of a key not announced, or of a key already put in this commit, looks it
// up itself. Prefetch is worth it for a commit of thousands of scattered
// keys, and does nothing for an empty table; call it at most once, before
// the first Get.
func (w *TableWriter) Prefetch(keys iter.Seq[Row]) error {
	if w.pre != nil || w.started {
		return fmt.Errorf("prefetch: called twice, or after a put")
	}
	if len(w.tail) == 0 {
		return nil // no key in the tree or the runs: nothing to look up
	}
	var (
		l   keyList
		err error
	)
	for k := range keys {
		if l.slab, err = w.s.EncodeKey(l.slab, k); err != nil {
			return fmt.Errorf("prefetch: %w", err)
		}
		if len(l.slab) > math.MaxUint32 {
			return nil // not worth it; Get looks every key up itself
		}
		l.ends = append(l.ends, uint32(len(l.slab)))
	}
	if len(l.ends) == 0 {
		return nil
	}
	l.order = make([]uint32, len(l.ends))
	for i := range l.order {
		l.order[i] = uint32(i)
	}
	byKey := func(a, b uint32) int { return bytes.Compare(l.key(a), l.key(b)) }
	if !slices.IsSortedFunc(l.order, byKey) {
		slices.SortFunc(l.order, byKey)
	}
	p := &prefetcher{ch: make(chan prefetchChunk, prefetchAhead), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.ch)
		p.err = w.guard.guard(func() error { return p.run(w.tb.Tx().DB(), w.t.name, &l) })
	}()
	w.pre = p
	return nil
}

// run looks list up in a read transaction of db, chunk by chunk, until
// done or stopped. It runs under the store's guard: a panic of bbolt's on
// a damaged page, or a fault on a page past the end of a file cut short,
// is an error for the writer to report, not the end of the process.
func (p *prefetcher) run(db *bolt.DB, table string, l *keyList) error {
	tx, err := db.Begin(false)
	if err != nil {
		return fmt.Errorf("prefetch: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	tb, err := tableBucket(tx, table)
	if err != nil {
		return err
	}
	ix, err := openIndex(tb)
	if err != nil {
		return err
	}
	var (
		prev  []byte
		slabs arena // copies: the read transaction's pages are gone after it
	)
	order, n := l.order, prefetchFirst
	for len(order) > 0 {
		c := prefetchChunk{keys: make([][]byte, 0, n), vals: make([][]byte, 0, n)}
		for len(order) > 0 && len(c.keys) < n {
			k := l.key(order[0])
			order = order[1:]
			if prev != nil && bytes.Equal(k, prev) {
				continue
			}
			prev = k
			var val []byte
			if v := ix.get(k); v != nil {
				val = slabs.carve(func(b []byte) []byte { return append(b, v...) })
			}
			c.keys = append(c.keys, slabs.carve(func(b []byte) []byte { return append(b, k...) }))
			c.vals = append(c.vals, val)
		}
		select {
		case p.ch <- c:
		case <-p.stop:
			return nil
		}
		n = prefetchChunkKeys
	}
	return nil
}

// get returns key's value as the commit found it (nil: absent), if key
// was announced and not passed; ok is false otherwise. Keys must be asked
// for in increasing order: the ones passed over are dropped.
func (p *prefetcher) get(key []byte) (v []byte, ok bool, err error) {
	for !p.gone {
		for ; p.i < len(p.cur.keys); p.i++ {
			switch c := bytes.Compare(p.cur.keys[p.i], key); {
			case c == 0:
				p.i++
				return p.cur.vals[p.i-1], true, nil
			case c > 0:
				return nil, false, nil
			}
		}
		c, open := <-p.ch
		if !open {
			p.gone = true
			<-p.done
			return nil, false, p.err
		}
		p.cur, p.i = c, 0
	}
	return nil, false, nil
}

// close stops the goroutine and waits for it: its read transaction is
// over when close returns.
func (p *prefetcher) close() {
	if p == nil {
		return
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.gone = true
}
