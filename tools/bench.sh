#!/usr/bin/env bash
# Throughput and detection benchmark on the shared benchmark log.
#
#   tools/bench.sh [LINES] [SEED]     defaults: 1000000 1
#
# Builds the release binary, writes the log with ../shared/bench/make_bench_log.py,
# runs `palisade scan --json` on one thread, and prints lines/s, peak RSS and the
# recall/false-accusation score against the log's truth file.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
seed=${2:-1}
out=bench-out
mkdir -p "$out"
gen=../shared/bench/make_bench_log.py
[ -f "$gen" ] || { echo "missing $gen (the shared folder must sit beside the repository)" >&2; exit 2; }

cargo build --release --quiet
log="$out/access-$lines-$seed.log"
[ -f "$log" ] || python3 "$gen" --lines "$lines" --seed "$seed" --out "$log" >&2
truth="${log%.log}.truth.json"

/usr/bin/time -f '%e %M' -o "$out/time.txt" \
  target/release/palisade scan --no-store --no-progress --json --format nginx "$log" \
  > "$out/detections.jsonl" 2> "$out/scan.stderr"
read -r secs rss_kb < "$out/time.txt"
python3 - "$lines" "$secs" "$rss_kb" <<'PY'
import sys
lines, secs, rss = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"scan: {lines} lines in {secs:.2f} s = {lines/secs:,.0f} lines/s, peak RSS {rss/1024:.1f} MB")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 tools/score_bench.py "$truth" "$out/detections.jsonl"
