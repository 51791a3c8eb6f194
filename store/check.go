package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Damage detection. bbolt trusts its file: it mmaps it and follows page ids
// without bounds checks, so a file cut short, or with bytes overwritten,
// makes it panic (in goroutines of its own, where nobody can recover) or
// fault on memory past the end of the file. And bbolt keeps no page
// checksums, so nothing short of reading the tree notices a damaged page.
//
// So Open reads the file itself first, with plain reads that cannot fault:
// both meta pages, the file size against the high-water mark, and the page
// tree of every bucket, checking what bbolt's own consistency check checks
// (page ids, types, bounds, single references, key order) before bbolt
// follows a single page id. Every transaction then runs under guardedBolt,
// which turns a panic or a memory fault met on the way (the file damaged
// after Open) into a *DamagedError.

// bbolt's on-disk layout (go.etcd.io/bbolt/internal/common), in the host's
// byte order: a page header (id u64, flags u16, count u16, overflow u32),
// then for a meta page: magic u32, version u32, pageSize u32, flags u32,
// root bucket (root pgid u64, sequence u64), freelist pgid u64, high-water
// mark pgid u64, txid u64, checksum u64 (FNV-64a of the meta's bytes before
// it); for branch and leaf pages, count elements of 16 bytes.
const (
	pageHeaderSize   = 16
	elementSize      = 16
	metaSize         = 64
	metaChecksumAt   = 56 // offset of the checksum in the meta
	bucketHeaderSize = 16

	boltMagic   = 0xED0CDAED
	boltVersion = 2

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	noFreelist = ^uint64(0)

	// maxProblems caps the findings kept: a badly damaged file has
	// thousands, and the first few say what happened.
	maxProblems = 20
	// maxDepth bounds the walk's recursion (B+trees of buckets in buckets
	// are a few levels deep; page ids already seen stop cycles).
	maxDepth = 64
)

var hostEndian = binary.NativeEndian

// meta is one decoded meta page.
type meta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64 // pages in use: ids 0..hwm-1
	txid     uint64
}

// fileReport is what inspecting the store file found.
type fileReport struct {
	size      int64
	empty     bool
	pageSize  int64
	hwm       uint64
	txid      uint64
	validMeta int  // meta pages that decode
	truncated bool // the file ends before the newest valid meta's high-water mark
	problems  []string
	more      int
}

func (r *fileReport) problem(format string, args ...any) {
	if len(r.problems) < maxProblems {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	} else {
		r.more++
	}
}

func (r *fileReport) damaged(path string) *DamagedError {
	if r.empty {
		return &DamagedError{Path: path, Empty: true}
	}
	return &DamagedError{Path: path, Problems: r.problems, More: r.more}
}

