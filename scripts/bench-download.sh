#!/usr/bin/env bash
# Download benchmark: loads ≥ 1M observations into its own embedded cluster, starts `datenwerk serve`
# (release build) and downloads /datasets/bench/observations.{csv,geojson} REPEAT times, interleaved with
# the same data read by other tools from the same database:
#   - `psql \copy (<the download's SQL>) TO '/dev/null' CSV` — the statement the server's cursor runs
#     (the target: CSV download ≥ 0.8× its rows/s), and the same joined with stations and units (the
#     download's content);
#   - `ogr2ogr -f GeoJSON /vsistdout/ PG:… -sql "<the download's SQL with ST_AsBinary geometry>"` (the target:
#     GeoJSON download ≥ 5× its rows/s).
# Prints medians of seconds, rows/s, the ratios, the server's CPU seconds per download and its largest RSS.
# Then one gzip download per format, which must unpack to the plain body byte for byte (exit 1 otherwise).
#   ROWS=260000 STATIONS=50 REPEAT=3 bash scripts/bench-download.sh      # ROWS × 4 observations
#   FORMATS=csv REPEAT=1 DATENWERK_BIN=.build/debug/datenwerk ROWS=5000 bash scripts/bench-download.sh   # quick check
#   BASE_BIN=/tmp/old/datenwerk bash scripts/bench-download.sh   # also an older build's serve, interleaved ("base")
#   INDEX=0: do not add the download-order index (phenomenon_start, station_id, property) when none exists.
#   PERF=1: record `perf record -g` of the serve process during one more download per format ($BENCH_DIR/perf-*.data).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-260000}
STATIONS=${STATIONS:-50}
REPEAT=${REPEAT:-3}
FORMATS=${FORMATS:-csv geojson}
INDEX=${INDEX:-1}
PERF=${PERF:-0}
BENCH_DIR=${BENCH_DIR:-/tmp/datenwerk-bench-download}
PORT=${BENCH_PORT:-54381}
HTTP_PORT=${BENCH_HTTP_PORT:-18181}
BASE_HTTP_PORT=$((HTTP_PORT + 1))
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
PSQL="psql -q -X -v ON_ERROR_STOP=1 -h $BENCH_DIR/pg/socket -p $PORT -U datenwerk datenwerk"
PG="host=$BENCH_DIR/pg/socket port=$PORT user=datenwerk dbname=datenwerk"
echo "== loading $OBS observations"
t0=$(date +%s.%N)
$BIN run "$BENCH_DIR/pipelines/bench.yaml" --keep-database >"$BENCH_DIR/run.log"
t1=$(date +%s.%N)
tail -3 "$BENCH_DIR/run.log"

