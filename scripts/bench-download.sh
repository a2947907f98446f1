#!/usr/bin/env bash
# Download benchmark: loads ≥ 1M observations into its own embedded cluster, starts `datenwerk serve`
# (release build), downloads /datasets/bench/observations.csv plain and with gzip using curl while
# sampling the server's RSS every 0.2 s, and prints bytes, seconds and the largest RSS. The gzip body,
# unpacked with gzip(1), must equal the plain body byte for byte (exit 1 otherwise).
#   ROWS=260000 STATIONS=50 bash scripts/bench-download.sh      # ROWS × 4 observations
#   DATENWERK_BIN=.build/debug/datenwerk ROWS=20000 bash scripts/bench-download.sh   # quick check, no release build
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-260000}
STATIONS=${STATIONS:-50}
BENCH_DIR=${BENCH_DIR:-/tmp/datenwerk-bench-download}
PORT=${BENCH_PORT:-54381}
HTTP_PORT=${BENCH_HTTP_PORT:-18181}
FORMAT=${FORMAT:-csv}
rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR/pipelines"; chmod 755 "$BENCH_DIR"
export DATENWERK_PG_ROOT="$BENCH_DIR/pg" DATENWERK_PG_PORT="$PORT"
unset DATABASE_URL

if [ -n "${DATENWERK_BIN:-}" ]; then
  BIN=$DATENWERK_BIN   # e.g. .build/debug/datenwerk for a quick check of this script
else
  echo "== building release (.build-release)"
  swift build -c release --scratch-path .build-release >/dev/null
  BIN=.build-release/release/datenwerk
fi

echo "== generating $ROWS rows × 4 values ($STATIONS stations)"
python3 - "$BENCH_DIR" "$ROWS" "$STATIONS" <<'PY'
import sys, random
from datetime import datetime, timedelta, timezone
out, rows, stations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
hours = rows // stations
start = datetime(2023, 1, 1, tzinfo=timezone.utc)
with open(f"{out}/big.csv", "w", encoding="utf-8", newline="") as f:
    f.write("station,name,lon,lat,time,t,rh,p,wind\n")
    for s in range(stations):
        lon, lat = 7.55 + s * 0.003, 51.90 + s * 0.002
        for h in range(hours):
            ts = start + timedelta(hours=h)
            f.write(f"S{s:03d},Station {s} Süd,{lon:.5f},{lat:.5f},{ts:%Y-%m-%dT%H:%M:%SZ},"
                    f"{rng.uniform(-10, 30):.1f},{rng.uniform(20, 100):.0f},{rng.uniform(980, 1040):.1f},{rng.uniform(0, 60):.1f}\n")
PY
cat > "$BENCH_DIR/pipelines/bench.yaml" <<YAML
version: 1
name: bench
tenant: "05515000"
dataset:
  title: Benchmark-Messnetz
  description: Erzeugte Stundenwerte für den Download-Benchmark.
  theme: ENVI
source:
  kind: file
  path: $BENCH_DIR/big.csv
  format: { kind: csv }
observations:
  station:
    id: station
    prefix: bench
    name: name
    coordinates: { lon: lon, lat: lat }
  time: { field: time, format: iso8601 }
  values:
    - { field: t, property: air_temperature, unit: Cel }
    - { field: rh, property: relative_humidity, unit: "%" }
    - { field: p, property: air_pressure, unit: hPa }
    - { field: wind, property: wind_speed, unit: km/h }
YAML
OBS=$((ROWS / STATIONS * STATIONS * 4))

$BIN db start >/dev/null
$BIN migrate >/dev/null
echo "== loading $OBS observations"
t0=$(date +%s.%N)
$BIN run "$BENCH_DIR/pipelines/bench.yaml" --keep-database
t1=$(date +%s.%N)