// inspectFile reads the store file at path with plain reads. It always
// checks the meta pages and the size; with walk it also walks every bucket's
// page tree. The error is for a file that cannot be read at all; what is
// wrong with its content is in the report.
func inspectFile(path string, walk bool) (*fileReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r := &fileReport{size: fi.Size()}
	if r.size == 0 {
		r.empty = true
		r.problem("the file is empty")
		return r, nil
	}

	m0, err0 := readMeta(f, 0, 0)
	var m1 meta
	var err1 error
	if err0 == nil {
		m1, err1 = readMeta(f, 1, int64(m0.pageSize))
	} else {
		// Without meta 0 the page size is unknown: look for meta 1 where each
		// page size would put it, as bbolt does.
		err1 = errors.New("not found at any page size")
		for ps := int64(1024); ps <= 1<<24 && ps < r.size; ps <<= 1 {
			if m, err := readMeta(f, 1, ps); err == nil && int64(m.pageSize) == ps {
				m1, err1 = m, nil
				break
			}
		}
	}
	var newest meta
	for i, m := range []struct {
		m   meta
		err error
	}{{m0, err0}, {m1, err1}} {
		if m.err != nil {
			r.problem("meta page %d: %v", i, m.err)
			continue
		}
		r.validMeta++
		if r.validMeta == 1 || m.m.txid > newest.txid {
			newest = m.m
		}
	}
	if err0 == nil && err1 == nil && m0.pageSize != m1.pageSize {
		r.problem("the meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
	}
	if r.validMeta == 0 {
		return r, nil
	}
	r.pageSize, r.hwm, r.txid = int64(newest.pageSize), newest.hwm, newest.txid
	if need := int64(newest.hwm) * r.pageSize; r.size < need {
		r.truncated = true
		r.problem("the file has %d bytes but its meta page says it holds %d pages of %d bytes (%d bytes): it was cut short",
			r.size, newest.hwm, r.pageSize, need)
		return r, nil
	}
	if walk {
		w := &walker{f: f, r: r, pageSize: r.pageSize, hwm: r.hwm, seen: make([]uint64, (r.hwm+63)/64)}
		if newest.freelist != noFreelist {
			w.freelist(newest.freelist)
		}
		w.bucket(newest.root, "", 0)
	}
	return r, nil
}

// readMeta reads and validates meta page index (0 or 1) at offset.
func readMeta(f io.ReaderAt, index int, offset int64) (meta, error) {
	var b [pageHeaderSize + metaSize]byte
	if _, err := f.ReadAt(b[:], offset); err != nil {
		if errors.Is(err, io.EOF) {
			return meta{}, errors.New("past the end of the file")
		}
		return meta{}, err
	}
	if bytes.Count(b[:], []byte{0}) == len(b) {
		return meta{}, errors.New("zeroed")
	}
	mb := b[pageHeaderSize:]
	if hostEndian.Uint32(mb[0:]) != boltMagic {
		return meta{}, errors.New("not a bbolt meta page (bad magic number)")
	}
	if v := hostEndian.Uint32(mb[4:]); v != boltVersion {
		return meta{}, fmt.Errorf("bbolt format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	_, _ = h.Write(mb[:metaChecksumAt])
	if h.Sum64() != hostEndian.Uint64(mb[metaChecksumAt:]) {
		return meta{}, errors.New("checksum mismatch")
	}
	m := meta{
		pageSize: hostEndian.Uint32(mb[8:]),
		root:     hostEndian.Uint64(mb[16:]),
		freelist: hostEndian.Uint64(mb[32:]),
		hwm:      hostEndian.Uint64(mb[40:]),
		txid:     hostEndian.Uint64(mb[48:]),
	}
	// A commit writes meta page txid%2, but bbolt's Tx.WriteTo (a backup)
	// writes the same meta to both pages: the parity proves nothing.
	switch id, flags := hostEndian.Uint64(b[0:]), hostEndian.Uint16(b[8:]); {
	case id != uint64(index) || flags != metaPageFlag:
		return meta{}, fmt.Errorf("page header says page %d with flags %#x", id, flags)
	case m.pageSize < 1024 || m.pageSize&(m.pageSize-1) != 0:
		return meta{}, fmt.Errorf("page size %d", m.pageSize)
	case m.hwm < 3 || m.root < 2 || m.root >= m.hwm:
		return meta{}, fmt.Errorf("root page %d is outside the %d pages in use", m.root, m.hwm)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm):
		return meta{}, fmt.Errorf("freelist page %d is outside the %d pages in use", m.freelist, m.hwm)
	}
	return m, nil
}

// walker walks bbolt's page trees with plain reads, checking what bbolt's
// tx.Check checks and what bbolt relies on without checking: every page id
// followed lies below the high-water mark (so inside the file), names itself,
// is a branch or leaf page referenced once, its elements lie inside it, and
// keys are in order (the rules of bbolt's recursivelyCheckPageKeyOrder).
type walker struct {
	f        io.ReaderAt
	r        *fileReport
	pageSize int64
	hwm      uint64
	seen     []uint64 // bit set of page ids reached
	bufs     [][]byte // one read buffer per depth
}

// freelist checks the freelist page (a store written with a synced freelist
// has one; upicdc's stores rebuild it at open instead): bbolt reads it at
// open for write.
func (w *walker) freelist(id uint64) {
	buf := w.buf(0, w.pageSize)
	if _, err := w.f.ReadAt(buf, int64(id)*w.pageSize); err != nil {
		w.r.problem("freelist page %d: %v", id, err)
		return
	}
	pid, flags := hostEndian.Uint64(buf[0:]), hostEndian.Uint16(buf[8:])
	count, overflow := uint64(hostEndian.Uint16(buf[10:])), uint64(hostEndian.Uint32(buf[12:]))
	switch {
	case pid != id:
		w.r.problem("freelist page %d identifies itself as page %d", id, pid)
		return
	case flags != freelistPageFlag:
		w.r.problem("freelist page %d has page type flags %#x", id, flags)
		return
	case id+overflow >= w.hwm:
		w.r.problem("freelist page %d with %d overflow pages runs past the %d pages in use", id, overflow, w.hwm)
		return
	}
	for p := id; p <= id+overflow; p++ {
		w.seen[p/64] |= 1 << (p % 64)
	}
	buf = w.buf(0, int64(overflow+1)*w.pageSize)
	if _, err := w.f.ReadAt(buf, int64(id)*w.pageSize); err != nil {
		w.r.problem("freelist page %d: %v", id, err)
		return
	}
	ids := buf[pageHeaderSize:]
	if count == 0xFFFF { // the count is the first id's slot
		if len(ids) < 8 {
			w.r.problem("freelist page %d is too short", id)
			return
		}
		count, ids = hostEndian.Uint64(ids), ids[8:]
	}
	if count > uint64(len(ids)/8) {
		w.r.problem("freelist page %d: %d ids do not fit in it", id, count)
		return
	}
	for i := range count {
		if free := hostEndian.Uint64(ids[i*8:]); free < 2 || free >= w.hwm {
			w.r.problem("freelist page %d: free page %d is outside the %d pages in use", id, free, w.hwm)
			return
		}
	}
}

// bucket walks the bucket whose root page is root; path names it in findings.
func (w *walker) bucket(root uint64, path string, depth int) {
	w.page(root, nil, nil, path, depth)
}

// page checks page id and its subtree, whose keys must lie in [lo, hi) (nil:
// unbounded), and returns the subtree's last key.
func (w *walker) page(id uint64, lo, hi []byte, path string, depth int) []byte {
	where := "bucket " + path
	if path == "" {
		where = "root bucket"
	}
	if depth > maxDepth {
		w.r.problem("%s: page %d: tree deeper than %d levels", where, id, maxDepth)
		return nil
	}
	if id < 2 || id >= w.hwm {
		w.r.problem("%s: page %d is outside the %d pages in use", where, id, w.hwm)
		return nil
	}
	buf := w.buf(depth, w.pageSize)
	if _, err := w.f.ReadAt(buf, int64(id)*w.pageSize); err != nil {
		w.r.problem("%s: page %d: %v", where, id, err)
		return nil
	}
	pid, flags := hostEndian.Uint64(buf[0:]), hostEndian.Uint16(buf[8:])
	count, overflow := int(hostEndian.Uint16(buf[10:])), uint64(hostEndian.Uint32(buf[12:]))
	switch {
	case pid != id:
		w.r.problem("%s: page %d identifies itself as page %d", where, id, pid)
		return nil
	case flags != branchPageFlag && flags != leafPageFlag:
		w.r.problem("%s: page %d has page type flags %#x, want a branch or leaf page", where, id, flags)
		return nil
	case id+overflow >= w.hwm:
		w.r.problem("%s: page %d with %d overflow pages runs past the %d pages in use", where, id, overflow, w.hwm)
		return nil
	}
	for p := id; p <= id+overflow; p++ {
		if w.seen[p/64]&(1<<(p%64)) != 0 {
			w.r.problem("%s: page %d is referenced twice", where, p)
			return nil
		}
		w.seen[p/64] |= 1 << (p % 64)
	}
	if overflow > 0 {
		buf = w.buf(depth, int64(overflow+1)*w.pageSize)
		if _, err := w.f.ReadAt(buf, int64(id)*w.pageSize); err != nil {
			w.r.problem("%s: page %d: %v", where, id, err)
			return nil
		}
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		w.r.problem("%s: page %d: %d elements do not fit in it", where, id, count)
		return nil
	}

	if flags == branchPageFlag {
		var last []byte
		running := lo
		for i := range count {
			key, child, ok := branchElement(buf, i)
			if !ok {
				w.r.problem("%s: page %d: element %d lies outside the page", where, id, i)
				return nil
			}
			if !w.inOrder(i, key, running, hi, where, id) {
				return nil
			}
			next := hi
			if i+1 < count {
				if next, _, ok = branchElement(buf, i+1); !ok {
					w.r.problem("%s: page %d: element %d lies outside the page", where, id, i+1)
					return nil
				}
			}
			last = w.page(child, key, next, path, depth+1)
			running = last
		}
		return last
	}

	type sub struct {
		root uint64
		name string
	}
	var subs []sub
	running := lo
	for i := range count {
		key, value, eflags, ok := leafElement(buf, i)
		if !ok {
			w.r.problem("%s: page %d: element %d lies outside the page", where, id, i)
			return nil
		}
		if !w.inOrder(i, key, running, hi, where, id) {
			return nil
		}
		running = key
		if eflags&bucketLeafFlag == 0 {
			continue
		}
		name := path + "/" + keyName(key)
		if len(value) < bucketHeaderSize {
			w.r.problem("bucket %s: header of %d bytes, want %d", name, len(value), bucketHeaderSize)
			return nil
		}
		if root := hostEndian.Uint64(value); root != 0 {
			subs = append(subs, sub{root, name})
		} else if !w.inline(value[bucketHeaderSize:], name) {
			return nil
		}
	}
	var last []byte
	if count > 0 {
		last = bytes.Clone(running)
	}
	for _, s := range subs {
		w.bucket(s.root, s.name, depth+1)
	}
	return last
}

// inline checks an inline bucket's page, stored in its parent's value: a
// leaf page whose elements lie inside it. bbolt never makes a bucket that
// holds buckets inline.
func (w *walker) inline(p []byte, name string) bool {
	if len(p) < pageHeaderSize {
		w.r.problem("bucket %s: inline page of %d bytes", name, len(p))
		return false
	}
	flags, count := hostEndian.Uint16(p[8:]), int(hostEndian.Uint16(p[10:]))
	if flags != leafPageFlag {
		w.r.problem("bucket %s: inline page has page type flags %#x, want a leaf page", name, flags)
		return false
	}
	if pageHeaderSize+count*elementSize > len(p) {
		w.r.problem("bucket %s: inline page: %d elements do not fit in it", name, count)
		return false
	}
	for i := range count {
		_, _, eflags, ok := leafElement(p, i)
		if !ok {
			w.r.problem("bucket %s: inline page: element %d lies outside the page", name, i)
			return false
		}
		if eflags&bucketLeafFlag != 0 {
			w.r.problem("bucket %s: inline page holds a bucket", name)
			return false
		}
	}
	return true
}

// inOrder applies bbolt's key order rules to key i of a page: not below the
// lower bound (the parent's key) for the first, above the previous key (or
// the previous subtree's last key) for the others, and below hi.
func (w *walker) inOrder(i int, key, prev, hi []byte, where string, id uint64) bool {
	switch {
	case i == 0 && prev != nil && bytes.Compare(prev, key) > 0,
		i > 0 && bytes.Compare(prev, key) >= 0:
		w.r.problem("%s: page %d: key %d (%x) is not after the key before it (%x)", where, id, i, key, prev)
		return false
	case hi != nil && bytes.Compare(key, hi) >= 0:
		w.r.problem("%s: page %d: key %d (%x) is not before its parent's next key (%x)", where, id, i, key, hi)
		return false
	}
	return true
}

func (w *walker) buf(depth int, n int64) []byte {
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, nil)
	}
	if int64(cap(w.bufs[depth])) < n {
		w.bufs[depth] = make([]byte, n)
	}
	return w.bufs[depth][:n]
}

