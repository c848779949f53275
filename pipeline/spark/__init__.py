"""The Spark engine (`--engine spark`): the batch job's features and scores computed on Apache
Spark, per bucket of deals, by the local engine's own functions.

Interactions are read by Spark (Parquet, a file or a partitioned folder, or CSV) and
hash-bucketed by deal id into `partitions` buckets, so every event of a deal lands in one
bucket; each bucket is cogrouped with the open deals of the same bucket and handed, once, to
`build_features` and `score_features` (scoring.py) through `applyInPandas`. One pandas call per
bucket, never per deal (a per-deal call costs ~20 ms of Spark/Arrow overhead). The deals table
(one row per deal: every bucket needs all of it for the owner and account track records) is
read on the driver, validated as the local engine does, and shipped with the function. The
one-row-per-open-deal scores come back to the driver, which ranks them globally with the local
`rank_queue`; exact reasons are then computed, in Spark again, only for the deals people read.

One question, one module (each imports only those below it, `pyproject.toml`'s spark contract):

- `queue.py`: the priority queue on Spark (`build_spark_queue`, called by `jobs/predict.py`);
- `features.py`: the training feature table on Spark (`spark_feature_builder`, `jobs/train.py`)
  and `feature_table.py`, the Parquet folder it is written to and read back from;
- `scoring.py`: what runs in a worker for one bucket: features, scores, reasons;
- `market.py`: the market's activity level, from every bucket's event counts;
- `buckets.py`: bucketing by deal, bucket validation, and a worker's error back on the driver;
- `read.py`: reading the tables with Spark and checking them on the driver (deals, `as_of`);
- `session.py`: the SparkSession (Java, pyspark, time zone, the workers' warnings).
"""
