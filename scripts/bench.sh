#!/usr/bin/env bash
# Load benchmark: `datenwerk run` on a large German-style CSV, side by side with `psql \copy` of the
# same observations (already normalised) into a plain table, and `\copy` + the same merge SQL.
# Prints figures; asserts nothing. Uses its own embedded cluster under $BENCH_DIR.
#   ROWS=200000 STATIONS=50 bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
STATIONS=${STATIONS:-50}
BENCH_DIR=${BENCH_DIR:-/tmp/datenwerk-bench}
PORT=${BENCH_PORT:-54379}
rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR"; chmod 755 "$BENCH_DIR"
export DATENWERK_PG_ROOT="$BENCH_DIR/pg" DATENWERK_PG_PORT="$PORT"
unset DATABASE_URL

echo "== building release"
swift build -c release --scratch-path .build-release >/dev/null
BIN=.build-release/release/datenwerk

echo "== generating $ROWS rows × 4 values ($STATIONS stations)"
python3 - "$BENCH_DIR" "$ROWS" "$STATIONS" <<'PY'
import sys, random
from datetime import datetime, timedelta, timezone
out, rows, stations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
hours = rows // stations
start = datetime(2023, 1, 1, tzinfo=timezone.utc)
with open(f"{out}/big.csv", "w", encoding="iso-8859-1", newline="") as f, open(f"{out}/big.tsv", "w") as t:
    f.write("Station;Stationsname;Rechtswert;Hochwert;Zeit (UTC);Lufttemperatur [°C];rel. Feuchte [%];Luftdruck [hPa];Wind [km/h]\r\n")
    for s in range(stations):
        e, n = 400000 + s * 137.5, 5750000 + s * 91.25
        for h in range(hours):
            ts = start + timedelta(hours=h)
            v = (round(rng.uniform(-10, 30), 1), round(rng.uniform(20, 100)), round(rng.uniform(980, 1040), 1), round(rng.uniform(0, 60), 1))
            f.write(f"S{s:03d};Station Nr. {s} Süd;{e:.2f}".replace(".", ",") + f";{n:.2f}".replace(".", ",") +
                    f";{ts:%d.%m.%Y %H:%M};" + ";".join(str(x).replace(".", ",") for x in v) + "\r\n")
            iso = ts.strftime("%Y-%m-%d %H:%M:%S+00")
            t.write(f"{s + 1}\tair_temperature\t{iso}\t{v[0]}\n{s + 1}\trelative_humidity\t{iso}\t{v[1]}\n"
                    f"{s + 1}\tair_pressure\t{iso}\t{v[2]}\n{s + 1}\twind_speed\t{iso}\t{v[3] / 3.6}\n")
PY
cat > "$BENCH_DIR/bench.yaml" <<YAML
version: 1
name: bench
tenant: "05515000"
source:
  kind: file
  path: $BENCH_DIR/big.csv
  format: { kind: csv, delimiter: ";", encoding: iso-8859-1 }
observations:
  station:
    id: Station
    name: Stationsname
    coordinates: { x: Rechtswert, y: Hochwert, crs: "EPSG:25832" }
  time: { field: "Zeit (UTC)", format: dd.MM.yyyy HH:mm, zone: UTC }
  decimal: comma
  values:
    - { field: "Lufttemperatur [°C]", property: air_temperature, unit: Cel }
    - { field: "rel. Feuchte [%]", property: relative_humidity, unit: "%" }
    - { field: "Luftdruck [hPa]", property: air_pressure, unit: hPa }
    - { field: "Wind [km/h]", property: wind_speed, unit: km/h }
YAML
BYTES=$(stat -c %s "$BENCH_DIR/big.csv")
OBS=$((ROWS / STATIONS * STATIONS * 4))

$BIN db start >/dev/null
PSQL="psql -q -X -h $BENCH_DIR/pg/socket -p $PORT -U datenwerk datenwerk"
$BIN migrate >/dev/null

now() { date +%s.%N; }
rss() { awk '/Maximum resident/ {print int($6/1024)}' "$1"; }

echo "== datenwerk run (first load)"
t0=$(now); /usr/bin/time -v $BIN run "$BENCH_DIR/bench.yaml" --keep-database 2>"$BENCH_DIR/time1" >"$BENCH_DIR/run1"; t1=$(now)
cat "$BENCH_DIR/run1"
echo "== datenwerk run (same input again: idempotent merge, nothing changes)"
t2=$(now); /usr/bin/time -v $BIN run "$BENCH_DIR/bench.yaml" --keep-database 2>"$BENCH_DIR/time2" >"$BENCH_DIR/run2"; t3=$(now)
cat "$BENCH_DIR/run2"

echo "== psql \\copy of the same observations (already normalised TSV) into a plain table"
$PSQL -c "CREATE TABLE public.plain (station_id int, property text, phenomenon_start timestamptz, result float8)"
t4=$(now); $PSQL -c "\\copy public.plain FROM '$BENCH_DIR/big.tsv'"; t5=$(now)

echo "== psql \\copy into staging + the same INSERT … ON CONFLICT merge (into a fresh copy of the schema)"
$PSQL -c "CREATE TABLE public.obs (LIKE datenwerk.observations INCLUDING ALL) PARTITION BY RANGE (phenomenon_start)" \
      -c "CREATE TABLE public.obs_2023 PARTITION OF public.obs FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')" \
      -c "CREATE TABLE public.obs_2024 PARTITION OF public.obs FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
t6=$(now)
$PSQL <<SQL
BEGIN;
CREATE TEMP TABLE st (station_id int, property text, phenomenon_start timestamptz, result float8) ON COMMIT DROP;
\\copy st FROM '$BENCH_DIR/big.tsv'
INSERT INTO public.obs (station_id, property, phenomenon_start, result)
SELECT station_id, property, phenomenon_start, result FROM st
ON CONFLICT (station_id, property, phenomenon_start) DO UPDATE SET result = EXCLUDED.result
WHERE obs.result IS DISTINCT FROM EXCLUDED.result;
COMMIT;
SQL
t7=$(now)
COUNT=$($PSQL -t -A -c "SELECT count(*) FROM datenwerk.observations")
$BIN db stop >/dev/null

python3 - <<PY
obs, mb = $OBS, $BYTES / 1e6
rows = [
  ("datenwerk run (parse+normalise+COPY+merge)", $t1 - $t0, "$(rss $BENCH_DIR/time1)"),
  ("datenwerk run again (idempotent)", $t3 - $t2, "$(rss $BENCH_DIR/time2)"),
  ("psql \\\\copy into a plain table", $t5 - $t4, "-"),
  ("psql \\\\copy + ON CONFLICT merge", $t7 - $t6, "-"),
]
print(f"\n{obs} observations from {mb:.1f} MB CSV; in datenwerk.observations: $COUNT")
print(f"{'what':45} {'seconds':>8} {'obs/s':>10} {'MB/s':>7} {'max RSS MB':>11}")
for name, s, r in rows:
    print(f"{name:45} {s:8.2f} {obs / s:10.0f} {mb / s:7.1f} {r:>11}")
PY
