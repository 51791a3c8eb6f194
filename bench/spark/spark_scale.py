"""The scale scenario's workload through Spark 4 + Delta 4, as the seed's Spark job does it.

    python=$(bench/spark/setup.sh)
    upicdc bench --scenario scale --rows 1000000 --keep-files /tmp/upi-1m   # the CSV files
    TZ=UTC "$python" bench/spark/spark_scale.py /tmp/upi-1m [--work DIR] [--windows none --windows 1d,1w]

Phases, timed like `upicdc bench --scenario scale`'s (CSV generation is not here):
  ingest   each file (in name order) MERGEd into the raw Delta table (change data feed on) on
           transaction_id: the file's newest row per transaction (Delta refuses several source rows
           for one target row), applied when not older than the stored row, inserted otherwise.
  process  per --windows variant, a fresh streaming query over the raw table's change feed from
           version 0 (readChangeFeed, Trigger.AvailableNow, foreachBatch) that sums completed
           amounts as sales and refunded amounts as refunds per merchant and MERGEs the running
           totals into aggregated_upi_transactions (the seed's design); with 1d/1w also the same
           sums per merchant and day/week window (Asia/Kolkata) into merchant_window_aggregates.
The JVM is one process for every phase: its peak RSS (polled from /proc every 20 ms) is reset
per phase to the current RSS, but the heap it grew earlier stays (see note). "bytes" is the
Delta tables' size on disk after the phase against the CSV bytes.
"""

import argparse
import glob
import os
import shutil
import statistics
import sys
import threading
import time

from delta import configure_spark_with_delta_pip
from delta.tables import DeltaTable
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, StringType, StructField, StructType, TimestampType

SCHEMA = StructType([
    StructField("transaction_id", StringType(), False),
    StructField("upi_id", StringType()),
    StructField("merchant_id", StringType()),
    StructField("transaction_amount", DecimalType(18, 2)),
    StructField("transaction_time", TimestampType()),
    StructField("transaction_status", StringType()),
])


class RSSPoller:
    """Polls /proc/<pid>/status every 20 ms and keeps the peaks since the last reset."""

    def __init__(self, pid):
        self.path = f"/proc/{pid}/status"
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.reset()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def read(self):
        out = {}
        try:
            with open(self.path) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmRSS", "RssAnon", "RssFile"):
                        out[k] = int(v.split()[0]) * 1024
        except OSError:
            pass
        return out

    def reset(self):
        with self.lock:
            self.peak = self.read() or {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}

    def run(self):
        while not self.stop.wait(0.02):
            cur = self.read()
            with self.lock:
                for k, v in cur.items():
                    self.peak[k] = max(self.peak.get(k, 0), v)

    def peaks(self):
        with self.lock:
            return dict(self.peak)


