// Package examples ships the seed's worked example: the three batches of
// the original Spark design as CSV and JSON Lines, used by `upicdc demo` and
// by tests. The files sit beside this one for people to read and copy.
package examples

import "embed"

// Batches holds batches/batch{1,2,3}.{csv,jsonl}.
//
//go:embed batches/*.csv batches/*.jsonl
var Batches embed.FS

// SeedBatches returns the demo's batch files in ingestion order.
func SeedBatches() []string {
	return []string{"batches/batch1.csv", "batches/batch2.csv", "batches/batch3.csv"}
}