ORDERED=$($PSQL -At -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  WHERE c.relname = 'observations' AND c.relnamespace = 'datenwerk'::regnamespace
    AND (SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
        = ARRAY['phenomenon_start', 'station_id', 'property']::name[]")
if [ "$ORDERED" = 0 ] && [ "$INDEX" = 1 ]; then
  echo "== adding the download-order index (phenomenon_start, station_id, property) by hand"
  $PSQL -c "CREATE INDEX bench_download_order_idx ON datenwerk.observations (phenomenon_start, station_id, property)"
  ORDERED=added
fi
$PSQL -c "VACUUM ANALYZE datenwerk.observations" >/dev/null

# The statement the download's cursor runs (ObservationStore.selection), and the same with the download's content.
WHERE="o.run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = 'bench')"
ORDER="o.phenomenon_start, o.station_id, o.property"
CURSOR_SQL="SELECT o.station_id, o.property, o.phenomenon_start, o.phenomenon_end, o.result, o.quality
  FROM datenwerk.observations o WHERE $WHERE ORDER BY $ORDER"
JOINED="FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
  JOIN datenwerk.observed_properties p ON p.key = o.property WHERE $WHERE ORDER BY $ORDER"
CONTENT_SQL="SELECT s.key, s.name, o.property, p.unit, o.phenomenon_start, o.phenomenon_end, o.result, o.quality,
  ST_X(s.geom), ST_Y(s.geom) $JOINED"
OGR_SQL="SELECT s.key AS station_id, s.name AS station_name, o.property, p.unit, o.phenomenon_start, o.phenomenon_end,
  o.result AS value, o.quality, ST_AsBinary(s.geom) AS geom $JOINED"
$PSQL -c "EXPLAIN $CURSOR_SQL" | grep -E "Sort|Index|Append" | head -4 | sed 's/^/   plan: /'

start_server() {  # binary, port, log → pid
  $1 serve --pipelines "$BENCH_DIR/pipelines" --catalog catalog.yaml --port "$2" --workers 0 --no-scheduler >"$3" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$3" 2>/dev/null && break; sleep 0.1; done
  grep -q "listening on" "$3" || { cat "$3"; echo "error: the server ($1) did not start" >&2; exit 1; }
  echo "$pid"
}
SERVERS=()
stop_all() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  $BIN db stop >/dev/null 2>&1 || true
}
trap stop_all EXIT
echo "== datenwerk serve on 127.0.0.1:$HTTP_PORT"
SERVER=$(start_server "$BIN" "$HTTP_PORT" "$BENCH_DIR/serve.log"); SERVERS+=("$SERVER")
BASE_SERVER=
if [ -n "${BASE_BIN:-}" ]; then
  echo "== base: $BASE_BIN serve on 127.0.0.1:$BASE_HTTP_PORT"
  BASE_SERVER=$(start_server "$BASE_BIN" "$BASE_HTTP_PORT" "$BENCH_DIR/serve-base.log"); SERVERS+=("$BASE_SERVER")
fi
IDLE=$(ps -o rss= -p "$SERVER" | awk '{printf "%.1f", $1 / 1024}')
# Warm-up: the catalog computes the dataset's facts once (one grouped scan), as the first download would.
curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/catalog.ttl"
[ -z "$BASE_SERVER" ] || curl -s -o /dev/null "http://127.0.0.1:$BASE_HTTP_PORT/catalog.ttl"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU of the cluster's processes (the serve connection's backend stays, so its share of a download is counted).
POSTMASTER=$(head -1 "$BENCH_DIR/pg/data/postmaster.pid")
pg_ticks() {
  local total=0 pid
  for pid in $(ps -o pid= --ppid "$POSTMASTER"); do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
  echo "$total"
}
# Samples a process's RSS (KiB) every 0.2 s into $2 until $3 exists.
sample() {
  while [ ! -e "$3" ]; do ps -o rss= -p "$1" >>"$2" 2>/dev/null || break; sleep 0.2; done
}
RESULTS="$BENCH_DIR/results.tsv"; : >"$RESULTS"
# One timed download: name, server pid, port, format, extra curl args… → a line in $RESULTS:
# name seconds bytes serve_cpu_ticks max_rss_kib postgres_cpu_ticks
download() {
  local name=$1 pid=$2 port=$3 format=$4; shift 4
  local tag="$name-$format"
  rm -f "$BENCH_DIR/done"; : >"$BENCH_DIR/rss"
  sample "$pid" "$BENCH_DIR/rss" "$BENCH_DIR/done" &
  local sampler=$! before after pg_before pg_after
  before=$(cpu_ticks "$pid"); pg_before=$(pg_ticks)
  curl -s -S --fail -o "$BENCH_DIR/body-$tag" -w '%{size_download} %{time_total}\n' "$@" \
    "http://127.0.0.1:$port/datasets/bench/observations.$format" >"$BENCH_DIR/curl"
  after=$(cpu_ticks "$pid"); pg_after=$(pg_ticks)
  touch "$BENCH_DIR/done"; wait "$sampler"
  read -r size seconds <"$BENCH_DIR/curl"
  echo -e "$tag\t$seconds\t$size\t$((after - before))\t$(sort -n "$BENCH_DIR/rss" | tail -1)\t$((pg_after - pg_before))" >>"$RESULTS"
}
timed() {  # name, command… → a line in $RESULTS
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
  echo -e "$name\t$(awk "BEGIN { print $t1 - $t0 }")\t-\t-\t-\t-" >>"$RESULTS"
}

