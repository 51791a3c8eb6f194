package main

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/upicdc/upicdc/internal/progress"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// scaleBench is `bench --scenario scale`'s flags.
type scaleBench struct {
	rows, fileRows int
	ids            string
	bin            string
	keepFiles      string
	filesFrom      string
	windows        []string // process variants: "none" or a comma-separated list of sizes
	maxRows        int      // stream.max_rows_per_trigger; 0: not passed (binaries before it refuse the key)
	maxVersions    int      // stream.max_versions_per_trigger; 0: not passed
}

// check refuses flag values the scenario cannot run with.
func (o scaleBench) check() error {
	if o.rows < 1 || o.fileRows < 1 {
		return usageError{fmt.Errorf("--rows and --file-rows must be >= 1")}
	}
	if o.ids != "random" && o.ids != "ordered" {
		return usageError{fmt.Errorf("--ids %q: want random or ordered", o.ids)}
	}
	if o.keepFiles != "" && o.filesFrom != "" {
		return usageError{fmt.Errorf("--keep-files and --files-from exclude each other (--files-from's files are kept anyway)")}
	}
	if o.maxRows < 0 || o.maxVersions < 0 {
		return usageError{fmt.Errorf("--max-rows-per-trigger and --max-versions-per-trigger must be >= 0 (0: the binary's default)")}
	}
	if len(o.windows) == 0 {
		return usageError{fmt.Errorf("--windows: want at least one variant (none, or sizes such as 1d,1w)")}
	}
	for _, w := range o.windows {
		if _, err := windowSizesOf(w); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// windowSizesOf reads one --windows variant: "none" or sizes such as "1d,1w".
func windowSizesOf(v string) ([]string, error) {
	if v == "none" {
		return []string{}, nil
	}
	var sizes []string
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains([]string{"1h", "1d", "1w"}, s) {
			return nil, fmt.Errorf("--windows %q: want none, or sizes among 1h, 1d, 1w separated by commas", v)
		}
		sizes = append(sizes, s)
	}
	return sizes, nil
}

// scaleFile is one generated (or given) CSV file.
type scaleFile struct {
	path  string
	rows  int
	bytes int64
}

// phaseRun is what one child process of the scenario used.
type phaseRun struct {
	took                        time.Duration
	maxRSS                      int64 // bytes, the child's rusage ru_maxrss
	peakRSS, peakAnon, peakFile int64 // bytes, the highest VmRSS, RssAnon, RssFile polled in /proc/<pid>/status
	stdout, stderr              []byte
	exitErr                     error
	polled                      bool // /proc/<pid>/status could be read at least once
}

// benchScale generates the scale issue's workload as CSV files, then runs
// each phase as a child process of o.bin on a data dir under dir, so each
// phase's peak RSS is its own: ingest of every file (one process per file),
// process (the whole backlog) on a copy of the store per --windows variant,
// reconcile of each, and the store file's size against the CSV bytes.
func (a *app) benchScale(ctx context.Context, dir string, o scaleBench) error {
	bin := o.bin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: the upicdc binary to run (give --bin): %w", err)
		}
		bin = exe
	}
	if _, err := os.Stat(bin); err != nil {
		return usageError{fmt.Errorf("--bin: %w", err)}
	}
	line := progress.OnTerminal(a.stderr)
	defer line.Clear()

	var files []scaleFile
	var txns int64
	genNote := ""
	switch {
	case o.filesFrom != "":
		var err error
		if files, err = listScaleFiles(o.filesFrom); err != nil {
			return err
		}
		genNote = "files from " + o.filesFrom
	default:
		fdir := o.keepFiles
		if fdir == "" {
			fdir = filepath.Join(dir, "files")
		}
		if err := os.MkdirAll(fdir, 0o750); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		g := newScaleGen(o.ids == "ordered", o.fileRows)
		var err error
		files, err = g.write(fdir, o.rows, o.fileRows, func(i, n int) {
			line.Update("bench: writing file %d of %d", i+1, n)
		})
		if err != nil {
			return fmt.Errorf("bench: write the files: %w", err)
		}
		txns = g.txns
		genNote = fmt.Sprintf("%s ids, %d transactions (%.2f rows each)", o.ids, txns, float64(o.rows)/float64(max(txns, 1)))
		if o.keepFiles != "" {
			genNote += ", kept in " + o.keepFiles
		}
	}
	var csvRows int
	var csvBytes int64
	for _, f := range files {
		csvRows += f.rows
		csvBytes += f.bytes
	}

	out := render.NewTable("phase", "rows", "seconds", "rows_per_s", "peak_rss_mb", "peak_anon_mb", "peak_file_mb", "bytes", "x_csv", "note")
	mb := func(b int64) render.Cell { return render.Number(fmt.Sprintf("%.1f", float64(b)/(1<<20))) }
	ratio := func(b int64) render.Cell {
		if b <= 0 || csvBytes == 0 {
			return render.Null()
		}
		return render.Number(fmt.Sprintf("%.2f", float64(b)/float64(csvBytes)))
	}
	add := func(phase string, rows int64, r phaseRun, bytes int64, note string) {
		rate := render.Null()
		if s := r.took.Seconds(); s > 0 {
			rate = render.Int(int64(float64(rows) / s))
		}
		anon, file := render.Null(), render.Null()
		if r.polled {
			anon, file = mb(r.peakAnon), mb(r.peakFile)
		}
		bc := render.Null()
		if bytes > 0 {
			bc = render.Int(bytes)
		}
		out.Add(render.String(phase), render.Int(rows), render.Number(fmt.Sprintf("%.3f", r.took.Seconds())), rate,
			mb(max(r.maxRSS, r.peakRSS)), anon, file, bc, ratio(bytes), render.String(note))
	}
	out.Add(render.String("csv files (not timed)"), render.Int(int64(csvRows)), render.Null(), render.Null(), render.Null(), render.Null(),
		render.Null(), render.Int(csvBytes), render.Number("1.00"), render.String(fmt.Sprintf("%d files; %s", len(files), genNote)))

	env := childEnv(os.Environ())
	run := func(dataDir, config string, args ...string) (phaseRun, error) {
		full := []string{"--data-dir", dataDir}
		if config != "" {
			full = append(full, "--config", config)
		}
		return runPhase(ctx, bin, env, append(full, args...))
	}
	// Ingest: one process per file, as files arrive.
	ingestDir := filepath.Join(dir, "ingest")
	if err := os.MkdirAll(ingestDir, 0o750); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var ingested, inserted int64
	var total phaseRun
	var per []time.Duration
	var firstRun, lastRun phaseRun
	for i, f := range files {
		line.Show("bench: ingest file %d of %d (%s)", i+1, len(files), filepath.Base(f.path))
		r, err := run(ingestDir, "", "--format", "json", "ingest", f.path)
		if err != nil {
			return err
		}
		if r.exitErr != nil {
			return phaseError("ingest "+filepath.Base(f.path), r)
		}
		var res []struct {
			Rows     int64 `json:"rows"`
			Inserted int64 `json:"inserted"`
		}
		if err := json.Unmarshal(r.stdout, &res); err != nil {
			return fmt.Errorf("bench: ingest %s: its output: %w", f.path, err)
		}
		for _, x := range res {
			ingested += x.Rows
			inserted += x.Inserted
		}
		per = append(per, r.took)
		total = sumRuns(total, r)
		if i == 0 {
			firstRun = r
		}
		lastRun = r
	}
	ingestBytes, err := storeSize(ingestDir)
	if err != nil {
		return err
	}
	sorted := slices.Clone(per)
	slices.Sort(sorted)
	add("ingest: parse + MERGE, every file", ingested, total, ingestBytes,
		fmt.Sprintf("%d processes; per file p50 %.3fs, max %.3fs; %d transactions inserted", len(per), sorted[len(sorted)/2].Seconds(), sorted[len(sorted)-1].Seconds(), inserted))
	add("ingest: first file", int64(files[0].rows), firstRun, 0, "into an empty store")
	if len(files) > 1 {
		add("ingest: last file", int64(files[len(files)-1].rows), lastRun, 0,
			fmt.Sprintf("into a store of %d rows", ingested-int64(files[len(files)-1].rows)))
	}

	// Process and reconcile, on a copy of the ingested store per variant.
	for _, w := range o.windows {
		sizes, _ := windowSizesOf(w) // checked
		name := strings.ReplaceAll(w, ",", "+")
		vdir := filepath.Join(dir, "process-"+name)
		line.Show("bench: copying the store for windows %s", w)
		if err := copyDir(ingestDir, vdir); err != nil {
			return fmt.Errorf("bench: copy the store: %w", err)
		}
		config := filepath.Join(dir, "config-"+name+".json")
		if err := writeScaleConfig(config, sizes, o); err != nil {
			return err
		}
		line.Show("bench: process, windows %s (catch-up of %d raw versions)", w, len(files))
		r, err := run(vdir, config, "--format", "json", "process")
		if err != nil {
			return err
		}
		if r.exitErr != nil {
			if w == "none" && bytes.Contains(r.stderr, []byte("windows.sizes")) {
				// Binaries that require a window size.
				out.Add(render.String("process: windows none"), render.Null(), render.Null(), render.Null(), render.Null(), render.Null(),
					render.Null(), render.Null(), render.Null(), render.String("skipped: this binary refuses an empty windows.sizes ("+childLastLine(r.stderr)+")"))
				if err := os.RemoveAll(vdir); err != nil {
					return fmt.Errorf("bench: %w", err)
				}
				continue
			}
			return phaseError("process (windows "+w+")", r)
		}
		var batches []struct {
			ChangeRows int64 `json:"change_rows"`
		}
		if err := json.Unmarshal(r.stdout, &batches); err != nil {
			return fmt.Errorf("bench: process: its output: %w", err)
		}
		var feed, biggest int64
		for _, b := range batches {
			feed += b.ChangeRows
			biggest = max(biggest, b.ChangeRows)
		}
		size, err := storeSize(vdir)
		if err != nil {
			return err
		}
		add("process: windows "+w, feed, r, size, fmt.Sprintf("change rows; %d micro-batches, the largest %d change rows", len(batches), biggest))

		line.Show("bench: reconcile, windows %s", w)
		r, err = run(vdir, config, "reconcile")
		if err != nil {
			return err
		}
		if r.exitErr != nil {
			return phaseError("reconcile (windows "+w+")", r)
		}
		m := reconcileLine.FindSubmatch(r.stdout)
		if m == nil {
			return fmt.Errorf("bench: reconcile (windows %s): no summary line in its output %q", w, childLastLine(r.stdout))
		}
		rows, _ := strconv.ParseInt(string(m[1]), 10, 64)
		add("reconcile: windows "+w, rows, r, 0, fmt.Sprintf("change rows; %s transactions, %s merchants, no difference", m[2], m[3]))
		if err := os.RemoveAll(vdir); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	line.Clear()
	return a.print(out)
}

