#!/usr/bin/env bash
# Sets up the Python side of the Spark comparison: a venv with pyspark 4.0 and
# delta-spark 4.0 (the same venv as the Delta interop check, reused when it is
# there) and Java 17+. Prints the venv's python. Spark fetches the delta-spark
# jars from Maven Central into ~/.ivy2 on first use.
#
#   bench/spark/setup.sh                # venv in ~/.cache/upicdc-interop/venv
#   UPICDC_SPARK_VENV=/tmp/v bench/spark/setup.sh
set -euo pipefail
venv=${UPICDC_SPARK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/upicdc-interop/venv}
if ! command -v java >/dev/null 2>&1; then
	echo "setup: Spark needs Java 17+ on PATH (Debian: apt-get install openjdk-17-jre-headless)" >&2
	exit 1
fi
if ! "$venv/bin/python" -c 'import pyspark, delta' >/dev/null 2>&1; then
	python3 -m venv "$venv"
	"$venv/bin/python" -m pip install -q 'pyspark==4.0.*' 'delta-spark==4.0.*'
fi
"$venv/bin/python" -c 'import pyspark, delta; print("pyspark", pyspark.__version__)' >&2
echo "$venv/bin/python"
