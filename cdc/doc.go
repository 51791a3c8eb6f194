// Package cdc turns batch files into commits of the raw table.
//
// It parses CSV, JSON Lines and Parquet batch files (all-or-nothing: one bad
// row refuses the file with its name, line or row, and field), and MERGEs a
// parsed batch into raw_upi_transactions_v1 as one commit, following
// DESIGN.md:
//
//   - rows of one transaction apply in transaction_time order (file order for
//     equal times); rows of different transactions are independent;
//   - a row older than the stored row is stale: skipped, counted and kept for
//     audit, so out-of-order delivery never rolls a transaction back;
//   - a row identical to the stored row is a no-op;
//   - every applied step writes Delta-style change rows (insert,
//     update_preimage + update_postimage, delete with the last image);
//   - content already ingested (same sha256, any name) applies nothing.
//
// A transaction stepped several times by one file (initiated → completed →
// refunded) gets one change per step, all in the same version, so the change
// feed — and the aggregates computed from it — do not depend on how the
// steps were split into files.
//
// A file refused for its own sake (name, size or content) gives an error
// that is or wraps a *ParseError, whose message is one short line; any other
// error (reading the file, the store, a cancelled context) is not one, so
// callers decide between rejecting a file and retrying it with errors.As.
package cdc