echo "== datenwerk serve on 127.0.0.1:$HTTP_PORT"
$BIN serve --pipelines "$BENCH_DIR/pipelines" --catalog catalog.yaml --port "$HTTP_PORT" --workers 0 --no-scheduler \
    >"$BENCH_DIR/serve.log" 2>&1 &
SERVER=$!
stop_all() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  $BIN db stop >/dev/null 2>&1 || true
}
trap stop_all EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$BENCH_DIR/serve.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" "$BENCH_DIR/serve.log" || { cat "$BENCH_DIR/serve.log"; echo "error: the server did not start" >&2; exit 1; }
URL="http://127.0.0.1:$HTTP_PORT/datasets/bench/observations.$FORMAT"

# Samples the server's RSS (KiB) every 0.2 s into $1 until $2 exists.
sample() {
  while [ ! -e "$2" ]; do
    ps -o rss= -p "$SERVER" >>"$1" 2>/dev/null || break
    sleep 0.2
  done
}
max_mb() { sort -n "$1" | tail -1 | awk '{printf "%.1f", $1 / 1024}'; }

IDLE=$(ps -o rss= -p "$SERVER" | awk '{printf "%.1f", $1 / 1024}')
# Warm-up: the catalog computes the dataset's facts once (one grouped scan), as the first download would.
curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/catalog.ttl"

download() {  # name, extra curl args...
  local name=$1; shift
  rm -f "$BENCH_DIR/done-$name"; : >"$BENCH_DIR/rss-$name"
  sample "$BENCH_DIR/rss-$name" "$BENCH_DIR/done-$name" &
  local sampler=$!
  curl -s -S --fail -o "$BENCH_DIR/body-$name" -w '%{size_download} %{time_total}\n' "$@" "$URL" >"$BENCH_DIR/curl-$name"
  touch "$BENCH_DIR/done-$name"; wait "$sampler"
}
echo "== GET $URL (plain)"
download plain
echo "== GET $URL (Accept-Encoding: gzip)"
download gzip -H 'Accept-Encoding: gzip'

read -r PLAIN_BYTES PLAIN_S <"$BENCH_DIR/curl-plain"
read -r GZIP_BYTES GZIP_S <"$BENCH_DIR/curl-gzip"
gzip -dc "$BENCH_DIR/body-gzip" >"$BENCH_DIR/body-gunzipped"
GUNZIPPED_BYTES=$(stat -c %s "$BENCH_DIR/body-gunzipped")
LINES=$(wc -l <"$BENCH_DIR/body-plain")
SAME=no; cmp -s "$BENCH_DIR/body-plain" "$BENCH_DIR/body-gunzipped" && SAME=yes

python3 - <<PY
obs, load_s = $OBS, $t1 - $t0
rows = [("plain", $PLAIN_BYTES, $PLAIN_S, "$(max_mb "$BENCH_DIR/rss-plain")", $(wc -l <"$BENCH_DIR/rss-plain")),
        ("gzip", $GZIP_BYTES, $GZIP_S, "$(max_mb "$BENCH_DIR/rss-gzip")", $(wc -l <"$BENCH_DIR/rss-gzip"))]
print(f"\n{obs} observations loaded in {load_s:.1f} s; $FORMAT body: $LINES lines; server RSS idle $IDLE MB")
print(f"{'download':10} {'bytes':>12} {'seconds':>8} {'MB/s':>7} {'obs/s':>10} {'max RSS MB':>11} {'samples':>8}")
for name, size, s, rss, n in rows:
    print(f"{name:10} {size:12d} {s:8.2f} {size / s / 1e6:7.1f} {obs / s:10.0f} {rss:>11} {n:8d}")
print(f"gunzipped gzip body: $GUNZIPPED_BYTES bytes; plain: $PLAIN_BYTES bytes; identical: $SAME")
PY
[ "$SAME" = yes ] && [ "$GUNZIPPED_BYTES" = "$PLAIN_BYTES" ] || { echo "error: the gzip body does not unpack to the plain body" >&2; exit 1; }
