"""Read an `upicdc export` with delta-rs (the `deltalake` package), no JVM.

    pip install deltalake pyarrow
    upicdc export --out /tmp/upicdc-export
    python read_export_deltars.py /tmp/upicdc-export
    python read_export_deltars.py /tmp/upicdc-export --json out.json

Reads each table at every version the log lists and its change data feed from
the oldest of them (version 0, or the oldest one an `export --vacuum` kept).
With --json it writes everything it read, as strings, for the interop test
(same shape as read_export.py's).
"""

import argparse
import json
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

RAW_TABLE = "raw_upi_transactions_v1"


def export_tables(export_dir):
    """The export's tables: every directory of it with a _delta_log (raw,
    aggregated_upi_transactions, merchant_window_aggregates, ...)."""
    return sorted(d for d in os.listdir(export_dir) if os.path.isdir(os.path.join(export_dir, d, "_delta_log")))


def as_strings(table):
    """Every column as text: timestamps as epoch micros (_commit_timestamp as
    epoch millis), decimals with their scale ("500.00")."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            unit = "ms" if name == "_commit_timestamp" else "us"
            col = pc.cast(pc.cast(col, pa.timestamp(unit, tz="UTC")), pa.int64())
        cols.append([None if v is None else str(v) for v in col.to_pylist()])
    return [list(r) for r in zip(*cols)] if cols else []


def oldest_version(path):
    """The oldest version the log lists: 0, or after `upicdc export --vacuum`
    the oldest retained one (older commits are gone with their files)."""
    names = os.listdir(os.path.join(path, "_delta_log"))
    return min(int(n[:20]) for n in names if len(n) == 25 and n.endswith(".json") and n[:20].isdigit())


def read_table(path, show):
    dt = DeltaTable(path)
    latest = dt.version()
    oldest = oldest_version(path)
    versions = {}
    for v in range(oldest, latest + 1):
        versions[str(v)] = as_strings(DeltaTable(path, version=v).to_pyarrow_table())
    # deltalake >= 1.0 returns an arro3 stream; pyarrow takes it through the
    # Arrow C stream interface.
    changes = pa.RecordBatchReader.from_stream(dt.load_cdf(starting_version=oldest)).read_all()
    if show:
        print(f"== {path} at version {latest}")
        print(dt.to_pyarrow_table().to_pandas().to_string())
        print(f"== change data feed from version {oldest}")
        print(changes.to_pandas().to_string())
    return {"latest": latest, "oldest": oldest, "versions": versions, "changes": as_strings(changes)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export_dir")
    p.add_argument("--json", help="write what was read to this file")
    args = p.parse_args()
    import deltalake

    out = {"engine": "delta-rs " + deltalake.__version__, "tables": {}}
    root = os.path.abspath(args.export_dir)
    for t in export_tables(root):
        out["tables"][t] = read_table(os.path.join(root, t), args.json is None)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    sys.exit(main())
