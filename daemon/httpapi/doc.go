// Package httpapi is upicdc's read-only HTTP API: the merchant aggregates,
// a table's history and change feed, a transaction's versions, the daemon's
// status, health and readiness, and the Prometheus metrics.
//
// Responses are JSON. Money is an exact decimal JSON number ("500", "-500",
// "500.50" written as numbers, never through a float); timestamps are RFC
// 3339 strings. Errors are {"error": "..."} with 404 for an unknown table,
// merchant, transaction or version, and 400 with a "parameter" field naming
// the bad query parameter. Lists are bounded: change feeds and histories
// return at most MaxLimit rows per request, with "truncated" and the
// version to continue from.
//
// Handlers only read: every store call is a bbolt read transaction, which
// never blocks the daemon's writer.
package httpapi
