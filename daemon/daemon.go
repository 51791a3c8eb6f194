package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"
	"golang.org/x/sync/errgroup"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon/httpapi"
	"github.com/upicdc/upicdc/daemon/sqlserver"
	"github.com/upicdc/upicdc/store"
)

// Options configures a Daemon. Config is required; everything else has a
// default.
type Options struct {
	// Config is the effective configuration at start.
	Config config.Config
	// Load re-reads the configuration for a reload (SIGHUP or a changed
	// config file). Nil: reloads are refused.
	Load func() (config.Config, error)
	// ConfigFile is watched for changes, which reload like SIGHUP; "" for none.
	ConfigFile string
	// Logger receives the daemon's logs (default: discard).
	Logger *slog.Logger
	// LogLevel, if set, is the level of Logger's handler; reloads set it
	// from log.level.
	LogLevel *slog.LevelVar
	// Registerer receives the daemon's metrics; Gatherer serves /metrics.
	// Both default to a private registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Export writes the Delta export of db; export.schedule runs it (never
	// two at once). Nil: a schedule only logs that no export is available.
	Export func(ctx context.Context, db *store.DB) error
	// Clock drives every timer (default: the wall clock). Tests use a fake.
	Clock Clock
	// Notify sends a state to the service manager (default: sd_notify, a
	// no-op unless $NOTIFY_SOCKET is set).
	Notify func(state string) error
	// StoreTimeout is how long Open waits for another process's lock on the
	// store (default 1s, then store.ErrLocked).
	StoreTimeout time.Duration
	// Command runs read commands forwarded by the CLI through the data
	// dir's Unix socket (see Forward). Nil: no socket.
	Command CommandFunc
}

// Daemon is `upicdc serve`: it owns the store for its lifetime (bbolt's
// exclusive lock) and runs the inbox, the stream processor's scheduler, the
// export schedule, config reloads and the HTTP API as workers of one
// errgroup. The HTTP API reads the same store: bbolt read transactions never
// block the writer.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	clock  Clock
	notify func(string) error

	db       *store.DB
	tables   agg.Config // what the derived tables are computed with (windows.*; fixed until a restart)
	merger   *cdc.Merger
	metrics  *metrics
	notifier *notifier // delivers merchant_alerts' transitions
	recon    *reconcileMetrics
	inbox    *inbox
	events   *commitFeed // /api/v1/events
	ln       net.Listener
	srv      *http.Server
	cfgw     *configWatcher
	sql      *sqlserver.Server // nil when sql.listen is ""
	cmds     *commandServer    // nil without Options.Command

	// stop ends the workers' loops (soft); abort also cancels the work in
	// progress (a MERGE or micro-batch rolls back) when the shutdown timeout
	// runs out.
	stop, abort context.CancelFunc
	workCtx     context.Context
	g           *errgroup.Group
	gctx        context.Context
	closeOnce   sync.Once
	closeErr    error

	// Signals (capacity 1, coalescing).
	data, triggerChanged, pollChanged, exportChanged, reload chan struct{}

	ready     atomic.Bool
	startedAt time.Time

	// batchHook, set by tests before Open, is the processor's agg.Options.Hook.
	batchHook func(agg.Step) error

	// notifyMu orders sd_notify messages: once STOPPING=1 is sent, no
	// READY=1 (from a reload finishing late) may follow it.
	notifyMu sync.Mutex
	stopping bool

	mu             sync.Mutex
	cfg            config.Config
	trigger        config.Trigger
	exportSched    cron.Schedule
	pendingRestart []string
	// errs holds each component's last error until that component next
	// succeeds; /api/v1/status shows the newest.
	errs       map[string]ErrorInfo
	lastReload time.Time
	lastVacuum time.Time
	// lastCompaction is the newest scheduled compaction (nil: none yet).
	lastCompaction *CompactionJSON
}

// ErrorInfo is the last error a worker hit, for /api/v1/status. It is
// cleared once that worker next succeeds.
type ErrorInfo struct {
	// Time is when it happened (RFC 3339 in JSON).
	Time time.Time `json:"time"`
	// Component is the worker: inbox, stream, export or config.
	Component string `json:"component"`
	Message   string `json:"message"`
}

// New returns a daemon; Open starts it.
func New(opts Options) *Daemon {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.Notify == nil {
		opts.Notify = func(state string) error {
			_, err := sddaemon.SdNotify(false, state)
			return err
		}
	}
	if opts.Registerer == nil || opts.Gatherer == nil {
		reg := prometheus.NewRegistry()
		opts.Registerer, opts.Gatherer = reg, reg
	}
	ch := func() chan struct{} { return make(chan struct{}, 1) }
	return &Daemon{
		opts: opts, log: opts.Logger, clock: opts.Clock, notify: opts.Notify,
		data: ch(), triggerChanged: ch(), pollChanged: ch(), exportChanged: ch(), reload: ch(),
		cfg: opts.Config, errs: map[string]ErrorInfo{},
	}
}

