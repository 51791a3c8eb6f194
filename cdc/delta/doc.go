// Package delta reads and writes Delta Lake tables.
//
// The reader ([Open], [Table.Snapshot], [Table.Changes]) reads any Delta
// table directory on the local file system: JSON commits, classic Parquet
// checkpoints (single-file and multi-part), V2 checkpoints (UUID-named
// Parquet or JSON files, or V2 content under the classic name, with their
// sidecar files) and _last_checkpoint, the table at a version (add/remove
// replay with partition values), and the change data feed for a version
// range as the protocol derives it: a version's cdc files when it has them,
// otherwise its add files as inserts and its remove files as deletes.
// Struct, array and map columns are read as [Struct], [Array] and [Map];
// timestamp_ntz as [TimestampNTZ] (see [Row]).
//
// _commit_timestamp is what Spark gives: the commit's in-commit timestamp
// when the table has in-commit timestamps enabled, else the commit file's
// modification time made strictly increasing over the commits before it.
// commitInfo.timestamp is not used (Spark ignores it; delta-rs reads it).
// upicdc's writer sets each commit file's mtime to its commit timestamp, so
// every engine agrees on its tables.
//
// Not supported, and refused with an error naming the feature rather than
// read wrongly: deletion vectors, column mapping and any other reader
// feature. Log compaction files are ignored (they are optional).
//
// The writer ([Export]) turns upicdc's store tables into Delta tables whose
// version N is store version N; see export.go for the layout and the
// crash-safety argument. upicdc must be the only writer of an export: an
// export directory whose newest commits another engine made (Spark's VACUUM
// or OPTIMIZE, say) is refused with [ErrNotOurTable].
package delta
