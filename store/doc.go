// Package store keeps upicdc's tables in one bbolt file.
//
// The raw table (raw_upi_transactions_v1) is a bucket holding:
//
//   - rows:  transaction_id → current image (a tombstone once deleted) and the
//     position of that image's change-feed record. One random-key put per
//     applied change; the tree holds one entry per transaction.
//   - cdf:   the change feed: version chunk → a chunk of change rows,
//     append-only with sequential keys, so writing it is nearly free. Every
//     insert, update_postimage and delete record points at the previous such
//     record of the same transaction, so the change feed is also each row's
//     history: TxnHistory is one rows lookup plus one chunk lookup per image,
//     and reading the table at an old version walks those pointers back.
//   - log, times: version → commit info JSON (Delta commitInfo-like) and
//     version → commit timestamp, both append-only.
//   - stale: version chunk → rows a MERGE skipped as out of order (audit).
//
// The aggregated table (aggregated_upi_transactions) has few rows, so it
// keeps them keyed for time travel: hist (merchant_id 0x00 version step →
// aggregate), plus cdf, log and times as above.
//
// Besides the tables the file holds the ledger of ingested files (keyed by
// sha256) and, per stream, its checkpoint and its per-transaction
// contribution ledger.
//
// Atomicity is bbolt's: a MERGE (rows, change feed, audit, commit, ledger
// entry) is one db.Update in [DB.Merge]; a micro-batch (aggregate rows, their
// change feed, contributions, checkpoint) is one db.Update in [DB.Process].
// Readers use bbolt's MVCC read transactions and never block the writer.
//
// Caveats: bbolt allows one writing process per file; a second process
// opening it waits Options.Timeout and then fails with ErrLocked. A long
// read transaction (a big Changes range) keeps the pages it sees from being
// reused until it ends, so the file can grow meanwhile. bbolt is
// copy-on-write: a commit rewrites every leaf page it touched, which is what
// bounds a MERGE of random transaction ids into a very large table.
package store
