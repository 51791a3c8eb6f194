package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// retentionBench is `bench --scenario retention`'s flags.
type retentionBench struct {
	days, retainDays, dayRows int
	svg                       string
}

// retentionDay is one simulated day's measurements.
type retentionDay struct {
	day                         int
	csvBytes                    int64 // ingested so far
	off, retained, compacted    int64 // store file sizes after the day
	retainedUsed                int64 // retained's file less its free pages
	vacuumTook, compactTook     time.Duration
	vacuumedBytes, compactDelta int64
}

// simStore is one store of the scenario, on the simulated clock.
type simStore struct {
	dir  string
	db   *store.DB
	m    *cdc.Merger
	proc *agg.Processor
}

// benchRetention simulates o.days days of UPI traffic, one CSV file of
// o.dayRows rows a day (ordered ids; most rows update a recent
// transaction), MERGEd and processed into three stores whose clock is the
// simulated one: retention off; retention.history of o.retainDays days
// vacuumed daily; the same plus a daily compaction (vacuum --compact). It
// prints each day's store sizes beside the CSV bytes ingested and writes
// the plot as SVG to o.svg.
func (a *app) benchRetention(ctx context.Context, dir string, o retentionBench) error {
	var mu sync.Mutex
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	setDay := func(d int) {
		mu.Lock()
		defer mu.Unlock()
		now = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d)
	}
	open := func(s *simStore) error {
		db, err := agg.Open(s.dir, a.tables, store.Options{Logger: a.log, Now: clock})
		if err != nil {
			return err
		}
		s.db, s.m, s.proc = db, cdc.NewMerger(db, cdc.ParseOptions{Location: a.loc}, a.log), a.processor(db)
		return nil
	}
	var stores [3]*simStore
	for i, name := range []string{"off", "retained", "compacted"} {
		stores[i] = &simStore{dir: filepath.Join(dir, name)}
		if err := open(stores[i]); err != nil {
			return err
		}
	}
	defer func() {
		for _, s := range stores {
			if s.db != nil {
				s.db.Close()
			}
		}
	}()
	files := filepath.Join(dir, "bench-files")
	if err := os.MkdirAll(files, 0o750); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	g := &benchGen{rng: rand.New(rand.NewPCG(1, 2)), ordered: true}
	policy := store.Retention{History: time.Duration(o.retainDays) * 24 * time.Hour}
	size := func(s *simStore) (int64, error) {
		st, err := os.Stat(filepath.Join(s.dir, store.FileName))
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	var days []retentionDay
	var csvBytes int64
	for d := range o.days {
		setDay(d)
		g.clock = time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC).AddDate(0, 0, d)
		p := filepath.Join(files, fmt.Sprintf("day-%03d.csv", d+1))
		if err := g.file(p, o.dayRows, 0.6); err != nil {
			return fmt.Errorf("bench: write %s: %w", p, err)
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		csvBytes += st.Size()
		day := retentionDay{day: d + 1, csvBytes: csvBytes}
		for _, s := range stores {
			if _, err := s.m.IngestFile(ctx, p); err != nil {
				return err
			}
			if _, err := s.proc.RunAvailableNow(ctx); err != nil {
				return err
			}
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		for i, s := range stores[1:] {
			start := time.Now()
			res, err := agg.Vacuum(ctx, s.db, agg.VacuumOptions{Stream: a.cfg.Stream.Name, Policy: policy})
			if err != nil {
				return err
			}
			if i == 0 {
				day.vacuumTook = time.Since(start)
				for _, r := range res {
					day.vacuumedBytes += r.Bytes
				}
			}
		}
		c := stores[2]
		if err := c.db.Close(); err != nil {
			return err
		}
		c.db = nil
		cr, err := store.Compact(c.dir, store.CompactOptions{Logger: a.log})
		if err != nil {
			return err
		}
		day.compactTook, day.compactDelta = cr.Took, cr.Before-cr.After
		if err := open(c); err != nil {
			return err
		}
		if day.off, err = size(stores[0]); err != nil {
			return err
		}
		sp, err := stores[1].db.Space()
		if err != nil {
			return err
		}
		day.retained, day.retainedUsed = sp.File, sp.File-sp.Free
		if day.compacted, err = size(stores[2]); err != nil {
			return err
		}
		days = append(days, day)
		a.log.Info("bench day", "day", day.day, "csv_bytes", day.csvBytes, "off", day.off, "retained", day.retained, "compacted", day.compacted)
	}
	if o.svg != "" {
		svg := retentionSVG(days, o)
		if err := os.WriteFile(o.svg, []byte(svg), 0o644); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	out := render.NewTable("day", "csv_bytes", "store_off", "off_x_csv", "store_retained", "retained_used", "store_compacted", "compacted_x_csv",
		"vacuum_s", "vacuumed_bytes", "compact_s")
	ratio := func(a, b int64) render.Cell { return render.String(fmt.Sprintf("%.2f", float64(a)/float64(b))) }
	for _, d := range days {
		out.Add(render.Int(int64(d.day)), render.Int(d.csvBytes), render.Int(d.off), ratio(d.off, d.csvBytes), render.Int(d.retained),
			render.Int(d.retainedUsed), render.Int(d.compacted), ratio(d.compacted, d.csvBytes), render.String(fmt.Sprintf("%.3f", d.vacuumTook.Seconds())),
			render.Int(d.vacuumedBytes), render.String(fmt.Sprintf("%.3f", d.compactTook.Seconds())))
	}
	return a.print(out)
}

// retentionSVG plots store size (MB) over the simulated days: CSV bytes
// ingested, the store without retention, with retention (file size, and
// the part of it not free), and with retention and daily compaction.
func retentionSVG(days []retentionDay, o retentionBench) string {
	const w, h, left, right, top, bottom = 760, 420, 70, 190, 40, 50
	var maxY float64
	for _, d := range days {
		maxY = max(maxY, float64(d.csvBytes), float64(d.off), float64(d.retained), float64(d.compacted), float64(d.retainedUsed))
	}
	maxY = maxY / 1e6 * 1.05
	if maxY == 0 {
		maxY = 1
	}
	x := func(day int) float64 {
		if len(days) < 2 {
			return left
		}
		return left + float64(day-1)*float64(w-left-right)/float64(len(days)-1)
	}
	y := func(b int64) float64 { return float64(h-bottom) - float64(b)/1e6/maxY*float64(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">upicdc store size over %d simulated days, %d rows/day, retention %d days</text>`+"\n",
		left, len(days), o.dayRows, o.retainDays)
	// Axes and grid.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, h-bottom)
	for i := 0; i <= 5; i++ {
		v := maxY * float64(i) / 5
		yy := float64(h-bottom) - float64(i)/5*float64(h-top-bottom)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, yy, w-right, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f MB</text>`+"\n", left-6, yy+4, v)
	}
	for _, d := range days {
		if d.day == 1 || d.day%5 == 0 || d.day == len(days) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(d.day), h-bottom+18, d.day)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">day</text>`+"\n", (left+w-right)/2, h-bottom+38)
	series := []struct {
		name, color string
		val         func(retentionDay) int64
	}{
		{"CSV ingested", "#888888", func(d retentionDay) int64 { return d.csvBytes }},
		{"store, retention off", "#d62728", func(d retentionDay) int64 { return d.off }},
		{fmt.Sprintf("store, %dd retention", o.retainDays), "#1f77b4", func(d retentionDay) int64 { return d.retained }},
		{fmt.Sprintf("%dd retention, in use", o.retainDays), "#9467bd", func(d retentionDay) int64 { return d.retainedUsed }},
		{fmt.Sprintf("%dd retention + compact", o.retainDays), "#2ca02c", func(d retentionDay) int64 { return d.compacted }},
	}
	for i, s := range series {
		var pts []string
		for _, d := range days {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(d.day), y(s.val(d))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		ly := top + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", w-right+10, ly, w-right+30, ly, s.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", w-right+36, ly+4, s.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