// Open opens the store, binds the HTTP listener and starts the workers. It
// returns once the API is listening (Addr); readiness (/readyz, READY=1)
// follows the first catch-up of the stream processor. A second daemon on the
// same data directory fails here with store.ErrLocked.
func (d *Daemon) Open(ctx context.Context) (err error) {
	cfg := d.opts.Config
	trig, err := cfg.StreamTrigger()
	if err != nil {
		return err
	}
	sched, err := cfg.ExportSchedule()
	if err != nil {
		return err
	}
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	if d.tables, err = AggConfig(cfg); err != nil {
		return err
	}
	d.trigger, d.exportSched = trig, sched
	d.startedAt = d.clock.Now()

	defer func() {
		if err != nil {
			d.closeResources()
		}
	}()
	d.db, err = agg.Open(cfg.DataDir, d.tables, store.Options{Timeout: d.opts.StoreTimeout, Logger: d.log})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("serve: %w: stop the other process (another `upicdc serve`?) or give this one another data_dir", err)
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.events, err = newCommitFeed(d.db, d.log.With("component", "events")); err != nil {
		return err
	}
	d.merger = cdc.NewMerger(d.db, cdc.ParseOptions{Location: loc}, d.log)
	d.merger.SetOrigin("inbox")
	d.inbox = &inbox{
		dir: cfg.InboxDir(), clock: d.clock, log: d.log.With("component", "inbox"),
		ingest:   d.ingest,
		merged:   d.fileMerged,
		rejected: d.fileRejected,
		audit: func(name string, size int64, err error) error {
			return d.merger.RecordRejected(d.workCtx, name, size, err)
		},
		failed:       d.fileFailed,
		recovered:    func() { d.clearError("inbox") },
		pollInterval: func() time.Duration { return d.config().Inbox.PollInterval },
		settle:       func() time.Duration { return d.config().Inbox.Settle },
		pollChanged:  d.pollChanged,
	}
	if err := d.inbox.open(); err != nil {
		return err
	}
	d.metrics, err = newMetrics(d.opts.Registerer, d.gauges(), d.db.Tables())
	if err != nil {
		return err
	}
	if d.recon, err = newReconcileMetrics(d.opts.Registerer); err != nil {
		return err
	}
	if d.notifier, err = newAlerting(d.opts.Registerer, d.db, cfg.Alerts, d.tables.Rules, d.log.With("component", "alerts")); err != nil {
		return err
	}
	if d.opts.ConfigFile != "" {
		if d.cfgw, err = newConfigWatcher(d.opts.ConfigFile); err != nil {
			return err
		}
	}
	d.ln, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen %q: %w", cfg.HTTP.Listen, err)
	}
	api := httpapi.New(httpapi.Options{
		DB:       d.db,
		Location: loc,
		Status:   func(context.Context) (any, error) { return d.Status() },
		Ready:    d.readiness,
		Events:   d.events.subscribe,
		Metrics:  promhttp.HandlerFor(d.opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{d.log}, Timeout: 10 * time.Second}),
		Logger:   d.log.With("component", "http"),
	})
	d.srv = httpapi.NewServer(api, d.log)
	d.srv.RegisterOnShutdown(d.events.close) // event streams end; Shutdown need not wait for them
	if err := d.openSQL(cfg, loc); err != nil {
		return err
	}

	d.log.Info("upicdc serve started", "addr", d.ln.Addr().String(), "data_dir", cfg.DataDir,
		"inbox", cfg.InboxDir(), "trigger", trig.String(), "stream", cfg.Stream.Name)
	runCtx, stop := context.WithCancel(context.Background())
	d.workCtx, d.abort = context.WithCancel(context.Background())
	d.stop = stop
	d.g, d.gctx = errgroup.WithContext(runCtx)
	d.g.Go(func() error { return d.serveHTTP(d.gctx) })
	d.g.Go(func() error { return d.inbox.loop(d.gctx) })
	d.g.Go(func() error { return d.scheduler().loop(d.gctx) })
	d.g.Go(func() error { return d.exportLoop(d.gctx) })
	d.g.Go(func() error { return d.retentionLoop(d.gctx) })
	d.g.Go(func() error { return d.reconcileLoop(d.gctx) })
	d.g.Go(func() error { return d.reloadLoop(d.gctx) })
	d.g.Go(func() error { return d.notifier.loop(d.gctx) })
	if d.cfgw != nil {
		d.g.Go(func() error { return d.cfgw.loop(d.gctx, d.clock, d.Reload, d.log) })
	}
	d.startSQL()
	if wd, err := sddaemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		d.g.Go(func() error { return d.watchdog(d.gctx, wd) })
	}
	return nil
}

