"""Read an `upicdc export` with Apache Spark + Delta Lake.

    pip install 'pyspark==4.0.*' 'delta-spark==4.0.*'
    upicdc export --out /tmp/upicdc-export
    python read_export.py /tmp/upicdc-export            # show what Spark sees
    python read_export.py /tmp/upicdc-export --json out.json --stream

It reads each table at every version (time travel), its change data feed
(`table_changes`), and with --stream runs the original design's streaming
job: readChangeFeed on the raw table, foreachBatch over insert and
update_postimage rows, merchant sums MERGEd into a running-totals Delta table.
With --json it writes everything it read, as strings, for the interop test.
"""

import argparse
import json
import os
import sys
import tempfile

from delta import configure_spark_with_delta_pip
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

RAW_TABLE = "raw_upi_transactions_v1"


def export_tables(export_dir):
    """The export's tables: every directory of it with a _delta_log (raw,
    aggregated_upi_transactions, merchant_window_aggregates, ...)."""
    return sorted(d for d in os.listdir(export_dir) if os.path.isdir(os.path.join(export_dir, d, "_delta_log")))


def spark_session():
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("upicdc-read-export")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def as_strings(df):
    """Every column as text: timestamps as epoch micros (_commit_timestamp as
    epoch millis), decimals and numbers as Spark casts them ("500.00")."""
    cols = []
    for f in df.schema.fields:
        c = F.col(f"`{f.name}`")
        if f.name == "_commit_timestamp":
            c = F.unix_millis(c)
        elif isinstance(f.dataType, TimestampType):
            c = F.unix_micros(c)
        cols.append(c.cast("string").alias(f.name))
    return [list(r) for r in df.select(*cols).collect()]


def read_table(spark, path, show):
    latest = DeltaTable.forPath(spark, path).history(1).collect()[0]["version"]
    versions = {}
    for v in range(latest + 1):
        df = spark.read.format("delta").option("versionAsOf", v).load(path)
        versions[str(v)] = as_strings(df)
    changes_df = spark.sql(f"SELECT * FROM table_changes_by_path('{path}', 0) ORDER BY _commit_version")
    if show:
        print(f"== {path} at version {latest}")
        spark.read.format("delta").load(path).show(truncate=False)
        print(f"== table_changes_by_path('{path}', 0)")
        changes_df.show(50, truncate=False)
    return {"latest": latest, "versions": versions, "changes": as_strings(changes_df)}


def stream_aggregates(spark, raw_path, show):
    """The original Spark design: a readChangeFeed stream, foreachBatch, and a
    MERGE of per-batch merchant sums into running totals."""
    work = tempfile.mkdtemp(prefix="upicdc-spark-")
    target_path = os.path.join(work, "aggregates")
    spark.createDataFrame(
        [], "merchant_id string, total_sales decimal(18,2), total_refunds decimal(18,2), net_sales decimal(18,2)"
    ).write.format("delta").save(target_path)

    def upsert(batch_df, batch_id):
        changed = batch_df.filter(F.col("_change_type").isin("insert", "update_postimage"))
        agg = (
            changed.groupBy("merchant_id")
            .agg(
                F.sum(F.when(F.col("transaction_status") == "completed", F.col("transaction_amount")).otherwise(0)).alias("total_sales"),
                F.sum(F.when(F.col("transaction_status") == "refunded", -F.col("transaction_amount")).otherwise(0)).alias("total_refunds"),
            )
            .withColumn("net_sales", F.col("total_sales") + F.col("total_refunds"))
        )
        (
            DeltaTable.forPath(spark, target_path).alias("target")
            .merge(agg.alias("source"), "target.merchant_id = source.merchant_id")
            .whenMatchedUpdate(set={
                "total_sales": "target.total_sales + source.total_sales",
                "total_refunds": "target.total_refunds + source.total_refunds",
                "net_sales": "target.net_sales + source.net_sales",
            })
            .whenNotMatchedInsertAll()
            .execute()
        )

    query = (
        spark.readStream.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
        .option("maxFilesPerTrigger", 1)  # about one raw version per micro-batch, like the original job
        .load(raw_path)
        .writeStream.foreachBatch(upsert)
        .option("checkpointLocation", os.path.join(work, "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    result = spark.read.format("delta").load(target_path).orderBy("merchant_id")
    if show:
        print("== streaming aggregation (readChangeFeed + foreachBatch)")
        result.show(truncate=False)
    return as_strings(result)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export_dir")
    p.add_argument("--json", help="write what was read to this file")
    p.add_argument("--stream", action="store_true", help="also run the streaming aggregation")
    args = p.parse_args()
    spark = spark_session()
    show = args.json is None
    out = {"engine": "spark " + spark.version, "tables": {}}
    root = os.path.abspath(args.export_dir)
    for t in export_tables(root):
        out["tables"][t] = read_table(spark, os.path.join(root, t), show)
    if args.stream:
        out["stream_aggregates"] = stream_aggregates(spark, os.path.join(root, RAW_TABLE), show)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
