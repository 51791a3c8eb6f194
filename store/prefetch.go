package store

import (
	"bytes"
	"fmt"
	"iter"
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
// key the table does not have. Both point into one slab of the chunk's.
type prefetchChunk struct {
	keys, vals [][]byte
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
// change afterwards. They are sorted and deduplicated here; a Get of a key
// not announced, or of a key already put in this commit, looks it up
// itself. Prefetch is worth it for a commit of thousands of scattered keys;
// call it at most once, before the first Get.
func (w *TableWriter) Prefetch(keys iter.Seq[Row]) error {
	if w.pre != nil || w.started {
		return fmt.Errorf("prefetch: called twice, or after a put")
	}
	var (
		slab []byte
		ends []int
		err  error
	)
	for k := range keys {
		if slab, err = w.s.EncodeKey(slab, k); err != nil {
			return fmt.Errorf("prefetch: %w", err)
		}
		ends = append(ends, len(slab))
	}
	if len(ends) == 0 {
		return nil
	}
	list := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		list[i] = slab[start:end:end]
		start = end
	}
	if !slices.IsSortedFunc(list, bytes.Compare) {
		slices.SortFunc(list, bytes.Compare)
	}
	list = slices.CompactFunc(list, bytes.Equal)
	p := &prefetcher{ch: make(chan prefetchChunk, prefetchAhead), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.ch)
		p.err = w.guard.guard(func() error { return p.run(w.tb.Tx().DB(), w.t.name, list) })
	}()
	w.pre = p
	return nil
}

// run looks list up in a read transaction of db, chunk by chunk, until
// done or stopped. It runs under the store's guard: a panic of bbolt's on
// a damaged page, or a fault on a page past the end of a file cut short,
// is an error for the writer to report, not the end of the process.
func (p *prefetcher) run(db *bolt.DB, table string, list [][]byte) error {
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
	n := prefetchFirst
	for len(list) > 0 {
		n = min(n, len(list))
		c := prefetchChunk{keys: list[:n:n], vals: make([][]byte, n)}
		// The values are copied (the read transaction's pages are gone
		// after it) into one slab; ends[i] is where value i ends in it,
		// and a value is cut out only once the slab has stopped moving.
		var slab []byte
		ends := make([]int, n)
		for i, k := range c.keys {
			v := ix.get(k)
			if v == nil {
				ends[i] = -1
				continue
			}
			slab = append(slab, v...)
			ends[i] = len(slab)
		}
		start := 0
		for i, end := range ends {
			if end >= 0 {
				c.vals[i] = slab[start:end:end]
				start = end
			}
		}
		select {
		case p.ch <- c:
		case <-p.stop:
			return nil
		}
		list, n = list[n:], prefetchChunkKeys
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
