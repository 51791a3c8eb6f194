// Package daemon is `upicdc serve`: the long-running process that feeds the
// store from an inbox directory, keeps the merchant aggregates up to date on
// a trigger, runs the Delta export on a schedule and serves the HTTP API.
//
// A Daemon is New(Options), then Open (opens the store — holding bbolt's
// exclusive lock for its lifetime — binds the HTTP listener and starts the
// workers), then Close (stops them and closes the store). Its workers run
// under one errgroup:
//
//   - the inbox: fsnotify events on inbox.dir plus a rescan every
//     inbox.poll_interval. Regular files only, oldest first (modification
//     time, then name); dotfiles, *.tmp and *.partial are ignored, because
//     writers are expected to rename complete files into the inbox. A file
//     renamed from such a name is taken at once; any other waits until its
//     size and modification time held for inbox.settle. Files are opened
//     without following links; a link, FIFO, device or socket is rejected
//     unread, a directory left alone. Each file
//     is MERGEd as one commit and then moved to inbox/processed/, or, when
//     its name or content is refused, to inbox/rejected/ with NAME.error
//     beside it. Both directories are inside the inbox (a move is then a
//     rename on one file system) and are never scanned as input. A name
//     already taken there gets a -N suffix. A crash between a commit and the
//     move is harmless: the store's sha256 ledger reports the file as a
//     duplicate on restart, and it is moved without being applied again.
//     Other failures (the store, the disk) leave the file in place; it is
//     retried at the next rescan.
//   - the scheduler: the stream processor's micro-batches on stream.trigger —
//     a processing-time interval, "0s" (as soon as a commit lands),
//     "availableNow" (catch up, then stop) or a cron spec. It first catches up
//     with what the raw table already holds, whatever the trigger; /readyz and
//     sd_notify READY=1 follow that. Batches never overlap: a trigger that
//     comes due during a batch runs right after it.
//   - the export schedule (export.schedule, cron), which calls
//     Options.Export.
//   - configuration reloads: Reload (SIGHUP in `upicdc serve`) or a change to
//     the config file re-read the configuration and apply log.level,
//     inbox.poll_interval, inbox.settle, stream.trigger,
//     stream.max_versions_per_trigger, stream.max_rows_per_trigger, export.schedule and shutdown_timeout;
//     other changed keys are reported as needing a restart.
//   - the HTTP API (package httpapi) and the systemd watchdog, when enabled.
//
// Close lets the current MERGE (and its move) and the current micro-batch
// finish; when shutdown_timeout runs out first, it cancels them, and they roll
// back — never half-applied, because each is one bbolt transaction.
//
// All waiting goes through a Clock, so tests drive the trigger with a fake
// clock.
package daemon
