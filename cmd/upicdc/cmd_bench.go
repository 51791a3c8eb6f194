package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/internal/progress"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// benchOptions are `upicdc bench`'s flags.
type benchOptions struct {
	tableRows, fileRows, files int
	ids                        string
	lookups                    int
	scenario                   string
	retention                  retentionBench
	scale                      scaleBench
}

func newBenchCommand(a *app) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure ingest, MERGE, processor and lookup speed on this machine with generated files",
		Long: `Builds a store of --table-rows transactions in a temporary directory (or in --data-dir if
given; it must not hold a store), then MERGEs --files CSV files of --file-rows rows (half
updates of existing transactions, half new ones) and times each through parsing and MERGE,
runs the stream processor over everything, and times transaction history lookups. File
generation is not timed. --ids random spreads ids and updates uniformly (the B+tree worst
case); --ids ordered makes ids grow with time and updates hit recent transactions, as UPI RRNs do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.scenario != "" && o.scenario != "retention" && o.scenario != "scale" {
				return usageError{fmt.Errorf("--scenario %q: want retention or scale (or none)", o.scenario)}
			}
			if o.scenario == "scale" {
				s := o.scale
				s.fileRows, s.ids = o.fileRows, o.ids
				if !cmd.Flags().Changed("ids") {
					s.ids = "ordered" // the scale issue's workload
				}
				if err := s.check(); err != nil {
					return err
				}
				dir, cleanup, err := a.freshDataDir(cmd)
				if err != nil {
					return err
				}
				defer cleanup()
				return a.benchScale(cmd.Context(), dir, s)
			}
			if r := o.retention; o.scenario == "retention" && (r.days < 1 || r.retainDays < 1 || r.dayRows < 1) {
				return usageError{fmt.Errorf("--days, --retain-days, --day-rows must be >= 1")}
			}
			if o.ids != "random" && o.ids != "ordered" {
				return usageError{fmt.Errorf("--ids %q: want random or ordered", o.ids)}
			}
			if o.tableRows < 0 || o.fileRows < 1 || o.files < 1 || o.lookups < 0 {
				return usageError{fmt.Errorf("--table-rows, --lookups must be >= 0; --file-rows, --files >= 1")}
			}
			dir, cleanup, err := a.freshDataDir(cmd)
			if err != nil {
				return err
			}
			defer cleanup()
			if o.scenario == "retention" {
				return a.benchRetention(cmd.Context(), dir, o.retention)
			}
			return a.bench(cmd.Context(), dir, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.tableRows, "table-rows", 1_000_000, "transactions in the table before the measured files")
	f.IntVar(&o.fileRows, "file-rows", 100_000, "rows per measured file")
	f.IntVar(&o.files, "files", 5, "measured files")
	f.StringVar(&o.ids, "ids", "random", "id distribution: random or ordered")
	f.IntVar(&o.lookups, "lookups", 10_000, "transaction history lookups to time")
	f.StringVar(&o.scenario, "scenario", "", "retention: store size over simulated days with and without retention; scale: each phase of the scale issue's workload as a child process (time, RSS, store size)")
	f.IntVar(&o.retention.days, "days", 30, "--scenario retention: simulated days")
	f.IntVar(&o.retention.retainDays, "retain-days", 7, "--scenario retention: retention.history in days")
	f.IntVar(&o.retention.dayRows, "day-rows", 20_000, "--scenario retention: rows per simulated day")
	f.StringVar(&o.retention.svg, "svg", "", "--scenario retention: write the plot to this SVG file")
	f.IntVar(&o.scale.rows, "rows", 1_000_000, "--scenario scale: CSV rows in all (in files of --file-rows; --ids defaults to ordered)")
	f.StringVar(&o.scale.bin, "bin", "", "--scenario scale: the upicdc binary whose phases are measured (default: this one)")
	f.StringVar(&o.scale.keepFiles, "keep-files", "", "--scenario scale: write the generated CSV files into this directory and keep them")
	f.StringVar(&o.scale.filesFrom, "files-from", "", "--scenario scale: ingest this directory's *.csv files (in name order) instead of generating")
	f.StringArrayVar(&o.scale.windows, "windows", []string{"none", "1d,1w"}, "--scenario scale: a process variant's windows.sizes, none or e.g. 1d,1w (repeatable)")
	f.IntVar(&o.scale.maxRows, "max-rows-per-trigger", 0, "--scenario scale: set stream.max_rows_per_trigger (binaries before it refuse the key; 0: not set)")
	f.IntVar(&o.scale.maxVersions, "max-versions-per-trigger", 0, "--scenario scale: set stream.max_versions_per_trigger (0: not set)")
	return cmd
}

// benchGen writes UPI-like batch files.
type benchGen struct {
	rng     *rand.Rand
	ordered bool
	ids     []string
	serial  int
	clock   time.Time
}

func (g *benchGen) newID() string {
	g.serial++
	if g.ordered {
		return fmt.Sprintf("%012d", 400_000_000_000+g.serial)
	}
	return fmt.Sprintf("TXN%016x", g.rng.Uint64())
}

// file writes n rows, a share upd of them updates of existing transactions.
func (g *benchGen) file(path string, n int, upd float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "transaction_id,upi_id,merchant_id,transaction_amount,transaction_time,transaction_status")
	for range n {
		g.clock = g.clock.Add(time.Millisecond)
		id, status := "", "initiated"
		if len(g.ids) > 0 && g.rng.Float64() < upd {
			if g.ordered {
				id = g.ids[len(g.ids)-1-g.rng.IntN(min(len(g.ids), 200_000))]
			} else {
				id = g.ids[g.rng.IntN(len(g.ids))]
			}
			status = "completed"
			if g.rng.IntN(10) == 0 {
				status = "refunded"
			}
		} else {
			id = g.newID()
			g.ids = append(g.ids, id)
		}
		fmt.Fprintf(w, "%s,user%d@bank,M%d,%d.%02d,%s,%s\n", id, g.rng.IntN(1_000_000), g.rng.IntN(5000),
			g.rng.IntN(100_000), g.rng.IntN(100), g.clock.Format("2006-01-02 15:04:05.000"), status)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *app) bench(ctx context.Context, dir string, o benchOptions) error {
	db, err := agg.Open(dir, a.tables, store.Options{Logger: a.log})
	if err != nil {
		return err
	}
	defer db.Close()
	files := filepath.Join(dir, "bench-files")
	if err := os.MkdirAll(files, 0o750); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	g := &benchGen{rng: rand.New(rand.NewPCG(1, 2)), ordered: o.ids == "ordered", clock: time.Date(2024, 12, 21, 0, 0, 0, 0, time.UTC)}
	m := cdc.NewMerger(db, cdc.ParseOptions{Location: a.loc}, a.log)
	out := render.NewTable("phase", "rows", "seconds", "rows_per_s", "note")
	row := func(phase string, rows int64, d time.Duration, note string) {
		out.Add(render.String(phase), render.Int(rows), render.String(fmt.Sprintf("%.3f", d.Seconds())), render.Int(int64(float64(rows)/d.Seconds())), render.String(note))
	}
	// On a terminal, a status line says what is running: the whole bench
	// takes minutes at the defaults.
	line := progress.OnTerminal(a.stderr)
	defer line.Clear()
	ingest := func(name string, n int, upd float64, status string) (time.Duration, error) {
		line.Show("bench: %s: writing %s", status, name)
		p := filepath.Join(files, name)
		if err := g.file(p, n, upd); err != nil {
			return 0, fmt.Errorf("bench: write %s: %w", name, err)
		}
		line.Show("bench: %s: merging %s", status, name)
		start := time.Now()
		if _, err := m.IngestFile(ctx, p); err != nil {
			return 0, err
		}
		d := time.Since(start)
		return d, os.Remove(p)
	}

	var built time.Duration
	for done, i := 0, 0; done < o.tableRows; i++ {
		n := min(o.fileRows, o.tableRows-done)
		d, err := ingest(fmt.Sprintf("build-%04d.csv", i), n, 0,
			fmt.Sprintf("building the table, %d of %d rows", done, o.tableRows))
		if err != nil {
			return err
		}
		built += d
		done += n
	}
	if o.tableRows > 0 {
		row("build table (inserts)", int64(o.tableRows), built, "")
	}
	var per []time.Duration
	var total time.Duration
	for i := range o.files {
		d, err := ingest(fmt.Sprintf("file-%04d.csv", i), o.fileRows, 0.5,
			fmt.Sprintf("measured file %d of %d", i+1, o.files))
		if err != nil {
			return err
		}
		per = append(per, d)
		total += d
	}
	slices.Sort(per)
	row("ingest: parse + MERGE", int64(o.files*o.fileRows), total,
		fmt.Sprintf("%s ids, table %d rows; per file p50 %.3fs, max %.3fs", o.ids, o.tableRows, per[len(per)/2].Seconds(), per[len(per)-1].Seconds()))

	// The processor's catch-up (as RunAvailableNow), one micro-batch at a
	// time so the line can follow it.
	latest, err := db.LatestVersion(cdc.RawTable)
	if err != nil {
		return err
	}
	proc := a.processor(db)
	line.Show("bench: stream processor: raw version 0 of %d", latest)
	start := time.Now()
	var feed int64
	var batches int
	for {
		b, err := proc.RunOnce(ctx)
		if err != nil {
			return err
		}
		if !b.Committed {
			break
		}
		batches++
		feed += b.ChangeRows
		line.Update("bench: stream processor: raw version %d of %d", b.ToVersion, latest)
		if b.ToVersion >= latest {
			break
		}
	}
	row("process: change feed -> aggregates", feed, time.Since(start), fmt.Sprintf("%d micro-batches", batches))

	if o.lookups > 0 && len(g.ids) > 0 {
		start = time.Now()
		for i := range o.lookups {
			if _, err := cdc.TxnHistory(db, g.ids[g.rng.IntN(len(g.ids))]); err != nil {
				return err
			}
			line.Update("bench: txn history lookups: %d of %d", i+1, o.lookups)
		}
		d := time.Since(start)
		row("txn history lookups", int64(o.lookups), d, fmt.Sprintf("%.1f µs per lookup", float64(d.Microseconds())/float64(o.lookups)))
	}
	line.Clear()
	return a.print(out)
}
