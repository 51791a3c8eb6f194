// Package store keeps upicdc's tables in one bbolt file.
//
// Every table (raw_upi_transactions_v1 and aggregated_upi_transactions) is a
// bucket holding:
//
//   - log:   version (big-endian uint64) → commit info JSON (Delta commitInfo-like)
//   - hist:  key 0x00 version step → one image of one row. The newest image of a
//     key is its current state, so the current table and every row's history
//     are the same B+tree: a transaction's history is a key-range read and an
//     applied change costs exactly one random-key put.
//   - cdf:   version chunk → a chunk of change-feed rows (append-only, sequential
//     keys, so writing the change feed is nearly free)
//   - stale: version chunk → rows a MERGE skipped as out of order (raw table only)
//
// Besides the tables the file holds the ledger of ingested files (keyed by
// sha256) and, per stream, its checkpoint and its per-transaction contribution
// ledger.
//
// Atomicity is bbolt's: a MERGE (rows, change feed, commit, ledger entry) is one
// db.Update in [DB.Merge]; a micro-batch (aggregate rows, their change feed,
// contribution ledger, checkpoint) is one db.Update in [DB.Process]. Readers use
// bbolt's MVCC read transactions and never block the writer.
//
// Caveats: bbolt allows one writer process; a second process opening the same
// file waits for Options.Timeout and then fails with ErrLocked. Long read
// transactions (a big Changes range) keep old pages from being reused until
// they end, so the file can grow while they run.
package store
