package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/cdc/delta"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/store"
)

func newServeCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: watch the inbox, run the stream processor on its trigger, serve the HTTP API",
		Long: `serve is upicdc as a service. It holds the store for its lifetime and:

  - takes batch files from inbox.dir (default <data_dir>/inbox) oldest first, MERGEs each as one
    commit and moves it to inbox/processed/, or to inbox/rejected/ with NAME.error beside it.
    Writers must create files under a temporary name (.name, *.tmp, *.partial) and rename them
    into the inbox when complete;
  - runs the stream processor on stream.trigger: an interval ("5s"), "0s" (as soon as a file is
    committed), "availableNow" (catch up once, then stop) or a cron spec ("@every 1m");
  - runs the Delta export (as ` + "`upicdc export`" + `, into export.dir) on export.schedule (cron),
    when set;
  - serves the read-only JSON API and /metrics on http.listen (default 127.0.0.1:8080);
  - serves read-only SQL over the MySQL protocol on sql.listen (default 127.0.0.1:3307;
    "" turns it off), database upicdc, for the mysql CLI, pandas and BI tools;
  - runs read commands (aggregates, windows, history, changes, txn, stale, sql, reconcile,
    check, export) given while it runs, through the Unix socket <data_dir>/upicdc.sock.

SIGTERM or SIGINT finish the current MERGE and micro-batch and exit 0 within shutdown_timeout.
SIGHUP, or a change to the config file, reloads log.level, inbox.poll_interval, stream.trigger,
stream.max_versions_per_trigger, stream.max_rows_per_trigger, export.schedule and shutdown_timeout; other changed keys are
logged (and listed in /api/v1/status) as needing a restart. Under systemd (Type=notify) it
reports READY=1 once caught up, RELOADING=1, STOPPING=1, and WATCHDOG=1 when WatchdogSec is set.
Logs go to stderr at log.level (-v is not needed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.serve(cmd) },
	}
}

// serve runs the daemon until SIGTERM/SIGINT (the command's context) or a
// worker's failure.
func (a *app) serve(cmd *cobra.Command) error {
	ctx := cmd.Context()
	// A service logs at its configured level whatever -v says; the level is
	// a LevelVar so a reload can change it.
	level := new(slog.LevelVar)
	level.Set(a.cfg.Log.SlogLevel())
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(a.stderr, opts)
	if a.cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(a.stderr, opts)
	}
	log := slog.New(h)

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("serve: metrics: %w", err)
		}
	}

	configFile := a.configFile
	if configFile == "" {
		configFile, _ = a.lookupEnv(config.EnvConfigFile)
	}
	// SIGHUP must be caught before READY=1, or systemd's `reload` would
	// kill the process (SIGHUP's default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d := daemon.New(daemon.Options{
		Config: a.cfg,
		Load: func() (config.Config, error) {
			return config.Load(config.LoadOptions{
				File:      a.configFile,
				Flags:     cmd.Flags(),
				FlagKeys:  flagKeys(),
				LookupEnv: a.lookupEnv,
				Environ:   a.environ,
			})
		},
		ConfigFile: configFile,
		// export.schedule runs the same incremental export as `upicdc
		// export`, into export.dir.
		// (delta.Export logs what each run wrote.)
		Export: func(ctx context.Context, db *store.DB) error {
			_, err := delta.Export(ctx, db, a.cfg.ExportDir(), delta.Options{Logger: log})
			return err
		},
		// Read commands (aggregates, sql, check, …) run here while serve
		// holds the store, through the data dir's Unix socket.
		Command:    runForwarded,
		Logger:     log,
		LogLevel:   level,
		Registerer: reg,
		Gatherer:   reg,
	})
	// go-mysql-server logs through logrus's standard logger; the daemon
	// logs through slog, and SQL errors reach the client that ran them.
	logrus.SetOutput(io.Discard)
	if err := d.Open(ctx); err != nil {
		return err
	}
	if tcp, ok := d.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		log.Warn("http.listen is not a loopback address and the API has no authentication: whoever can reach it can read every transaction; keep it on loopback or behind an authenticating proxy",
			"addr", d.Addr().String())
	}
	// The inbox (with processed/ and rejected/) exists from here on: Open
	// creates it before it listens. Whatever log.level says, say where the
	// API is (port 0 picks one).
	fmt.Fprintf(a.stdout, "upicdc serve: listening on http://%s (data_dir %s)\n", d.Addr(), a.cfg.DataDir)
	if addr := d.SQLAddr(); addr != nil {
		fmt.Fprintf(a.stdout, "upicdc serve: SQL (MySQL protocol) on %s, database upicdc\n", addr)
	}
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading the configuration")
			d.Reload()
			continue
		case <-ctx.Done():
			log.Info("signal received: finishing the current work")
		case <-d.Done():
		}
		break
	}
	return d.Close()
}
