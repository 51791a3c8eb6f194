"""Writes the real-Spark test tables under cdc/delta/testdata/spark/ (run once; the
output is committed).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install 'pyspark==4.0.*' 'delta-spark==4.0.1'
    TZ=UTC /tmp/v/bin/python cdc/delta/testdata/make_spark_tables.py cdc/delta/testdata/spark

Tables:
  nested/     struct, array, map columns (nested in each other, with nulls), NaN and
              infinite doubles, timestamp_ntz; change data feed on; an UPDATE and a DELETE.
  v2cp/       delta.checkpointPolicy=v2: a V2 checkpoint with sidecar files (UUID-named
              top-level Parquet file), then more commits.
  v2cp-json/  the same with a JSON top-level V2 checkpoint file.
  vacuum/     a plain table after OPTIMIZE and VACUUM (Spark's VACUUM START/END commits).
With "foreign EXPORT OUT" it instead runs Spark's VACUUM on an `upicdc export` of the seed
demo (EXPORT/raw_upi_transactions_v1) and keeps the commits Spark added in OUT
(testdata/spark/foreign-vacuum/).
Each table has EXPECTED.json: what Spark reads at every version (rows as JSON) and its
change feed, with timestamps as RFC 3339 UTC, timestamp_ntz without a zone, NaN and
infinities as the strings "NaN", "Infinity", "-Infinity", decimals as numbers.
"""

import datetime
import decimal
import json
import math
import os
import shutil
import sys

from delta import configure_spark_with_delta_pip
from pyspark.sql import Row, SparkSession


def spark_session():
    builder = (
        SparkSession.builder.master("local[1]")
        .appName("upicdc-testdata")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    )
    return configure_spark_with_delta_pip(builder).getOrCreate()