// reconcileLine is reconcile's summary in table format.
var reconcileLine = regexp.MustCompile(`\((\d+) change rows, (\d+) transactions, (\d+) merchants\)`)

// writeScaleConfig writes the config file of one process variant. Keys a
// binary may not know are written only when asked for.
func writeScaleConfig(path string, sizes []string, o scaleBench) error {
	stream := map[string]any{}
	if o.maxRows > 0 {
		stream["max_rows_per_trigger"] = o.maxRows
	}
	if o.maxVersions > 0 {
		stream["max_versions_per_trigger"] = o.maxVersions
	}
	cfg := map[string]any{"windows": map[string]any{"sizes": sizes}}
	if len(stream) > 0 {
		cfg["stream"] = stream
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("bench: config: %w", err)
	}
	return nil
}

// childEnv is the environment for the phases: this one without UPICDC_*
// variables, so that each phase runs on the bench's data dir and config only.
func childEnv(environ []string) []string {
	var env []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "UPICDC_") {
			env = append(env, kv)
		}
	}
	return env
}

// runPhase runs bin with args and measures it: wall time from start to
// exit, ru_maxrss, and the peaks of VmRSS, RssAnon and RssFile polled from
// /proc every 20 ms. A non-zero exit is in the result's exitErr; the error
// is for a process that could not run at all.
func runPhase(ctx context.Context, bin string, env, args []string) (phaseRun, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return phaseRun{}, fmt.Errorf("bench: run %s: %w", bin, err)
	}
	var r phaseRun
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, anon, file, ok := procRSS(status); ok {
				r.polled = true
				r.peakRSS, r.peakAnon, r.peakFile = max(r.peakRSS, rss), max(r.peakAnon, anon), max(r.peakFile, file)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	r.took = time.Since(start)
	close(done)
	<-polled
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return r, fmt.Errorf("bench: run %s: %w", bin, err)
		}
		r.exitErr = err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss * 1024 // kB on Linux
	}
	r.stdout, r.stderr = stdout.Bytes(), stderr.Bytes()
	return r, nil
}

