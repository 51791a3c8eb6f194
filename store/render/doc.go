// Package render is the one encoding of upicdc's rows for people and
// programs: JSON objects, CSV and the aligned table the CLI prints. The CLI
// (--format table|json|csv) and the HTTP API both encode through it, so a
// row reads the same everywhere.
//
// Values are rendered by their column's type, never by what a column means:
//
//   - money (store.Money) is an exact decimal JSON number (500, -500, 500.50),
//     never passed through a float; in text "500" or "500.50";
//   - integers are JSON numbers; booleans JSON booleans;
//   - timestamps (store.Timestamp) are RFC 3339 strings with microseconds
//     when they have any, in the column's Zone (UTC when it has none);
//   - commit timestamps (_commit_timestamp, a history's timestamp) are
//     RFC 3339 with milliseconds, in UTC;
//   - strings and enums are JSON strings; null is JSON null and empty text.
//
// A JSON object's keys are the column names in column order. A table is
// rendered as a Markdown pipe table (the shape of the seed's tables), CSV
// with a header line, or a JSON array of objects, one per line.
package render