def du(*paths):
    total = 0
    for p in paths:
        for root, _, files in os.walk(p):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(root, f))
                except OSError:
                    pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", help="directory of the CSV files (upicdc bench --scenario scale --keep-files)")
    ap.add_argument("--work", help="directory for the Delta tables and checkpoints (default: a new one under /tmp, removed after)")
    ap.add_argument("--windows", action="append", help="process variant: none or 1d,1w (repeatable; default: none and 1d,1w)")
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--driver-memory", default="2g")
    ap.add_argument("--shuffle-partitions", default="4")
    args = ap.parse_args()
    variants = args.windows or ["none", "1d,1w"]
    for v in variants:
        if v != "none" and not set(v.split(",")) <= {"1d", "1w"}:
            ap.error(f"--windows {v!r}: want none, 1d, 1w or 1d,1w")
    files = sorted(glob.glob(os.path.join(args.files, "*.csv")))
    if not files:
        ap.error(f"{args.files}: no .csv files")
    csv_bytes = sum(os.path.getsize(f) for f in files)
    csv_rows = 0
    rows_per_file = []
    for f in files:
        with open(f, "rb") as fh:
            n = sum(1 for _ in fh) - 1
        rows_per_file.append(n)
        csv_rows += n

    work = args.work
    own_work = work is None
    if own_work:
        import tempfile

        work = tempfile.mkdtemp(prefix="upicdc-spark-")
    raw = os.path.join(work, "raw_upi_transactions_v1")

    builder = (
        SparkSession.builder.master(args.master)
        .appName("upicdc-spark-scale")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", args.shuffle_partitions)
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    poll = RSSPoller(pid)
    results = []

    def add(phase, rows, seconds, peaks, nbytes, note):
        results.append({
            "phase": phase, "rows": rows, "seconds": round(seconds, 3) if seconds is not None else None,
            "rows_per_s": int(rows / seconds) if seconds else None,
            "peak_rss_mb": round(peaks.get("VmRSS", 0) / 2**20, 1) if peaks else None,
            "peak_anon_mb": round(peaks.get("RssAnon", 0) / 2**20, 1) if peaks else None,
            "peak_file_mb": round(peaks.get("RssFile", 0) / 2**20, 1) if peaks else None,
            "bytes": nbytes, "x_csv": round(nbytes / csv_bytes, 2) if nbytes else None, "note": note,
        })

    add("csv files (not timed)", csv_rows, None, None, csv_bytes,
        f"{len(files)} files; Spark {spark.version}, {args.master}, driver memory {args.driver_memory}, "
        f"{args.shuffle_partitions} shuffle partitions; JVM pid {pid}")

    # Ingest: MERGE each file into the raw table.
    (DeltaTable.createIfNotExists(spark).location(raw).addColumns(SCHEMA)
     .property("delta.enableChangeDataFeed", "true").execute())
    target = DeltaTable.forPath(spark, raw)
    newest = Window.partitionBy("transaction_id").orderBy(F.col("transaction_time").desc())
    per, first, last = [], None, None
    poll.reset()
    total_peaks = {}
    for i, f in enumerate(files):
        print(f"spark: MERGE {os.path.basename(f)} ({i + 1} of {len(files)})", file=sys.stderr)
        poll.reset()
        t0 = time.monotonic()
        src = (spark.read.schema(SCHEMA).option("header", "true").csv(f)
               .withColumn("_n", F.row_number().over(newest)).where("_n = 1").drop("_n"))
        (target.alias("t").merge(src.alias("s"), "t.transaction_id = s.transaction_id")
         .whenMatchedUpdateAll(condition="s.transaction_time >= t.transaction_time")
         .whenNotMatchedInsertAll().execute())
        d = time.monotonic() - t0
        pk = poll.peaks()
        per.append(d)
        total_peaks = {k: max(total_peaks.get(k, 0), v) for k, v in pk.items()}
        if i == 0:
            first = (d, pk)
        last = (d, pk)
    raw_bytes = du(raw)
    add("ingest: MERGE, every file", csv_rows, sum(per), total_peaks, raw_bytes,
        f"{len(files)} MERGEs in one JVM; per file p50 {statistics.median(per):.3f}s, max {max(per):.3f}s")
    add("ingest: first file", rows_per_file[0], first[0], first[1], None, "into an empty table (includes JIT warm-up)")
    if len(files) > 1:
        add("ingest: last file", rows_per_file[-1], last[0], last[1], None, f"into a table of {csv_rows - rows_per_file[-1]} rows")
    feed_rows = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
                 .load(raw).count())

    # Process: the streaming aggregation, once per variant, from version 0.
    for v in variants:
        sizes = [] if v == "none" else v.split(",")
        name = v.replace(",", "+")
        agg_path = os.path.join(work, f"agg-{name}", "aggregated_upi_transactions")
        win_path = os.path.join(work, f"agg-{name}", "merchant_window_aggregates")
        ckpt = os.path.join(work, f"agg-{name}", "_checkpoint")
        (DeltaTable.createIfNotExists(spark).location(agg_path)
         .addColumn("merchant_id", "STRING").addColumn("total_sales", "DECIMAL(20,2)")
         .addColumn("total_refunds", "DECIMAL(20,2)").addColumn("net_sales", "DECIMAL(20,2)").execute())
        if sizes:
            (DeltaTable.createIfNotExists(spark).location(win_path)
             .addColumn("merchant_id", "STRING").addColumn("window_size", "STRING")
             .addColumn("window_start", "TIMESTAMP").addColumn("total_sales", "DECIMAL(20,2)")
             .addColumn("total_refunds", "DECIMAL(20,2)").addColumn("net_sales", "DECIMAL(20,2)").execute())
        batches = []

        def sums(df, keys):
            return (df.groupBy(*keys).agg(
                F.sum(F.when(F.col("transaction_status") == "completed", F.col("transaction_amount")).otherwise(0)).alias("total_sales"),
                F.sum(F.when(F.col("transaction_status") == "refunded", -F.col("transaction_amount")).otherwise(0)).alias("total_refunds"))
                .withColumn("net_sales", F.col("total_sales") + F.col("total_refunds")))

        def add_into(path, df, on):
            (DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), on)
             .whenMatchedUpdate(set={c: f"t.{c} + s.{c}" for c in ("total_sales", "total_refunds", "net_sales")})
             .whenNotMatchedInsertAll().execute())

        def each(df, batch_id):
            batches.append(batch_id)
            changes = df.where(F.col("_change_type").isin("insert", "update_postimage"))
            if sizes:
                changes = changes.persist()
            add_into(agg_path, sums(changes, ["merchant_id"]), "t.merchant_id = s.merchant_id")
            if sizes:
                local = F.from_utc_timestamp(F.col("transaction_time"), "Asia/Kolkata")
                parts = []
                for s in sizes:
                    start = F.date_trunc("day" if s == "1d" else "week", local)
                    parts.append(changes.withColumn("window_size", F.lit(s))
                                 .withColumn("window_start", F.to_utc_timestamp(start, "Asia/Kolkata")))
                w = parts[0]
                for p in parts[1:]:
                    w = w.unionByName(p)
                add_into(win_path, sums(w, ["merchant_id", "window_size", "window_start"]),
                         "t.merchant_id = s.merchant_id AND t.window_size = s.window_size AND t.window_start = s.window_start")
                changes.unpersist()

        print(f"spark: streaming catch-up, windows {v}", file=sys.stderr)
        poll.reset()
        t0 = time.monotonic()
        q = (spark.readStream.format("delta").option("readChangeFeed", "true").option("startingVersion", 0).load(raw)
             .writeStream.foreachBatch(each).option("checkpointLocation", ckpt).trigger(availableNow=True).start())
        q.awaitTermination()
        d = time.monotonic() - t0
        pk = poll.peaks()
        nbytes = raw_bytes + du(os.path.dirname(agg_path))
        add(f"process: windows {v}", feed_rows, d, pk, nbytes,
            f"change rows; {len(batches)} micro-batches (foreachBatch + MERGE); bytes: raw + derived tables + checkpoint")

    poll.stop.set()
    spark.stop()
    if own_work:
        shutil.rmtree(work, ignore_errors=True)

    cols = ["phase", "rows", "seconds", "rows_per_s", "peak_rss_mb", "peak_anon_mb", "peak_file_mb", "bytes", "x_csv", "note"]
    cells = [["" if r[c] is None else str(r[c]) for c in cols] for r in results]
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    print("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(cols)) + " |")
    print("|" + "|".join("-" * (n + 2) for n in w) + "|")
    for x in cells:
        print("| " + " | ".join(val.ljust(w[i]) for i, val in enumerate(x)) + " |")


if __name__ == "__main__":
    main()