def plain(v):
    """Turns a collected Spark value into what upicdc's JSON rendering prints."""
    if v is None:
        return None
    if isinstance(v, Row):
        return {k: plain(x) for k, x in zip(v.__fields__, v)}
    if isinstance(v, dict):
        return {str(plain(k)) if not isinstance(k, str) else k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        import base64

        return base64.b64encode(v).decode()
    return v


def rows_json(df):
    from pyspark.sql.types import TimestampNTZType

    ntz = {f.name for f in df.schema.fields if isinstance(f.dataType, TimestampNTZType)}
    out = []
    for r in df.collect():
        d = {}
        for k, x in zip(r.__fields__, r):
            if k in ntz and x is not None:
                d[k] = x.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
            else:
                d[k] = plain(x)
        out.append(json.dumps(d, sort_keys=True))
    return sorted(out)


def expected(spark, path, cdf):
    latest = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg({"version": "max"}).collect()[0][0]
    exp = {"versions": {}, "history": []}
    for v in range(latest + 1):
        try:
            df = spark.read.format("delta").option("versionAsOf", v).load(path)
            exp["versions"][str(v)] = rows_json(df)
        except Exception as e:  # a version no longer reconstructable
            exp["versions"][str(v)] = "error: " + type(e).__name__
    if cdf:
        df = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0).load(path)
        exp["changes"] = rows_json(df)
    for h in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect():
        exp["history"].append({"version": h.version, "operation": h.operation, "timestamp": plain(h.timestamp), "engineInfo": h.engineInfo})
    exp["history"].sort(key=lambda h: h["version"])
    with open(os.path.join(path, "EXPECTED.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
        f.write("\n")


def nested(spark, path):
    spark.sql(
        f"""CREATE TABLE delta.`{path}` (
            id INT,
            s STRUCT<a: INT, b: STRING, t: TIMESTAMP, inner: STRUCT<x: DOUBLE, amount: DECIMAL(18,2)>>,
            arr ARRAY<INT>,
            m MAP<STRING, INT>,
            arrs ARRAY<STRUCT<k: BIGINT, v: STRING>>,
            mi MAP<INT, ARRAY<STRING>>,
            d DOUBLE,
            ntz TIMESTAMP_NTZ
        ) USING delta TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')"""
    )
    spark.sql(
        f"""INSERT INTO delta.`{path}` VALUES
        (1, named_struct('a', 1, 'b', 'one', 't', TIMESTAMP'2024-01-02 03:04:05.123456',
                         'inner', named_struct('x', 1.5, 'amount', 500.25BD)),
            array(1, 2, NULL), map('x', 1, 'y', NULL),
            array(named_struct('k', 10L, 'v', 'ten'), NULL), map(1, array('a', NULL), 2, NULL),
            double('NaN'), TIMESTAMP_NTZ'2030-06-30 23:59:59.999999'),
        (2, NULL, array(), map(), array(), map(), double('Infinity'), TIMESTAMP_NTZ'1999-12-31 00:00:00'),
        (3, named_struct('a', NULL, 'b', NULL, 't', NULL, 'inner', NULL), NULL, NULL, NULL, NULL,
            double('-Infinity'), NULL),
        (4, named_struct('a', 4, 'b', 'four', 't', TIMESTAMP'1969-12-31 23:59:59', 'inner', named_struct('x', NULL, 'amount', -0.01BD)),
            array(4), map('k', 4), array(named_struct('k', NULL, 'v', NULL)), map(4, array()), 2.25, TIMESTAMP_NTZ'2024-02-29 12:00:00')"""
    )
    spark.sql(f"UPDATE delta.`{path}` SET s.b = 'uno', arr = array(7, 8), d = double('-Infinity') WHERE id = 1")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 3")
    expected(spark, path, True)


def v2cp(spark, path, fmt):
    spark.conf.set("spark.databricks.delta.checkpointV2.topLevelFileFormat", fmt)
    spark.sql(
        f"""CREATE TABLE delta.`{path}` (id INT, name STRING) USING delta
        TBLPROPERTIES ('delta.checkpointPolicy' = 'v2', 'delta.enableChangeDataFeed' = 'true')"""
    )
    for i in range(1, 9):
        spark.sql(f"INSERT INTO delta.`{path}` VALUES ({i}, 'n{i}')")
        if i == 6:
            spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('x' = 'y')")
    from delta.tables import DeltaTable

    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 2")
    DeltaTable.forPath(spark, path).toDF()  # warm
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path).checkpoint()
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (9, 'n9')")
    expected(spark, path, True)


def vacuum(spark, path):
    spark.sql(f"CREATE TABLE delta.`{path}` (id INT, name STRING) USING delta")
    for i in range(1, 4):
        spark.sql(f"INSERT INTO delta.`{path}` VALUES ({i}, 'n{i}')")
    spark.sql(f"OPTIMIZE delta.`{path}`")
    spark.sql(f"VACUUM delta.`{path}` RETAIN 0 HOURS")
    expected(spark, path, False)


def foreign(export_dir, out):
    """VACUUMs an `upicdc export` of the seed demo's raw table with Spark and keeps
    the commits Spark wrote (VACUUM START, VACUUM END) as out/<v>.json."""
    spark = spark_session()
    path = os.path.abspath(os.path.join(export_dir, "raw_upi_transactions_v1"))
    log = os.path.join(path, "_delta_log")
    before = set(os.listdir(log))
    spark.sql(f"VACUUM delta.`{path}` RETAIN 0 HOURS")
    os.makedirs(out, exist_ok=True)
    for name in sorted(set(os.listdir(log)) - before):
        if name.endswith(".json") and not name.startswith("."):
            shutil.copy(os.path.join(log, name), os.path.join(out, name))
            print("kept", name)


def main():
    if sys.argv[1] == "foreign":
        # upicdc demo && upicdc export --out EXPORT; make_spark_tables.py foreign EXPORT OUT
        return foreign(sys.argv[2], sys.argv[3])
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    spark = spark_session()
    for name, fn in [
        ("nested", nested),
        ("v2cp", lambda s, p: v2cp(s, p, "parquet")),
        ("v2cp-json", lambda s, p: v2cp(s, p, "json")),
        ("vacuum", vacuum),
    ]:
        p = os.path.abspath(os.path.join(out, name))
        shutil.rmtree(p, ignore_errors=True)
        fn(spark, p)
        for root, _, files in os.walk(p):
            for f in files:
                if f.startswith(".") and f.endswith(".crc"):
                    os.remove(os.path.join(root, f))
        print("wrote", p)


if __name__ == "__main__":
    main()
