package agg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/upicdc/upicdc/store"
)

// reconcileCopyPattern names the directories ReconcileCopy works in.
const reconcileCopyPattern = ".reconcile-*"

// ReconcileCopy is Reconcile run on a copy of db's file, made in a new
// directory under dir (db.Backup: one read transaction, as long as copying
// the file takes) and removed afterwards. A bbolt read transaction held for
// the whole recomputation would keep every page the writers free from
// being reused, so the file would grow with each commit meanwhile, and
// once it outgrew its mapping the next commit would wait for the
// recomputation to end; on the copy, MERGEs and micro-batches go on
// beside it. The copy needs as much free space in dir as the store's
// file. Copies a crash left behind are removed first.
func ReconcileCopy(ctx context.Context, db *store.DB, dir, stream string, cfg Config) (Report, error) {
	if old, err := filepath.Glob(filepath.Join(dir, reconcileCopyPattern)); err == nil {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	work, err := os.MkdirTemp(dir, reconcileCopyPattern)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: copy: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	f, err := os.OpenFile(filepath.Join(work, store.FileName), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: copy: %w", err)
	}
	_, err = db.Backup(f, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: copy: %w", err)
	}
	defs, err := Defs(cfg)
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: %w", err)
	}
	cp, err := store.Open(work, store.Options{ReadOnly: true, Tables: defs})
	if err != nil {
		return Report{}, fmt.Errorf("reconcile: open the copy: %w", err)
	}
	defer func() { _ = cp.Close() }()
	return Reconcile(ctx, cp, stream, cfg)
}
