#!/usr/bin/env bash
# Classify a catalogue on the Ray cluster of ray-cluster.yaml: the input and the output live on a volume
# every node sees (here the same NFS server), the driver runs on the head node.
#   scripts/classify-catalogue-on-ray.sh /mnt/catalogue/films.parquet /mnt/catalogue/genres.parquet [--llm]
set -euo pipefail
INPUT=${1:?input file (CSV, JSONL or Parquet)}
OUTPUT=${2:?output file}
shift 2
export RAY_ADDRESS=${RAY_ADDRESS:-http://10.0.0.10:8265}
exec ray job submit --working-dir "$(dirname "$0")/.." -- \
  ~/moviegenre/bin/moviegenre classify-file "$INPUT" -o "$OUTPUT" --engine ray "$@"
