// Package sqlserver serves the store over SQL: go-mysql-server's engine on
// top of store tables, and a MySQL-protocol server for BI tools (Grafana,
// Metabase, Power BI, pandas, the mysql CLI).
//
// The database is "upicdc". Every table the store declares (db.Tables(): the
// raw table, the derived tables, any later one) is one SQL table, with
// types from its store.Schema: Money is DECIMAL(18,2), Timestamp is
// DATETIME(6) shown in the column's zone (UTC when it has none), Int is
// BIGINT, Bool is BOOLEAN, String and Enum are text. Beside each table T:
//
//   - T_history is T's commit log (DESCRIBE HISTORY);
//   - T_changes is T's change feed: the data columns plus _change_type,
//     _commit_version and _commit_timestamp; a filter on _commit_version
//     reads only those versions.
//
// Time travel: SELECT … FROM T AS OF 3 reads version 3, and AS OF
// '2024-12-21 10:30:00' (or AS OF TIMESTAMP '…') the newest version
// committed then; a time without a zone is read in Options.Location.
//
// The key columns form the PRIMARY index: equality on a key prefix and a
// range on the next key column (WHERE merchant_id = ? AND window_size = ?
// AND window_start BETWEEN ? AND ?) are B+tree range reads, not scans.
//
// Caveats: everything is read-only (statements that write are refused);
// each statement reads one bbolt read transaction (a consistent snapshot of
// every table), which it holds until it ends, so Options.QueryTimeout and
// Options.MaxRows (rows read from the store) bound what one query can cost
// the daemon. Passwords are checked with mysql_clear_password (the config
// holds only bcrypt or SHA-256 hashes): the server speaks no TLS, so keep it
// on loopback or behind a TLS tunnel.
package sqlserver