// AggConfig is what the derived tables are computed with, from
// windows.sizes and windows.timezone.
func AggConfig(cfg config.Config) (agg.Config, error) {
	zone, err := cfg.WindowsLocation()
	if err != nil {
		return agg.Config{}, err
	}
	rules := make([]agg.Rule, len(cfg.Alerts.Rules))
	for i, r := range cfg.Alerts.Rules {
		rules[i] = agg.Rule{Name: r.Name, Window: r.Window, When: r.When, Severity: r.Severity}
	}
	if err := agg.CheckRules(rules, cfg.Windows.Sizes); err != nil {
		key := "alerts.rules"
		var re *agg.RuleError
		if errors.As(err, &re) {
			key = "alerts.rules[" + re.Rule + "]"
		}
		return agg.Config{}, &config.FieldError{Key: key, Err: err}
	}
	return agg.Config{WindowSizes: cfg.Windows.Sizes, Zone: zone, Rules: rules}, nil
}

// DB returns the store the daemon holds, for reads (bbolt read transactions
// never block the daemon's writes). Valid between Open and Close.
func (d *Daemon) DB() *store.DB { return d.db }

// Addr returns the HTTP API's address (useful with port 0).
func (d *Daemon) Addr() net.Addr { return d.ln.Addr() }

// Done is closed when a worker failed (then Close returns its error) or
// Close was called.
func (d *Daemon) Done() <-chan struct{} { return d.gctx.Done() }

// Close stops the workers: each finishes what it is doing (the current MERGE
// and its move, the current micro-batch, open HTTP requests) within
// shutdown_timeout, after which work in progress is cancelled (and rolled
// back). Then it closes the store. It returns the first error.
func (d *Daemon) Close() error {
	if d.g == nil {
		return nil // never opened
	}
	d.closeOnce.Do(func() {
		d.sdNotify(sddaemon.SdNotifyStopping)
		d.log.Info("shutting down", "timeout", d.config().ShutdownTimeout)
		d.stop()
		done := make(chan error, 1)
		go func() { done <- d.g.Wait() }()
		timeout := d.clock.NewTimer(d.config().ShutdownTimeout)
		var err error
		select {
		case err = <-done:
			timeout.Stop()
		case <-timeout.C():
			d.log.Warn("shutdown timeout: cancelling the work in progress (it rolls back)")
			d.abort()
			err = <-done
			if err == nil {
				err = fmt.Errorf("shutdown took longer than shutdown_timeout (%s); work in progress was cancelled and rolled back", d.config().ShutdownTimeout)
			}
		}
		d.abort()
		d.closeErr = errors.Join(err, d.closeResources())
		if d.closeErr == nil {
			d.log.Info("stopped")
		}
	})
	return d.closeErr
}

