package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/cdc"
	"github.com/upicdc/upicdc/store"
	"github.com/upicdc/upicdc/store/render"
)

// Output is rendered by package store/render, the encoding the HTTP API
// uses too: --format json prints the same objects the API returns.

// parseTime reads a time given on the command line: RFC 3339, a date and
// time without a zone ("2024-12-21 10:00:00") or a date alone
// ("2024-12-21", its midnight), read in loc.
func parseTime(flag, s string, loc *time.Location) (time.Time, error) {
	if t := strings.TrimSpace(s); len(t) == len(time.DateOnly) {
		if d, err := time.ParseInLocation(time.DateOnly, t, loc); err == nil {
			return d, nil
		}
	}
	us, err := cdc.ParseTime(s, loc)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return time.UnixMicro(us), nil
}

// versionFlags are --version N and --as-of TIME, which pick the version a
// command reads (Delta's versionAsOf and timestampAsOf).
type versionFlags struct {
	cmd     *cobra.Command
	version int64
	asOf    string
}

func (f *versionFlags) add(cmd *cobra.Command, withVersion bool) {
	f.cmd, f.version = cmd, -1
	if withVersion {
		cmd.Flags().Int64Var(&f.version, "version", -1, "table version to read (default: latest)")
	}
	cmd.Flags().StringVar(&f.asOf, "as-of", "", "read the table as of this time: its newest version committed then (RFC 3339, or 2024-12-21 10:00:00 in input.timezone)")
}

// check refuses --version with --as-of; call it before opening the store.
func (f *versionFlags) check() error {
	if f.cmd.Flags().Changed("as-of") && f.cmd.Flags().Changed("version") {
		return usageError{errors.New("--version and --as-of: give one of them, not both")}
	}
	return nil
}

// resolve returns the version of table to read (-1: latest).
func (f *versionFlags) resolve(a *app, db *store.DB, table string) (int64, error) {
	if !f.cmd.Flags().Changed("as-of") {
		return f.version, nil
	}
	at, err := parseTime("--as-of", f.asOf, a.loc)
	if err != nil {
		return 0, err
	}
	v, err := db.VersionAsOf(table, at)
	if err != nil {
		return 0, fmt.Errorf("--as-of %s: %w", f.asOf, err)
	}
	return v, nil
}

// print writes a table in the chosen format.
func (a *app) print(t *render.Table) error {
	if err := t.Write(a.stdout, a.format); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// tableError turns an unknown table into a usage error (exit status 2):
// its message lists the tables.
func tableError(err error) error {
	if errors.Is(err, store.ErrUnknownTable) {
		return usageError{err}
	}
	return err
}

// isTerminal reports whether w is a terminal: progress lines that redraw
// themselves belong there, not in logs or pipes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
