package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/agg"
	"github.com/upicdc/upicdc/config"
	"github.com/upicdc/upicdc/daemon"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// app is what every subcommand shares: the effective config, the output
// format and the writers. It is built once per invocation.
type app struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)

	configFile string
	formatFlag string
	format     render.Format
	verbose    bool

	cfg    config.Config
	loc    *time.Location
	tables agg.Config // what the derived tables are computed with
	log    *slog.Logger
}

// flagKeys maps flags to the config keys they set.
func flagKeys() map[string]string { return map[string]string{"data-dir": "data_dir"} }

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// oneLine folds a (possibly joined) error into one line for stderr.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func newRootCommand(stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	root := &cobra.Command{
		Use:   "upicdc",
		Short: "UPI transactions CDC: MERGE batch files into a versioned table with a change feed, keep merchant aggregates",
		Long: `upicdc MERGEs UPI transaction batch files (CSV, JSON Lines, Parquet) into the versioned
table raw_upi_transactions_v1 with a change data feed, and a stream processor with
exactly-once checkpoints keeps the merchant aggregates in aggregated_upi_transactions.
Everything lives in one bbolt file under --data-dir.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Annotations["noConfig"] == "true" {
				return nil
			}
			return a.load(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.String("data-dir", config.Default().DataDir, "directory holding the store (config key data_dir, env UPICDC_DATA_DIR)")
	pf.StringVar(&a.configFile, "config", "", "config file (YAML, TOML or JSON; env UPICDC_CONFIG)")
	pf.StringVar(&a.formatFlag, "format", string(render.FormatTable), "output format: table, json or csv")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log progress to stderr at the configured log.level (default: warnings only)")

	root.AddCommand(
		newDemoCommand(a),
		newIngestCommand(a),
		newProcessCommand(a),
		newReprocessCommand(a),
		newAggregatesCommand(a),
		newWindowsCommand(a),
		newHistoryCommand(a),
		newChangesCommand(a),
		newTxnCommand(a),
		newStaleCommand(a),
		newReconcileCommand(a),
		newConfigCommand(a),
		newVersionCommand(a),
		newServeCommand(a),
		newBenchCommand(a),
	)
	root.AddCommand(deltaCommands(a)...)
	return root
}

// load reads the configuration once and sets up logging.
func (a *app) load(cmd *cobra.Command) error {
	f, err := render.ParseFormat(a.formatFlag)
	if err != nil {
		return usageError{fmt.Errorf("--%w", err)}
	}
	a.format = f
	cfg, err := config.Load(config.LoadOptions{
		File:      a.configFile,
		Flags:     cmd.Flags(),
		FlagKeys:  flagKeys(),
		LookupEnv: a.lookupEnv,
	})
	if err != nil {
		return err
	}
	loc, err := cfg.Location()
	if err != nil {
		return err
	}
	tables, err := daemon.AggConfig(cfg)
	if err != nil {
		return err
	}
	a.cfg, a.loc, a.tables = cfg, loc, tables
	level := cfg.Log.SlogLevel()
	if !a.verbose && level < slog.LevelWarn {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(a.stderr, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(a.stderr, opts)
	}
	a.log = slog.New(h)
	return nil
}

// openStore opens the store with every registered table declared;
// read-only commands never create one.
func (a *app) openStore(readOnly bool) (*store.DB, error) {
	return agg.Open(a.cfg.DataDir, a.tables, store.Options{ReadOnly: readOnly, Logger: a.log})
}

// freshDataDir is the data dir for commands that build a store of their own
// (demo, bench): a temporary directory removed by cleanup, or --data-dir if
// given, which must not hold a store yet.
func (a *app) freshDataDir(cmd *cobra.Command) (dir string, cleanup func(), err error) {
	if !cmd.Flags().Changed("data-dir") {
		tmp, err := os.MkdirTemp("", "upicdc-"+cmd.Name()+"-")
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", cmd.Name(), err)
		}
		return tmp, func() { os.RemoveAll(tmp) }, nil
	}
	if _, err := os.Stat(filepath.Join(a.cfg.DataDir, store.FileName)); err == nil {
		return "", nil, fmt.Errorf("%s: %s already holds a store; %s needs a fresh data dir", cmd.Name(), a.cfg.DataDir, cmd.Name())
	}
	return a.cfg.DataDir, func() {}, nil
}