for round in $(seq 1 "$REPEAT"); do
  echo "== round $round of $REPEAT"
  for format in $FORMATS; do
    download datenwerk "$SERVER" "$HTTP_PORT" "$format"
    [ -z "$BASE_SERVER" ] || download base "$BASE_SERVER" "$BASE_HTTP_PORT" "$format"
    if [ "$format" = csv ]; then
      timed copy-cursor-sql $PSQL -c "\\copy ($(echo $CURSOR_SQL)) TO '/dev/null' WITH (FORMAT csv, HEADER)"
      timed copy-content-sql $PSQL -c "\\copy ($(echo $CONTENT_SQL)) TO '/dev/null' WITH (FORMAT csv, HEADER)"
    else
      timed ogr2ogr ogr2ogr -f GeoJSON /vsistdout/ PG:"$PG" -sql "$OGR_SQL"
    fi
  done
done

for format in $FORMATS; do
  echo "== gzip: observations.$format (Accept-Encoding: gzip)"
  download datenwerk-gzip "$SERVER" "$HTTP_PORT" "$format" -H 'Accept-Encoding: gzip'
  gzip -dc "$BENCH_DIR/body-datenwerk-gzip-$format" >"$BENCH_DIR/body-gunzipped"
  cmp -s "$BENCH_DIR/body-datenwerk-$format" "$BENCH_DIR/body-gunzipped" ||
    { echo "error: the gzip $format body does not unpack to the plain body" >&2; exit 1; }
  if [ -n "$BASE_SERVER" ]; then
    cmp -s "$BENCH_DIR/body-datenwerk-$format" "$BENCH_DIR/body-base-$format" && echo "   $format body identical to base's" ||
      echo "   note: the $format body differs from base's: $(cmp "$BENCH_DIR/body-datenwerk-$format" "$BENCH_DIR/body-base-$format" | head -1)"
  fi
done
if [ "$PERF" = 1 ]; then
  for format in $FORMATS; do
    echo "== perf record of serve during one $format download ($BENCH_DIR/perf-$format.data)"
    perf record -g -p "$SERVER" -o "$BENCH_DIR/perf-$format.data" 2>/dev/null & PERFPID=$!
    sleep 0.5
    download perf "$SERVER" "$HTTP_PORT" "$format"
    kill -INT "$PERFPID"; wait "$PERFPID" || true
  done
fi

python3 - "$RESULTS" <<PY
import sys, statistics
obs, load_s = $OBS, $t1 - $t0
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
def med(name, col=1):
    xs = [float(r[col]) for r in rows if r[0] == name and r[col] != "-"]
    return statistics.median(xs) if xs else None
def count(name): return sum(1 for r in rows if r[0] == name)
print(f"\n{obs} observations loaded in {load_s:.1f} s; download-order index: $ORDERED; server RSS idle $IDLE MB")
print(f"medians of {$REPEAT} interleaved runs (gzip: one run)\n")
print(f"{'reader':34} {'seconds':>8} {'rows/s':>9} {'MB/s':>7} {'serve CPU s':>11} {'PG CPU s':>8} {'max RSS MB':>10}  ratio")
names = ["datenwerk-csv", "base-csv", "copy-cursor-sql", "copy-content-sql", "datenwerk-geojson", "base-geojson", "ogr2ogr",
         "datenwerk-gzip-csv", "datenwerk-gzip-geojson", "datenwerk-ndjson", "base-ndjson"]
labels = {"copy-cursor-sql": "psql \\\\copy (cursor SQL) to CSV", "copy-content-sql": "psql \\\\copy (joined content) to CSV",
          "ogr2ogr": "ogr2ogr -f GeoJSON (joined, WKB)"}
copy, ogr = med("copy-cursor-sql"), med("ogr2ogr")
for name in names:
    s = med(name)
    if s is None: continue
    size, cpu, rss, pg = med(name, 2), med(name, 3), med(name, 4), med(name, 5)
    ratio = ""
    if name.endswith("-csv") and copy: ratio = f"{copy / s:5.2f}× \\\\copy (target ≥ 0.80)"
    if name.endswith("-geojson") and ogr: ratio = f"{ogr / s:5.2f}× ogr2ogr (target ≥ 5)"
    print(f"{labels.get(name, name):34} {s:8.2f} {obs / s:9.0f} {(size / s / 1e6 if size else 0):7.1f} "
          f"{(cpu / 100 if cpu is not None else float('nan')):11.2f} {(pg / 100 if pg is not None else float('nan')):8.2f} "
          f"{(rss / 1024 if rss else float('nan')):10.1f}  {ratio}")
PY
