// Package httpapi is upicdc's read-only HTTP API: the merchant aggregates
// and windows (now, at a version, or as of a time), every table's history
// and change feed, a transaction's versions, the daemon's status, health
// and readiness, and the Prometheus metrics.
//
// Responses are JSON. Rows are encoded by package store/render, exactly as
// `upicdc --format json` prints them: the table's columns as keys, money as
// exact decimal JSON numbers (500, -500, 500.50, never through a float),
// timestamps as RFC 3339 strings in their column's zone, commit timestamps
// in UTC. Errors are {"error": "..."} with 404 for an unknown table,
// merchant, transaction or version (or an as_of before a table's first
// commit), and 400 with a "parameter" field naming the bad query
// parameter. Lists are bounded: change feeds and histories return at most
// MaxLimit rows per request, with "truncated" and where to continue.
//
// Handlers only read: every store call is a bbolt read transaction, which
// never blocks the daemon's writer.
package httpapi