// branchElement returns branch element i's key and child page id.
func branchElement(p []byte, i int) (key []byte, child uint64, ok bool) {
	e := pageHeaderSize + i*elementSize
	pos, ksize := uint64(hostEndian.Uint32(p[e:])), uint64(hostEndian.Uint32(p[e+4:]))
	start := uint64(e) + pos
	if start+ksize > uint64(len(p)) {
		return nil, 0, false
	}
	return p[start : start+ksize], hostEndian.Uint64(p[e+8:]), true
}

// leafElement returns leaf element i's key, value and flags.
func leafElement(p []byte, i int) (key, value []byte, flags uint32, ok bool) {
	e := pageHeaderSize + i*elementSize
	flags = hostEndian.Uint32(p[e:])
	pos, ksize, vsize := uint64(hostEndian.Uint32(p[e+4:])), uint64(hostEndian.Uint32(p[e+8:])), uint64(hostEndian.Uint32(p[e+12:]))
	start := uint64(e) + pos
	if start+ksize+vsize > uint64(len(p)) {
		return nil, nil, 0, false
	}
	return p[start : start+ksize], p[start+ksize : start+ksize+vsize], flags, true
}

// keyName renders a bucket name for findings: as is when printable.
func keyName(k []byte) string {
	s := string(k)
	if q := strconv.Quote(s); q[1:len(q)-1] == s {
		return s
	}
	return fmt.Sprintf("%x", k)
}

