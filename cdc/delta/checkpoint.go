package delta

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Checkpoint rows: one action per row, the other columns null, as Spark
// writes them. Only the actions a checkpoint may hold are here.
type cpRow struct {
	Txn      *cpTxn      `parquet:"txn,optional"`
	Add      *cpAdd      `parquet:"add,optional"`
	Remove   *cpRemove   `parquet:"remove,optional"`
	MetaData *cpMetadata `parquet:"metaData,optional"`
	Protocol *cpProtocol `parquet:"protocol,optional"`
}

type cpTxn struct {
	AppID       string `parquet:"appId"`
	Version     int64  `parquet:"version"`
	LastUpdated *int64 `parquet:"lastUpdated,optional"`
}

type cpAdd struct {
	Path             string            `parquet:"path"`
	PartitionValues  map[string]string `parquet:"partitionValues"`
	Size             int64             `parquet:"size"`
	ModificationTime int64             `parquet:"modificationTime"`
	DataChange       bool              `parquet:"dataChange"`
	Stats            *string           `parquet:"stats,optional"`
}

type cpRemove struct {
	Path                 string            `parquet:"path"`
	DeletionTimestamp    *int64            `parquet:"deletionTimestamp,optional"`
	DataChange           bool              `parquet:"dataChange"`
	ExtendedFileMetadata *bool             `parquet:"extendedFileMetadata,optional"`
	PartitionValues      map[string]string `parquet:"partitionValues"`
	Size                 *int64            `parquet:"size,optional"`
}

type cpFormat struct {
	Provider string            `parquet:"provider"`
	Options  map[string]string `parquet:"options"`
}

type cpMetadata struct {
	ID               string            `parquet:"id"`
	Name             *string           `parquet:"name,optional"`
	Description      *string           `parquet:"description,optional"`
	Format           cpFormat          `parquet:"format"`
	SchemaString     string            `parquet:"schemaString"`
	PartitionColumns []string          `parquet:"partitionColumns,list"`
	Configuration    map[string]string `parquet:"configuration"`
	CreatedTime      *int64            `parquet:"createdTime,optional"`
}

type cpProtocol struct {
	MinReaderVersion int32 `parquet:"minReaderVersion"`
	MinWriterVersion int32 `parquet:"minWriterVersion"`
}

// checkpoint writes the classic checkpoint of version v from the exporter's
// state, then _last_checkpoint. Both are replaced atomically (rename), so a
// crash leaves either no checkpoint or a complete one.
func (e *exporter) checkpoint(v, ts int64) error { return e.writeCheckpoint(v, ts, true) }

// writeCheckpoint writes the checkpoint of version v; _last_checkpoint is
// pointed at it only if last is set (a vacuum's checkpoint of an older
// version must not hide the newest one).
func (e *exporter) writeCheckpoint(v, ts int64, last bool) error {
	var rows []cpRow
	rows = append(rows, cpRow{Protocol: &cpProtocol{MinReaderVersion: int32(e.proto.MinReaderVersion), MinWriterVersion: int32(e.proto.MinWriterVersion)}})
	m := e.meta
	rows = append(rows, cpRow{MetaData: &cpMetadata{ID: m.ID, Name: m.Name, Description: m.Description,
		Format: cpFormat{Provider: m.Format.Provider, Options: nonNil(m.Format.Options)}, SchemaString: m.SchemaString,
		PartitionColumns: append([]string{}, m.PartitionColumns...), Configuration: nonNil(m.Configuration), CreatedTime: m.CreatedTime}})
	apps := make([]string, 0, len(e.txns))
	for a := range e.txns {
		apps = append(apps, a)
	}
	sort.Strings(apps)
	for _, a := range apps {
		t := e.txns[a]
		rows = append(rows, cpRow{Txn: &cpTxn{AppID: t.AppID, Version: t.Version, LastUpdated: t.LastUpdated}})
	}
	paths := make([]string, 0, len(e.files))
	for p := range e.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		a := e.files[p].add
		stats := a.Stats
		rows = append(rows, cpRow{Add: &cpAdd{Path: a.Path, PartitionValues: map[string]string{}, Size: a.Size,
			ModificationTime: a.ModificationTime, DataChange: false, Stats: &stats}})
	}
	// Tombstones older than the retention are dropped for good.
	cutoff := ts - tombstoneRetention.Milliseconds()
	kept := e.tombs[:0]
	for _, r := range e.tombs {
		if r.DeletionTimestamp != nil && *r.DeletionTimestamp < cutoff {
			continue
		}
		kept = append(kept, r)
		rows = append(rows, cpRow{Remove: &cpRemove{Path: r.Path, DeletionTimestamp: r.DeletionTimestamp,
			ExtendedFileMetadata: r.ExtendedFileMetadata, PartitionValues: map[string]string{}, Size: r.Size}})
	}
	e.tombs = kept

	logDir := filepath.Join(e.dir, "_delta_log")
	name := fmt.Sprintf("%020d.checkpoint.parquet", v)
	tmp := filepath.Join(logDir, "."+name+"."+newUUID()+".tmp")
	size, err := writeParquetFile(tmp, rows)
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", v, err)
	}
	if err := os.Rename(tmp, filepath.Join(logDir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	if !last {
		return syncDir(logDir)
	}
	lc, err := json.Marshal(LastCheckpoint{Version: v, Size: int64(len(rows)), SizeInBytes: &size, NumOfAddFiles: ptr(int64(len(paths)))})
	if err != nil {
		return err
	}
	tmp = filepath.Join(logDir, "._last_checkpoint."+newUUID()+".tmp")
	if err := writeSynced(tmp, lc); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(logDir, "_last_checkpoint")); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(logDir)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func ptr[T any](v T) *T { return &v }
