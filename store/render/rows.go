package render

import "github.com/upicdc/upicdc/store"

// The change feed's metadata columns, after a table's own (as Delta's
// table_changes returns them).
var changeColumns = []string{"_change_type", "_commit_version", "_commit_timestamp"}

// Names returns a schema's column names.
func Names(s *store.Schema) []string {
	out := make([]string, len(s.Columns))
	for i, c := range s.Columns {
		out[i] = c.Name
	}
	return out
}

// Row renders a row of schema s.
func Row(s *store.Schema, r store.Row) []Cell {
	out := make([]Cell, len(s.Columns))
	for i := range s.Columns {
		if i < len(r) {
			out[i] = Value(&s.Columns[i], r[i])
		} else {
			out[i] = Null()
		}
	}
	return out
}

// RowObject renders a row of schema s as an object.
func RowObject(s *store.Schema, r store.Row) Object {
	return Object{Columns: Names(s), Cells: Row(s, r)}
}

// Rows returns an empty table of schema s's columns.
func Rows(s *store.Schema) *Table { return NewTable(Names(s)...) }

// ChangeNames returns the columns of a change-feed row of schema s: the
// table's columns, then _change_type, _commit_version, _commit_timestamp.
func ChangeNames(s *store.Schema) []string { return append(Names(s), changeColumns...) }

// Change renders a change-feed row of schema s.
func Change(s *store.Schema, c store.Change) []Cell {
	return append(Row(s, c.Row), String(c.Type.String()), Int(c.Version), CommitTime(c.Timestamp))
}

// Changes returns an empty table of schema s's change-feed columns.
func Changes(s *store.Schema) *Table { return NewTable(ChangeNames(s)...) }

// CommitNames are the columns of a commit (a history row, like Delta's
// DESCRIBE HISTORY).
func CommitNames() []string {
	return []string{"version", "timestamp", "operation", "operationParameters", "operationMetrics", "source", "txn"}
}

// Commit renders a commit: parameters and metrics as JSON objects, source
// (the batch file of a MERGE) and txn (a stream's idempotency id) as
// objects or null.
func Commit(c store.CommitInfo) []Cell {
	params, metrics := c.OperationParameters, c.OperationMetrics
	if params == nil {
		params = map[string]string{}
	}
	if metrics == nil {
		metrics = map[string]int64{}
	}
	return []Cell{Int(c.Version), CommitTime(c.Timestamp), String(c.Operation),
		JSON(params), JSON(metrics), JSON(c.Source), JSON(c.Txn)}
}

// History returns an empty table of commit columns.
func History() *Table { return NewTable(CommitNames()...) }

// VersionNames are the columns of one image in a row's history of schema
// s: when and how it was written, whether it is a tombstone, then the row.
func VersionNames(s *store.Schema) []string {
	return append([]string{"_commit_version", "step", "_commit_timestamp", "deleted", "deleted_at"}, Names(s)...)
}

// Version renders one image of a row's history. deletedAt names the
// column whose type the delete's ordering value has (for the raw table,
// transaction_time); without such a column it is an integer. deleted_at is
// null for a live image.
func Version(s *store.Schema, v store.RowVersion, deletedAt string) []Cell {
	at := Null()
	if v.Deleted {
		if i := s.Index(deletedAt); i >= 0 {
			at = Value(&s.Columns[i], store.Value{Int: v.DeletedAt})
		} else {
			at = Int(v.DeletedAt)
		}
	}
	return append([]Cell{Int(v.Version), Int(int64(v.Step)), CommitTime(v.Timestamp), Bool(v.Deleted), at}, Row(s, v.Row)...)
}

// Versions returns an empty table of schema s's version columns.
func Versions(s *store.Schema) *Table { return NewTable(VersionNames(s)...) }