// guardedBolt is the bbolt handle with View and Update that cannot crash
// the process: a panic inside a transaction (bbolt's assertions on a page
// that is not what it should be) or a memory fault (a page past the end of a
// file cut short after Open; debug.SetPanicOnFault makes it a panic of the
// goroutine running the transaction) comes back as an error. bbolt rolls the
// transaction back on the way out, so nothing is written.
//
// Every transaction also passes the gate (gate.go), which an online
// compaction closes while it copies and swaps the file.
type guardedBolt struct {
	gate *gate // the open file; nil in a value used only for guard
	path string
	log  *slog.Logger
}

// View runs fn in a read transaction.
func (g guardedBolt) View(fn func(*bolt.Tx) error) error {
	b, done := g.gate.enter(false)
	defer done()
	return g.guard(func() error { return b.View(fn) })
}

// Update runs fn in a write transaction.
func (g guardedBolt) Update(fn func(*bolt.Tx) error) error {
	b, done := g.gate.enter(true)
	defer done()
	return g.guard(func() error { return b.Update(fn) })
}

func (g guardedBolt) guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = g.panicked(v)
		}
	}()
	return fn()
}

// panicked decides what a panic inside bbolt meant: the file is inspected
// again, and a finding makes it a *DamagedError. A sound file means a bug
// (ours or bbolt's), reported as such and not as damage, which a restore
// would not cure.
func (g guardedBolt) panicked(v any) error {
	path := g.path
	r, err := inspectFile(path, true)
	switch {
	case err != nil:
		return &DamagedError{Path: path, Problems: []string{fmt.Sprintf("reading it failed (%v), and so does reading it again: %v", v, err)}}
	case len(r.problems) > 0:
		return r.damaged(path)
	}
	g.log.Error("a store transaction panicked", "path", path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return fmt.Errorf("store %s: a transaction panicked though the file passes the integrity check (a bug; please report it): %v", path, v)
}