// procRSS reads VmRSS, RssAnon and RssFile (bytes) from a /proc status file.
func procRSS(path string) (rss, anon, file int64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, false
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		k, v, found := strings.Cut(l, ":")
		if !found {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &rss
		case "RssAnon":
			dst = &anon
		case "RssFile":
			dst = &file
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err == nil {
			*dst, ok = n*1024, true
		}
	}
	return rss, anon, file, ok
}

// sumRuns adds r's time to t and keeps the highest peaks of both.
func sumRuns(t, r phaseRun) phaseRun {
	t.took += r.took
	t.maxRSS, t.peakRSS = max(t.maxRSS, r.maxRSS), max(t.peakRSS, r.peakRSS)
	t.peakAnon, t.peakFile = max(t.peakAnon, r.peakAnon), max(t.peakFile, r.peakFile)
	t.polled = t.polled || r.polled
	return t
}

// phaseError is the error of a phase whose process failed.
func phaseError(phase string, r phaseRun) error {
	return fmt.Errorf("bench: %s: %w: %s", phase, r.exitErr, childLastLine(r.stderr))
}

// childLastLine is the last non-empty line of b (a child's error message).
func childLastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func storeSize(dir string) (int64, error) {
	st, err := os.Stat(filepath.Join(dir, store.FileName))
	if err != nil {
		return 0, fmt.Errorf("bench: store size: %w", err)
	}
	return st.Size(), nil
}

