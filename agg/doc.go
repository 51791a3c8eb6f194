// Package agg is the stream processor: it reads the raw table's change feed
// from a checkpoint and keeps aggregated_upi_transactions, the merchant
// aggregates.
//
// Semantics (DESIGN.md): for each transaction t, sale(t) is the amount of t's
// most recent image whose status was completed and refund(t) the amount of its
// most recent image whose status was refunded (0 if never); a deleted
// transaction contributes nothing, and a re-inserted one starts afresh; t
// counts under its current merchant_id. Per merchant: total_sales = Σ sale,
// total_refunds = −Σ refund, net_sales = total_sales + total_refunds.
//
// Exactly-once: each transaction's current contribution is stored in a
// ledger; a micro-batch replaces contributions (never adds to them) and writes
// the new aggregate version, its change feed, the Delta txn identifier and the
// advanced checkpoint in one bbolt transaction (store.DB.Process). A crash
// anywhere leaves the previous micro-batch's state, and the next run redoes
// the batch from the same checkpoint. Reconcile recomputes everything from
// the change feed to prove it.
package agg
