// Package daemon will hold `upicdc serve`: the inbox watcher, the trigger
// scheduler, the export schedule and the HTTP API, wired under one errgroup.
//
// It is empty on purpose until that work lands (see the daemon issue); the
// engine it will drive — cdc.Merger for files, agg.Processor for micro-batches
// — is complete and usable from the CLI today.
package daemon
