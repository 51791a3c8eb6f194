package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/upicdc/upicdc/store"
)

func newCompactCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the store file without its free pages (offline: stop serve first)",
		Long: `bbolt never gives pages back to the file system: a vacuum frees pages that
later writes reuse, but the file keeps its size. compact writes a compacted
copy beside the store, syncs and inspects it, and renames it over the store;
a crash at any point leaves either the old file or the new one, complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.compact(cmd) },
	}
}

func (a *app) compact(cmd *cobra.Command) error {
	res, err := store.Compact(a.cfg.DataDir, store.CompactOptions{Logger: a.log})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: compact needs the store to itself; stop serve first", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "compacted %s: %d → %d bytes in %s\n", a.cfg.DataDir, res.Before, res.After, res.Took.Round(time.Millisecond))
	return nil
}

func newBackupCommand(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a consistent copy of the store to FILE (while serve runs, through its HTTP API)",
		Long: `Writes a consistent copy of the store file (bbolt's Tx.WriteTo, one read
transaction) to FILE.tmp, syncs and inspects it, then renames it to FILE.
When serve holds the store, the copy comes from serve's GET /api/v1/backup
at http.listen. Restore it with "upicdc restore --from FILE".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("backup: --out FILE is required")}
			}
			tmp := out + ".tmp"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer func() { _ = os.Remove(tmp) }()
			n, via, err := a.backupTo(cmd, f)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := store.Inspect(tmp); err != nil {
				return fmt.Errorf("backup: the copy is not a good store file: %w", err)
			}
			if err := os.Rename(tmp, out); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			fmt.Fprintf(a.stdout, "backed up %s to %s (%d bytes, %s)\n", a.cfg.DataDir, out, n, via)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the backup file to write")
	return cmd
}

// backupTo copies the store to w: directly when no other process holds
// it, else from serve's HTTP API.
func (a *app) backupTo(cmd *cobra.Command, w io.Writer) (int64, string, error) {
	db, err := a.openStore(true)
	if err == nil {
		defer db.Close()
		n, err := db.Backup(w, nil)
		return n, "read from the store", err
	}
	if !errors.Is(err, store.ErrLocked) {
		return 0, "", err
	}
	host, port, serr := net.SplitHostPort(a.cfg.HTTP.Listen)
	if serr != nil || port == "0" {
		return 0, "", fmt.Errorf("%w; and http.listen %q does not say where serve's API is, to back up through it", err, a.cfg.HTTP.Listen)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/api/v1/backup"
	req, rerr := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
	if rerr != nil {
		return 0, "", fmt.Errorf("backup: %w", rerr)
	}
	resp, rerr := http.DefaultClient.Do(req)
	if rerr != nil {
		return 0, "", fmt.Errorf("backup: the store is in use and serve's API did not answer: %w", rerr)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, "", fmt.Errorf("backup: %s answered %s: %s", url, resp.Status, body)
	}
	n, cerr := io.Copy(w, resp.Body)
	if cerr == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		cerr = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if cerr != nil {
		return n, "", fmt.Errorf("backup from %s: %w", url, cerr)
	}
	return n, "through serve at " + url, nil
}

func newRestoreCommand(a *app) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Restore a backup into a data directory that has no store yet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageError{errors.New("restore: --from FILE is required")}
			}
			f, err := os.Open(from)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			n, err := store.Restore(a.cfg.DataDir, f)
			if err != nil {
				return err
			}
			db, err := a.openStore(true)
			if err != nil {
				return fmt.Errorf("restore: the restored store does not open: %w", err)
			}
			if err := db.Close(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "restored %s into %s (%d bytes); `upicdc check` verifies it\n", from, a.cfg.DataDir, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup file to restore")
	return cmd
}
