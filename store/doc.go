// Package store is a generic engine of versioned tables in one bbolt file,
// the way etcd's mvcc is a generic revisioned key-value store over bbolt.
// It knows no column of any table: the domain above declares each table
// (a TableDef: name, Schema, key columns) when it opens the store, and
// reads and writes rows as Row values that the store encodes by schema.
//
// Each table is a bucket holding:
//
//   - meta:  the table's schemas (every schema it has had: stored records
//     carry the index of theirs, so history stays readable when columns
//     change) and its properties (the parameters a derived table was
//     computed with, Delta's metaData.configuration).
//   - rows:  encoded key → current image (a tombstone once deleted, with
//     its ordering value) and the position of that image's change-feed
//     record. One put per changed row; the tree holds one entry per key.
//   - runs, blooms: once rows holds 256k keys, a commit's rows values
//     go into a run of their own (a bucket written in key order) with a
//     Bloom filter of its keys; a key's current image is the newest run's
//     that holds it, else rows'. The runs are swept into rows in bulk, a
//     bounded step per transaction (see runs.go).
//   - cdf:   the change feed: version chunk → a chunk of change records,
//     append-only with sequential keys, so writing it is nearly free. Every
//     insert, update_postimage and delete record points at the previous
//     such record of the same key, so the change feed is also each row's
//     history: KeyHistory is one rows lookup plus one chunk lookup per
//     image, and reading a table at an old version walks those pointers.
//   - log, times: version → commit info JSON (Delta commitInfo-like) and
//     version → commit timestamp, both append-only (VersionAsOf searches
//     times).
//   - notes: version chunk → opaque audit records a commit left (a MERGE's
//     skipped rows).
//
// Besides the tables the file holds the ledger of ingested files (keyed by
// sha256) and, per stream, its checkpoint and, after a vacuum, its
// baseline (opaque values by key: what the stream had folded from the
// removed change feed, such as each transaction's contribution). A stream
// keeps no other state: what it needs of a key's past it reads from the
// source's history chain (ProcessTx.Earlier).
//
// Atomicity is bbolt's, in two places: a commit of a source table (rows,
// change feed, notes, commit log, ledger entry) is one db.Update in
// DB.Write; a micro-batch (every derived table's new version and the
// checkpoint) is one db.Update in DB.Process. That is the whole
// exactly-once story. Readers use bbolt's MVCC read transactions (Snapshot
// for several reads that must agree) and never block the writer.
//
// Keys are encoded to sort as their values do: a single String key is its
// bytes; composite keys end each string with NUL (key strings may not hold
// NUL) and store integers big-endian with the sign bit flipped, so a
// KeyRange (a key prefix plus bounds on the next key column) is a B+tree
// range read.
//
// Caveats: bbolt allows one writing process per file; a second process
// opening it waits Options.Timeout and then fails with ErrLocked. A long
// read transaction keeps the pages it sees from being reused until it ends,
// so the file can grow meanwhile. bbolt is copy-on-write: a commit rewrites
// every leaf page it touched, which is why a big table's commits go to
// runs: random keys swept in bulk share page rewrites. An existing file is inspected before use (see
// check.go) and bbolt's panics on bad pages come back as *DamagedError.
package store