// closeResources closes what Open opened, in reverse order.
func (d *Daemon) closeResources() error {
	var errs []error
	if d.ln != nil && d.srv == nil {
		errs = append(errs, d.ln.Close())
	}
	if d.cfgw != nil {
		errs = append(errs, d.cfgw.close())
	}
	errs = append(errs, d.closeSQL())
	if d.inbox != nil {
		errs = append(errs, d.inbox.close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	return errors.Join(errs...)
}

// config returns the current configuration.
func (d *Daemon) config() config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// setError records component's failure for /api/v1/status.
func (d *Daemon) setError(component string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs[component] = ErrorInfo{Time: d.clock.Now().UTC(), Component: component, Message: err.Error()}
}

// clearError forgets component's failure: it has succeeded since.
func (d *Daemon) clearError(component string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.errs, component)
}

// lastError returns the newest failure not yet followed by a success of
// the same component, or nil. Callers hold mu.
func (d *Daemon) lastError() *ErrorInfo {
	var last *ErrorInfo
	for _, e := range d.errs {
		if last == nil || e.Time.After(last.Time) || e.Time.Equal(last.Time) && e.Component < last.Component {
			last = &e
		}
	}
	return last
}

// serveHTTP runs the API until ctx is done, then shuts it down gracefully.
func (d *Daemon) serveHTTP(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- d.srv.Serve(d.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	// Requests in flight get until the abort (shutdown timeout).
	if err := d.srv.Shutdown(d.workCtx); err != nil {
		_ = d.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// ingest MERGEs one inbox file's content with the work context: shutdown
// lets it finish.
func (d *Daemon) ingest(name string, data []byte) (cdc.Result, error) {
	return d.merger.IngestData(d.workCtx, name, data)
}

func (d *Daemon) fileMerged(r cdc.Result) {
	d.clearError("inbox")
	d.metrics.ingested(r)
	switch {
	case r.Duplicate:
		d.log.Info("inbox file was already ingested; moved to processed/", "component", "inbox", "file", r.File,
			"as", r.Previous.Name, "version", r.Previous.Version)
	case r.Empty:
		d.log.Info("inbox file has no rows; moved to processed/", "component", "inbox", "file", r.File)
	default:
		d.events.committed()
		signal(d.data)
	}
}

func (d *Daemon) fileRejected(name string, err error) {
	d.clearError("inbox") // the inbox works; the file was bad
	d.metrics.filesRejected.Inc()
	d.log.Warn("inbox file refused; moved to rejected/", "component", "inbox", "file", name, "err", err)
}

func (d *Daemon) fileFailed(name string, err error) {
	d.metrics.ingestErrors.Inc()
	d.setError("inbox", err)
	d.log.Error("inbox file not ingested; will retry", "component", "inbox", "file", name, "err", err)
}

// processor returns a processor with the current settings (they may change
// on reload; a Processor is a small value).
func (d *Daemon) processor() *agg.Processor {
	cfg := d.config()
	return agg.NewProcessor(d.db, agg.Options{
		Stream:                cfg.Stream.Name,
		MaxVersionsPerTrigger: cfg.Stream.MaxVersionsPerTrigger,
		MaxRowsPerTrigger:     int64(cfg.Stream.MaxRowsPerTrigger),
		Tables:                d.tables,
		Logger:                d.log.With("component", "stream"),
		Hook:                  d.batchHook,
	})
}

func (d *Daemon) scheduler() *scheduler {
	return &scheduler{
		clock: d.clock,
		log:   d.log.With("component", "stream"),
		trigger: func() config.Trigger {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.trigger
		},
		changed: d.triggerChanged,
		data:    d.data,
		run:     d.runBatch,
		ready: func() {
			d.log.Info("ready: stream processor caught up", "component", "stream")
			d.sdNotify(sddaemon.SdNotifyReady) // before /readyz: whoever sees ready sees READY=1 sent
			d.ready.Store(true)
		},
		failed: func(err error) {
			d.metrics.batchErrors.Inc()
			d.setError("stream", err)
			d.log.Error("micro-batch failed; will retry", "component", "stream", "err", err)
		},
	}
}

// runBatch runs one micro-batch with the work context: shutdown lets it finish.
func (d *Daemon) runBatch() (agg.BatchResult, error) {
	res, err := d.processor().RunOnce(d.workCtx)
	d.events.committed() // a micro-batch, or a rebuild (even one before a failure)
	if err == nil {
		d.clearError("stream")
	}
	if err == nil && res.Committed {
		d.metrics.batchDuration.Observe(res.Duration.Seconds())
		d.metrics.batchRows.Add(float64(res.ChangeRows))
		for table := range res.Versions {
			d.metrics.commits.WithLabelValues(table).Inc()
		}
	}
	return res, err
}

// sdNotify tells the service manager state; after STOPPING=1 it only sends
// watchdog pings (systemd still wants them while the daemon winds down).
func (d *Daemon) sdNotify(state string) {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	if d.stopping && state != sddaemon.SdNotifyWatchdog {
		return
	}
	d.stopping = d.stopping || state == sddaemon.SdNotifyStopping
	if err := d.notify(state); err != nil {
		d.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// readiness is /readyz: ready once the store is open and the first catch-up
// is done.
func (d *Daemon) readiness() (bool, string) {
	if d.ready.Load() {
		return true, "ready"
	}
	return false, "catching up: the stream processor's first run has not finished"
}

// watchdog pings systemd's watchdog at half its interval while the store
// answers reads.
func (d *Daemon) watchdog(ctx context.Context, every time.Duration) error {
	d.log.Info("systemd watchdog enabled", "interval", every)
	for {
		t := d.clock.NewTimer(max(every/2, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
		if _, err := d.db.LatestVersion(cdc.RawTable); err != nil {
			d.log.Error("watchdog: store read failed; not pinging", "err", err)
			continue
		}
		d.sdNotify(sddaemon.SdNotifyWatchdog)
	}
}

// inboxDir is where the inbox is (for status).
func (d *Daemon) inboxDir() string { return filepath.Clean(d.opts.Config.InboxDir()) }

// slogPrinter adapts a slog.Logger to promhttp's ErrorLog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }
