package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Runs: a two-level rows tree.
//
// bbolt is copy-on-write: a commit rewrites every leaf page it touches. A
// commit of 100k random keys into a 10M-key rows tree touches ~55k of its
// ~125k leaf pages, about one 8 KiB page per row. So once a table's rows
// tree holds Options.RunMinKeys keys and its commits scatter their new keys
// among the tree's (see takesRuns), a commit's rows values go instead into
// a run of their own: a fresh bucket, named by the commit's version,
// that takes them in key order (the order TableWriter is written in), so
// it is written sequentially and packed full, beside a Bloom filter of its
// keys. A key's current image is the one in the newest run holding it,
// else the rows tree's (rowIndex).
//
// When the runs hold an eighth as many keys as the rows tree, or there are
// maxRuns of them, they are swept into the rows tree in key order, in steps
// of at most runPolicy.stepKeys keys, each step its own transaction. A step's
// keys land on neighbouring pages, about eight to a page at any table size,
// so a page rewrite absorbs eight rows instead of one, and the pages one
// step dirties stay bounded whatever the table's size. A step records in
// the table's meta bucket which runs it sweeps and where it stopped. A
// sweep is idempotent (a swept run's values equal what the steps put in
// the rows tree, and newer runs shadow both), so a crash between steps
// loses nothing; the last step drops the swept runs.
//
// Counts are kept in bbolt's per-bucket sequence: the rows tree's is its
// number of keys (0 in a store written before runs: counted once, at the
// first commit), a run's the number of keys it holds. A run's runInfo
// says how many of its keys were new to the table, which the rows tree's
// count and fill need when the run is swept.

var (
	subRuns    = []byte("runs")    // run version → bucket: encoded key → rows value
	subRunInfo = []byte("runinfo") // run version → runInfo
	keySweep   = []byte("sweep")   // in meta: the newest run swept, then the next key to sweep
)

// DefaultRunMinKeys is Options.RunMinKeys's default. A commit of random
// keys into the rows tree dirties most of its pages, which it holds in
// memory until it commits: 100k-row files into a tree growing to a million
// keys took the heap of an ingest from 53 to 278 MiB. From 256k keys on,
// runs keep it below 100 MiB at the same speed (measured over the first 32
// files of 100k random rows, and BenchmarkMerge into 1M rows).
const DefaultRunMinKeys = 1 << 18

// runPolicy says when a table's commits write runs and when runs are swept.
type runPolicy struct {
	// minKeys: a rows tree of at least this many keys takes runs (< 0:
	// never).
	minKeys int64
	// share: the runs are swept when they hold 1/share as many keys as the
	// rows tree (0: only maxRuns starts a sweep).
	share int64
	// maxRuns bounds the runs a lookup may have to try.
	maxRuns int
	// stepKeys bounds one sweep step (its transaction's dirty pages, which
	// it holds in memory, as bbolt nodes and then as page buffers, until
	// its commit). Measured sweeping 400k keys into a 4M-key tree: 100k
	// keys a step peaked at 255-273 MiB of heap, 25k at 83-87 MiB (about
	// what the MERGE before it takes), in the same time or less.
	stepKeys int64
}

func defaultRunPolicy(minKeys int64) runPolicy {
	if minKeys == 0 {
		minKeys = DefaultRunMinKeys
	}
	return runPolicy{minKeys: minKeys, share: 8, maxRuns: 16, stepKeys: 25_000}
}

// takesRuns reports whether a commit into a rows tree of mainKeys keys
// beside runs writes a run. Once there are runs, every commit does: a put
// into the rows tree would be shadowed by an older run's image of the key.
// Otherwise a big table's commit does when the table's last commit
// scattered its new keys among the tree's (see scattered): keys that grow
// with time (UPI RRNs) touch only the tree's tail, which a commit into the
// tree rewrites cheaply and a run would only write twice.
func (p runPolicy) takesRuns(mainKeys int64, runs int, scattered bool) bool {
	return runs > 0 || p.minKeys > 0 && mainKeys >= p.minKeys && scattered
}

// newKeys counts the keys a commit added to a table: appended past the
// tree's last key, and inserted among its keys. Stored as 8 bytes each, in
// the table's meta (keyNewKeys, its last commit that added any) and at the
// head of each run's info.
type newKeys struct{ appended, inserted int64 }

// keyNewKeys, in a table's meta: its last commit's newKeys.
var keyNewKeys = []byte("newkeys")

func (n newKeys) encode() []byte { return append(be64(n.appended), be64(n.inserted)...) }

func decodeNewKeys(v []byte) (newKeys, bool) {
	if len(v) < 16 {
		return newKeys{}, false
	}
	return newKeys{appended: int64(beUint(v)), inserted: int64(beUint(v[8:]))}, true
}

func (n newKeys) total() int64 { return n.appended + n.inserted }

// mostlyAppended: the keys were mostly appended, at most a tenth as many
// inserted. bbolt then packs the pages it splits (see TableWriter.flush);
// otherwise the keys are scattered, and a big table's next commit takes a
// run (see takesRuns).
func (n newKeys) mostlyAppended() bool { return n.appended > 0 && n.inserted*10 <= n.appended }

func (n newKeys) scattered() bool { return n.inserted > 0 && !n.mostlyAppended() }

// scattered reports whether the table's last commit that added keys
// scattered them. A store written before the count was kept says no until
// its next such commit.
func scattered(meta *bolt.Bucket) bool {
	n, ok := decodeNewKeys(meta.Get(keyNewKeys))
	return ok && n.scattered()
}

// run is one run inside a transaction.
type run struct {
	version int64
	b       *bolt.Bucket
	// news is what its commit added; bloom its keys' filter, nil (every key
	// may be in the run) for the run a writer is filling, or a missing or
	// malformed info.
	news  newKeys
	bloom bloom
	c     *bolt.Cursor // get's, made at its first lookup
}

// runInfo is a run's info as stored: its commit's newKeys, then a Bloom
// filter of its keys.
func runInfo(n newKeys, hashes []uint64) []byte { return append(n.encode(), newBloom(hashes)...) }

// rowIndex is a table's current images: its rows tree and its runs.
type rowIndex struct {
	main  *bolt.Bucket
	runs  []run        // newest first
	mainC *bolt.Cursor // get's, made at its first lookup
}

// openIndex reads tb's rows tree and runs.
func openIndex(tb *bolt.Bucket) (rowIndex, error) {
	main, err := subBucket(tb, subRows)
	if err != nil {
		return rowIndex{}, err
	}
	ix := rowIndex{main: main}
	rb := tb.Bucket(subRuns)
	if rb == nil {
		return ix, nil
	}
	infos := tb.Bucket(subRunInfo)
	c := rb.Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		if v != nil || len(k) != 8 {
			return ix, fmt.Errorf("%w: runs: entry %x is no run", ErrCorrupt, k)
		}
		r := run{version: int64(beUint(k)), b: rb.Bucket(k)}
		if infos != nil {
			if v := infos.Get(k); len(v) >= 16 {
				r.news, _ = decodeNewKeys(v)
				r.bloom = validBloom(v[16:])
			}
		}
		ix.runs = append(ix.runs, r)
	}
	return ix, nil
}

// get returns key's current rows value, or nil.
func (ix *rowIndex) get(key []byte) []byte {
	if len(ix.runs) > 0 {
		h := keyHash(key)
		for i := range ix.runs {
			r := &ix.runs[i]
			if !r.bloom.has(h) {
				continue
			}
			if v := lookup(&r.c, r.b, key); v != nil {
				return v
			}
		}
	}
	return lookup(&ix.mainC, ix.main, key)
}

// lookup is b.Get(key) through *c, a cursor of b made at the first lookup:
// a Get makes a cursor each time, and its search stack is three
// allocations, which a cursor kept for every lookup of a commit makes once.
// A cursor's Seek searches from the root, so puts between lookups do not
// upset it.
func lookup(c **bolt.Cursor, b *bolt.Bucket, key []byte) []byte {
	if *c == nil {
		*c = b.Cursor()
	}
	k, v := (*c).Seek(key)
	if v == nil || !bytes.Equal(k, key) {
		return nil
	}
	return v
}

// last returns the greatest key of the rows tree and the runs.
func (ix *rowIndex) last() []byte {
	k, _ := ix.main.Cursor().Last()
	for _, r := range ix.runs {
		if rk, _ := r.b.Cursor().Last(); bytes.Compare(rk, k) > 0 {
			k = rk
		}
	}
	return k
}

// runKeys is the number of keys the runs hold (a key in several counts
// once in each).
func (ix *rowIndex) runKeys() int64 {
	var n int64
	for _, r := range ix.runs {
		n += int64(r.b.Sequence())
	}
	return n
}

// sweepDue reports whether the runs should be swept into a rows tree of
// mainKeys keys.
func (ix *rowIndex) sweepDue(mainKeys int64, p runPolicy) bool {
	return len(ix.runs) >= p.maxRuns || len(ix.runs) > 0 && ix.runKeys()*p.share >= mainKeys
}

// cursor iterates the current images in key order: for a key in several
// runs and the rows tree, the newest run's value.
func (ix *rowIndex) cursor() *indexCursor { return ix.cursorOf(true) }

func (ix *rowIndex) cursorOf(withMain bool) *indexCursor {
	cs := make([]*bolt.Cursor, 0, len(ix.runs)+1)
	for _, r := range ix.runs {
		cs = append(cs, r.b.Cursor())
	}
	if withMain {
		cs = append(cs, ix.main.Cursor())
	}
	return &indexCursor{cs: cs, ks: make([][]byte, len(cs)), vs: make([][]byte, len(cs))}
}

// indexCursor merges the cursors of the runs (newest first) and the rows
// tree.
type indexCursor struct {
	cs     []*bolt.Cursor
	ks, vs [][]byte
	k      []byte // the key last returned
}

func (c *indexCursor) first() ([]byte, []byte) {
	for i, bc := range c.cs {
		c.ks[i], c.vs[i] = bc.First()
	}
	return c.pick()
}

func (c *indexCursor) seek(key []byte) ([]byte, []byte) {
	for i, bc := range c.cs {
		c.ks[i], c.vs[i] = bc.Seek(key)
	}
	return c.pick()
}

func (c *indexCursor) next() ([]byte, []byte) {
	for i, bc := range c.cs {
		if c.ks[i] != nil && bytes.Equal(c.ks[i], c.k) {
			c.ks[i], c.vs[i] = bc.Next()
		}
	}
	return c.pick()
}

// pick returns the least key; on a tie, the first cursor's (the newest).
func (c *indexCursor) pick() ([]byte, []byte) {
	best := -1
	for i, k := range c.ks {
		if k != nil && (best < 0 || bytes.Compare(k, c.ks[best]) < 0) {
			best = i
		}
	}
	if best < 0 {
		c.k = nil
		return nil, nil
	}
	c.k = c.ks[best]
	return c.ks[best], c.vs[best]
}

// keyCount returns the number of keys of the rows tree, counting them (and
// recording the count) in a store written before the count was kept. The
// writers and sweeps that call it run in write transactions.
func keyCount(main *bolt.Bucket) (int64, error) {
	if n := main.Sequence(); n > 0 {
		return int64(n), nil
	}
	if k, _ := main.Cursor().First(); k == nil {
		return 0, nil
	}
	n := main.Stats().KeyN
	if err := main.SetSequence(uint64(n)); err != nil {
		return 0, fmt.Errorf("rows: record the key count: %w", err)
	}
	return int64(n), nil
}

// newRun creates the run of version in tb.
func newRun(tb *bolt.Bucket, version int64) (*bolt.Bucket, error) {
	rb, err := tb.CreateBucketIfNotExists(subRuns)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	b, err := rb.CreateBucket(be64(version))
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", version, err)
	}
	b.FillPercent = 1.0 // written in key order: pack pages full
	return b, nil
}

// finishRun records a filled run's key count and info.
func finishRun(tb, b *bolt.Bucket, version int64, info []byte, keys int) error {
	if err := b.SetSequence(uint64(keys)); err != nil {
		return fmt.Errorf("run %d: %w", version, err)
	}
	infos, err := tb.CreateBucketIfNotExists(subRunInfo)
	if err != nil {
		return fmt.Errorf("run infos: %w", err)
	}
	infos.FillPercent = 1.0
	if err := infos.Put(be64(version), info); err != nil {
		return fmt.Errorf("run %d: info: %w", version, err)
	}
	return nil
}

// sweepAfter sweeps the runs of tables a commit left due. The commit
// stands whatever happens to the sweep: a failed step (a full disk, say)
// is rolled back and logged, and the next commit of the table tries again.
func (db *DB) sweepAfter(ctx context.Context, names []string) {
	for _, name := range names {
		if err := db.sweep(ctx, name); err != nil {
			db.log.Warn("runs not swept; the next commit tries again", "table", name, "err", err)
		}
	}
}

