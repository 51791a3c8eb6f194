// Package delta reads and writes Delta Lake tables.
//
// The reader ([Open], [Table.Snapshot], [Table.Changes]) reads any Delta
// table directory on the local file system: JSON commits, classic Parquet
// checkpoints (single-file and multi-part) and _last_checkpoint, the table
// at a version (add/remove replay with partition values), and the change
// data feed for a version range as the protocol derives it: a version's cdc
// files when it has them, otherwise its add files as inserts and its remove
// files as deletes.
//
// _commit_timestamp is the commit's in-commit timestamp when it has one,
// else commitInfo.timestamp (what delta-rs does), else the commit file's
// modification time (what Spark does for every table without in-commit
// timestamps; upicdc's writer sets that mtime to commitInfo.timestamp so both
// engines agree on its tables).
//
// Not supported, and refused with an error naming the feature rather than
// read wrongly: deletion vectors, column mapping, V2 (UUID-named)
// checkpoints without a classic checkpoint or JSON commits to fall back on,
// nested column types (struct, array, map) in data files, and any other
// reader feature. Log compaction files are ignored (they are optional).
//
// The writer ([Export]) turns upicdc's store tables into Delta tables whose
// version N is store version N; see export.go for the layout and the
// crash-safety argument.
package delta