// copyDir copies the regular files of src (recursively) into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
}

// listScaleFiles lists the .csv files of dir in name order, with their
// rows (lines after the header) and sizes.
func listScaleFiles(dir string) ([]scaleFile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil {
		return nil, fmt.Errorf("--files-from: %w", err)
	}
	if len(names) == 0 {
		return nil, usageError{fmt.Errorf("--files-from %s: no .csv files", dir)}
	}
	slices.Sort(names)
	var files []scaleFile
	for _, p := range names {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("--files-from: %w", err)
		}
		lines, size, err := countLines(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--files-from %s: %w", p, err)
		}
		files = append(files, scaleFile{path: p, rows: max(lines-1, 0), bytes: size})
	}
	return files, nil
}

func countLines(r io.Reader) (lines int, size int64, err error) {
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		size += int64(n)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		if err == io.EOF {
			return lines, size, nil
		}
		if err != nil {
			return lines, size, err
		}
	}
}

// scaleGen generates the scale workload: transactions arrive at a steady
// rate (one file's rows span about an hour), each with an initiated row,
// then a status row (completed, or 7% failed) 45 to 105 minutes later, and
// for half of them a third row: a completed one refunded (80%, one to six
// hours later) or reversed to failed (20%, one to three hours later), a
// failed one completed by a retry (10 to 60 minutes later). About 2.5 rows
// per transaction once the first hours are past (rows still due after the
// last file are not written); rows are written in time order, so a status
// row lands in a later file than its transaction's insert, mostly the next. Merchants: 10,000, skewed (Zipf). Amounts: log-normal around
// ₹300, ₹1 to ₹1 lakh.
type scaleGen struct {
	rng     *rand.Rand
	zipf    *rand.Zipf
	ordered bool
	gap     float64 // ms between new transactions, on average
	now     float64 // ms since the epoch: the next new transaction
	pending scaleHeap
	txns    int64
	hour    int64 // the current RRN hour and its serial
	hourSeq int
	epoch   time.Time
}

type scaleEvent struct {
	at       int64 // ms since the epoch
	id       string
	user     int32
	merchant int32
	paise    int64
	status   uint8 // index into scaleStatuses
	step     uint8 // 0 initiated, 1 status, 2 third row
}

var scaleStatuses = []string{"initiated", "completed", "failed", "refunded"}

type scaleHeap []scaleEvent

