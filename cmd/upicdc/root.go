package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	environ        []string // KEY=VALUE, as os.Environ returns it

	configFile string
	formatFlag string
	format     render.Format
	verbose    bool

	cfg    config.Config
	loc    *time.Location
	tables agg.Config // what the derived tables are computed with
	log    *slog.Logger

	// shared is the daemon's open store when this invocation was forwarded
	// to `serve` (see forward.go); dir is then the caller's working
	// directory, against which relative paths are read.
	shared *store.DB
	dir    string
}

// flagKeys maps flags to the config keys they set.
func flagKeys() map[string]string { return map[string]string{"data-dir": "data_dir"} }

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var fwd exitStatus
	if errors.As(err, &fwd) {
		return fwd.code
	}
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

// lookupEnv reads one variable of the app's environment (a later entry wins,
// as in os/exec).
func (a *app) lookupEnv(name string) (string, bool) {
	for i := len(a.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(a.environ[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// execute runs the command line args. Every mistake in how upicdc was called
// (unknown command or flag, wrong number of arguments, bad flag value) comes
// back as a usageError.
func execute(ctx context.Context, root *cobra.Command, args []string) error {
	// Find fails only for an unknown command (cobra's legacyArgs), with a
	// message over several lines; say it on one, with the suggestion.
	if _, _, err := root.Find(args); err != nil {
		return unknownCommand(root, firstCommandWord(root, args))
	}
	root.SetArgs(args)
	return root.ExecuteContext(context.WithValue(ctx, argvKey{}, args))
}

// unknownCommand is the usage error for a subcommand name that cmd lacks.
func unknownCommand(cmd *cobra.Command, name string) error {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which only its own message sets
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if cmd.HasParent() {
		msg += fmt.Sprintf(" for %q", cmd.CommandPath())
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	} else {
		msg += fmt.Sprintf(" (see %q)", cmd.CommandPath()+" --help")
	}
	return usageError{errors.New(msg)}
}

// firstCommandWord returns the first argument that is neither a flag nor a
// flag's value, as cobra reads the command line.
func firstCommandWord(root *cobra.Command, args []string) string {
	takesValue := func(f *pflag.Flag) bool { return f == nil || f.NoOptDefVal == "" }
	lookup := func(name string) *pflag.Flag {
		if f := root.PersistentFlags().Lookup(name); f != nil {
			return f
		}
		return root.Flags().Lookup(name)
	}
	for i := 0; i < len(args); i++ {
		s := args[i]
		switch {
		case s == "--":
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		case strings.HasPrefix(s, "--") && !strings.Contains(s, "="):
			if takesValue(lookup(s[2:])) {
				i++
			}
		case strings.HasPrefix(s, "-") && len(s) == 2:
			f := root.PersistentFlags().ShorthandLookup(s[1:])
			if f == nil {
				f = root.Flags().ShorthandLookup(s[1:])
			}
			if takesValue(f) {
				i++
			}
		case s != "" && !strings.HasPrefix(s, "-"):
			return s
		}
	}
	return ""
}

// usageArgs makes every command's argument check a usageError that says
// how the command is called.
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				var u usageError
				if errors.As(err, &u) {
					return err
				}
				return usageError{fmt.Errorf("%s: %w (usage: %s)", c.Name(), err, strings.TrimSuffix(c.UseLine(), " [flags]"))}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		usageArgs(sub)
	}
}

// checkVersionFlags refuses a negative --version, --from or --to given on
// the command line: versions start at 0, and the flags' default (-1, the
// latest) is what leaving them out means.
func checkVersionFlags(cmd *cobra.Command) error {
	for _, name := range []string{"version", "from", "to"} {
		f := cmd.Flags().Lookup(name)
		if f == nil || !f.Changed || f.Value.Type() != "int64" {
			continue
		}
		if n, err := strconv.ParseInt(f.Value.String(), 10, 64); err == nil && n < 0 {
			hint := ""
			if f.DefValue == "-1" {
				hint = fmt.Sprintf(" (leave --%s out for the latest)", name)
			}
			return usageError{fmt.Errorf("--%s %d: versions start at 0%s", name, n, hint)}
		}
	}
	return nil
}

func newRootCommand(stdout, stderr io.Writer, environ []string) *cobra.Command {
	return newRoot(&app{stdout: stdout, stderr: stderr, environ: environ})
}

// newRoot builds the command tree around a.
func newRoot(a *app) *cobra.Command {
	stdout, stderr := a.stdout, a.stderr
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
			if err := checkVersionFlags(cmd); err != nil {
				return err
			}
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
		newCheckCommand(a),
		newConfigCommand(a),
		newVersionCommand(a),
		newServeCommand(a),
		newAlertsCommand(a),
		newAuditCommand(a),
		newBenchCommand(a),
		newVacuumCommand(a), newRetentionCommand(a), newConsumersCommand(a),
		newCompactCommand(a), newBackupCommand(a), newRestoreCommand(a),
		newSQLCommand(a),
	)
	root.AddCommand(deltaCommands(a)...)
	usageArgs(root)
	a.forwardReads(root)
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
		File:      a.abs(a.configFile),
		Flags:     cmd.Flags(),
		FlagKeys:  flagKeys(),
		LookupEnv: a.lookupEnv,
		Environ:   a.environ,
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
	if a.dir != "" {
		cfg.DataDir, cfg.Inbox.Dir, cfg.Export.Dir = a.abs(cfg.DataDir), a.abs(cfg.Inbox.Dir), a.abs(cfg.Export.Dir)
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
	if a.shared != nil && readOnly {
		return a.shared, nil // forwarded to serve: its store, open already
	}
	return agg.Open(a.cfg.DataDir, a.tables, store.Options{ReadOnly: readOnly, Logger: a.log})
}

// closeStore closes a store openStore opened (never serve's).
func (a *app) closeStore(db *store.DB) {
	if db != a.shared {
		_ = db.Close()
	}
}

// abs reads a relative path against the caller's working directory when
// the command was forwarded to serve ("" stays "").
func (a *app) abs(path string) string {
	if a.dir == "" || path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(a.dir, path)
}

// openExisting opens an existing store for writing: a data dir without one
// (a mistyped --data-dir, say) is store.ErrNoStore, not a new empty store.
func (a *app) openExisting() (*store.DB, error) {
	path := filepath.Join(a.cfg.DataDir, store.FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open store %s: %w", path, store.ErrNoStore)
	}
	return a.openStore(false)
}

// openOrCreate opens the store for writing, creating it if the data dir has
// none, and then says so on stderr: a mistyped --data-dir must not go
// unnoticed.
func (a *app) openOrCreate() (*store.DB, error) {
	_, statErr := os.Stat(filepath.Join(a.cfg.DataDir, store.FileName))
	db, err := a.openStore(false)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(a.stderr, "upicdc: created a new store in %s\n", a.cfg.DataDir)
	}
	return db, nil
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
