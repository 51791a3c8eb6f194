// Package agg holds the derived tables and the stream processor that keeps
// them: it reads the raw table's change feed from a checkpoint and updates
// every table registered in Tables, one file each:
//
//   - totals.go:  aggregated_upi_transactions, the seed's merchant totals;
//   - windows.go: merchant_window_aggregates, per merchant, window size and
//     window start in the configured zone.
//
// Semantics: for each transaction t, sale(t) is the amount of t's most
// recent image whose status was completed and refund(t) the amount of its
// most recent image whose status was refunded (0 if never); a deleted
// transaction contributes nothing, and a re-inserted one starts afresh; t
// counts under its current merchant_id. Per merchant: total_sales = Σ sale,
// total_refunds = −Σ refund, net_sales = total_sales + total_refunds. A sale
// lands in the window that contains the time of the image defining it, a
// refund in the window of its refunded image: late rows move amounts
// between windows exactly, there is no watermark.
//
// Exactly once: each transaction's current contribution (merchant, sale and
// its time, refund and its time, status) is a function of its images; a
// micro-batch replaces contributions (never adds to them): it folds the
// contribution every touched transaction had before the batch (from its
// earlier images, which the raw change feed keeps as a chain, see
// store.ProcessTx.Earlier) and the one it has after into each derived table,
// and writes their new versions, their change feeds, the Delta txn
// identifier and the advanced checkpoint in one bbolt transaction
// (store.DB.Process). A crash anywhere leaves the previous micro-batch's
// state, and the next run redoes the batch from the same checkpoint.
//
// A derived table whose stored parameters differ from the configured ones
// (a window size added, the zone changed, a column added) is rebuilt from
// the raw history before the next micro-batch (Prepare); Reprocess does it
// on demand. Reconcile recomputes every derived table from the raw history,
// deliberately by a code path apart from the processor's, compares, and
// checks that each merchant's windows of every size sum to its totals.
package agg