func (h scaleHeap) Len() int           { return len(h) }
func (h scaleHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h scaleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *scaleHeap) Push(x any)        { *h = append(*h, x.(scaleEvent)) }
func (h *scaleHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newScaleGen(ordered bool, fileRows int) *scaleGen {
	rng := rand.New(rand.NewPCG(7, 11))
	return &scaleGen{
		rng:     rng,
		zipf:    rand.NewZipf(rng, 1.1, 20, 9_999),
		ordered: ordered,
		// fileRows rows an hour at 2.5 rows per transaction.
		gap:   3_600_000 * 2.5 / float64(fileRows),
		epoch: time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC),
		hour:  -1,
	}
}

var scaleBanks = []string{"okaxis", "okhdfcbank", "oksbi", "okicici", "ybl", "paytm", "ibl", "axl"}

// next returns the next row in time order.
func (g *scaleGen) next() scaleEvent {
	if len(g.pending) > 0 && float64(g.pending[0].at) <= g.now {
		e := heap.Pop(&g.pending).(scaleEvent)
		g.follow(e)
		return e
	}
	at := int64(g.now)
	g.now += g.rng.ExpFloat64() * g.gap
	g.txns++
	paise := int64(math.Exp(g.rng.NormFloat64()*1.1+math.Log(300)) * 100)
	e := scaleEvent{at: at, id: g.newID(at), user: int32(g.rng.IntN(5_000_000)), merchant: int32(g.merchant()),
		paise: min(max(paise, 100), 10_000_000), status: 0}
	g.follow(e)
	return e
}

// follow schedules the row that comes after e, if any.
func (g *scaleGen) follow(e scaleEvent) {
	const minute, hour = 60_000, 3_600_000
	n := e
	switch e.step {
	case 0:
		n.step, n.status = 1, 1
		if g.rng.IntN(100) < 7 {
			n.status = 2
		}
		n.at = e.at + 45*minute + g.rng.Int64N(hour)
	case 1:
		if g.rng.IntN(2) == 0 {
			return
		}
		n.step = 2
		switch {
		case e.status == 2: // a retry completes it
			n.status = 1
			n.at = e.at + 10*minute + g.rng.Int64N(50*minute)
		case g.rng.IntN(5) == 0: // reversed
			n.status = 2
			n.at = e.at + hour + g.rng.Int64N(2*hour)
		default:
			n.status = 3
			n.at = e.at + hour + g.rng.Int64N(5*hour)
		}
	default:
		return
	}
	heap.Push(&g.pending, n)
}

// merchant is skewed: half the transactions go to a Zipf-distributed
// merchant, half uniformly, over 10,000 merchants.
func (g *scaleGen) merchant() int {
	if g.rng.IntN(2) == 0 {
		return int(g.zipf.Uint64())
	}
	return g.rng.IntN(10_000)
}

// newID returns a transaction id: with ordered ids an RRN-like 12-digit
// number (last digit of the year, day of the year, hour, serial in the
// hour) that grows with time; otherwise a random one.
func (g *scaleGen) newID(at int64) string {
	if !g.ordered {
		return fmt.Sprintf("TXN%016x", g.rng.Uint64())
	}
	t := g.epoch.Add(time.Duration(at) * time.Millisecond)
	if h := at / 3_600_000; h != g.hour {
		g.hour, g.hourSeq = h, 0
	}
	g.hourSeq++
	return fmt.Sprintf("%d%03d%02d%06d", t.Year()%10, t.YearDay(), t.Hour(), g.hourSeq)
}

// write writes rows rows into files of fileRows rows under dir.
func (g *scaleGen) write(dir string, rows, fileRows int, show func(i, n int)) ([]scaleFile, error) {
	n := (rows + fileRows - 1) / fileRows
	var files []scaleFile
	for i := range n {
		show(i, n)
		p := filepath.Join(dir, fmt.Sprintf("upi-%05d.csv", i+1))
		k := min(fileRows, rows-i*fileRows)
		size, err := g.file(p, k)
		if err != nil {
			return nil, err
		}
		files = append(files, scaleFile{path: p, rows: k, bytes: size})
	}
	return files, nil
}

func (g *scaleGen) file(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status")
	for range n {
		e := g.next()
		t := g.epoch.Add(time.Duration(e.at) * time.Millisecond)
		fmt.Fprintf(w, "%s,user%d@%s,M%05d,%d.%02d,%s,%s\n", e.id, e.user, scaleBanks[int(e.user)%len(scaleBanks)], e.merchant,
			e.paise/100, e.paise%100, t.Format("2006-01-02 15:04:05.000"), scaleStatuses[e.status])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}