// sweep sweeps table name's runs into its rows tree while a sweep is due
// or under way, a step per transaction. It stops early, with nothing lost,
// when ctx is done.
func (db *DB) sweep(ctx context.Context, name string) error {
	start := time.Now()
	var keys int64
	steps := 0
	for ctx.Err() == nil {
		n, more, err := db.sweepStep(name)
		if err != nil {
			return fmt.Errorf("sweep the runs of %s: %w", name, err)
		}
		keys += n
		if n > 0 || more {
			steps++
		}
		if !more {
			break
		}
	}
	if steps > 0 {
		db.log.Info("swept runs into the rows tree", "table", name, "keys", keys, "steps", steps, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// sweepStep moves up to runPolicy.stepKeys keys of the runs a sweep takes into
// the rows tree, in one transaction. It returns how many keys it moved and
// whether the sweep has more to do.
func (db *DB) sweepStep(name string) (int64, bool, error) {
	var moved int64
	var more bool
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		tb, err := tableBucket(tx, name)
		if err != nil {
			return err
		}
		meta := tb.Bucket(subMeta)
		ix, err := openIndex(tb)
		if err != nil {
			return err
		}
		mainKeys, err := keyCount(ix.main)
		if err != nil {
			return err
		}
		var upto int64
		var from []byte
		if v := meta.Get(keySweep); v != nil {
			if len(v) < 8 {
				return fmt.Errorf("%w: sweep state of %d bytes", ErrCorrupt, len(v))
			}
			upto, from = int64(beUint(v)), v[8:]
		} else {
			if !ix.sweepDue(mainKeys, db.runs) {
				return nil
			}
			upto = ix.runs[0].version
		}
		swept := rowIndex{main: ix.main}
		for _, r := range ix.runs {
			if r.version <= upto {
				swept.runs = append(swept.runs, r)
			}
		}
		c := swept.cursorOf(false)
		var k, v []byte
		if from == nil {
			k, v = c.first()
		} else {
			k, v = c.seek(from)
		}
		// bbolt splits a page at FillPercent when it writes it: keys appended
		// past the rows tree's last one pack pages full, as a commit of them
		// does (see TableWriter.flush).
		var news newKeys
		for _, r := range swept.runs {
			news.appended, news.inserted = news.appended+r.news.appended, news.inserted+r.news.inserted
		}
		if news.mostlyAppended() {
			ix.main.FillPercent = rowsFill
		}
		for ; k != nil && moved < db.runs.stepKeys; k, v = c.next() {
			// v stays valid until the commit: bbolt copies what a node
			// refers to of the mapping before it remaps.
			if err := ix.main.Put(k, v); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			moved++
		}
		if k != nil {
			more = true
			return meta.Put(keySweep, append(be64(upto), k...))
		}
		if err := ix.main.SetSequence(uint64(mainKeys + news.total())); err != nil {
			return err
		}
		rb, infos := tb.Bucket(subRuns), tb.Bucket(subRunInfo)
		for _, r := range swept.runs {
			if err := rb.DeleteBucket(be64(r.version)); err != nil {
				return fmt.Errorf("drop run %d: %w", r.version, err)
			}
			if infos != nil {
				if err := infos.Delete(be64(r.version)); err != nil {
					return fmt.Errorf("drop run %d's info: %w", r.version, err)
				}
			}
		}
		return meta.Delete(keySweep)
	})
	return moved, more, err
}

// bloom is a blocked Bloom filter as stored: the number of probes, then
// 64-byte blocks. A key's probes all fall in one block (one cache line),
// chosen by its hash's low half. It is tested in place, in the mapped file.
type bloom []byte

const (
	bloomBitsPerKey = 10 // ~1% false positives with 7 probes
	bloomProbes     = 7  // 9 bits each of the second hash
	bloomBlock      = 64
)

func newBloom(hashes []uint64) bloom {
	blocks := max(1, (len(hashes)*bloomBitsPerKey+bloomBlock*8-1)/(bloomBlock*8))
	b := make(bloom, 1+blocks*bloomBlock)
	b[0] = bloomProbes
	for _, h := range hashes {
		blk, h2 := b.block(h)
		for i := range uint(bloomProbes) {
			bit := h2 >> (9 * i) & 511
			blk[bit/8] |= 1 << (bit % 8)
		}
	}
	return b
}

// block returns the block of hash h and the hash its probes come from.
func (b bloom) block(h uint64) ([]byte, uint64) {
	n := uint64(len(b)-1) / bloomBlock
	i := (h & 0xffffffff) * n >> 32
	return b[1+i*bloomBlock : 1+(i+1)*bloomBlock], h * 0x9e3779b97f4a7c15
}

// validBloom returns b as a filter, or nil (every key may be in the set)
// when it is malformed.
func validBloom(b []byte) bloom {
	if len(b) < 1+bloomBlock || (len(b)-1)%bloomBlock != 0 || b[0] == 0 || b[0] > 7 {
		return nil
	}
	return b
}

// has reports whether the key of hash h may be in the filter's set; a nil
// filter may hold any key. Filters read from the file go through
// validBloom first.
func (b bloom) has(h uint64) bool {
	if b == nil {
		return true
	}
	blk, h2 := b.block(h)
	for i := range uint(b[0]) {
		bit := h2 >> (9 * i) & 511
		if blk[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

// keyHash is 64-bit FNV-1a (as hash/fnv computes it) with splitmix64's
// finalizer, so that every bit depends on every byte. Filters are stored:
// it must never change.
func keyHash(k []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range k {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
