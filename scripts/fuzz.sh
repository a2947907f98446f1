#!/usr/bin/env bash
# Fuzz the decoders with libFuzzer (not part of `make test`).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags…]
#   scripts/fuzz.sh all 60            # each target for 60 s, one after the other
#   scripts/fuzz.sh csv 0 -runs=1000000
#   scripts/fuzz.sh build             # only build the fuzz executables
#
# TARGET: csv, json (JSONParser + JSONValueSkipper), streaming-json, ndjson, cron, xml (StreamingXMLDecoder),
# sta-filter (the SensorThings $filter/$expand/path parser, DatenwerkPublishing), all.
# The sources of DatenwerkCore, DatenwerkFormats and DatenwerkTransforms are compiled straight with
# `swiftc -sanitize=fuzzer,address` into .build-fuzz/ (no SwiftPM build, no network). Every target runs at
# `nice -n 15`. The seed corpus is cut at run time from SampleData/ and the reference data
# (DATENWERK_REFERENCE_DATA, default ../shared/reference-data) into $FUZZ_WORK (default /tmp/datenwerk-fuzz);
# nothing is copied into the repository. A crash leaves its input in .build-fuzz/artifacts/ and makes the
# script exit 1. FUZZ_OPT=-Onone builds with the standard library's debug checks (slower, catches more).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${FUZZ_BUILD:-$ROOT/.build-fuzz}"
WORK="${FUZZ_WORK:-/tmp/datenwerk-fuzz}"
REFERENCE="${DATENWERK_REFERENCE_DATA:-$ROOT/../shared/reference-data}"
OPT="${FUZZ_OPT:--O}"
MAX_LEN="${FUZZ_MAX_LEN:-512}"
TARGETS=(csv json streaming-json ndjson cron xml sta-filter)

usage() {
    echo "usage: scripts/fuzz.sh {${TARGETS[*]// /|}|all|build} SECONDS [libFuzzer flags…]" >&2
    exit 64
}

source_file() {
    case "$1" in
        csv) echo CSVDecoderFuzz.swift ;;
        json) echo JSONParserFuzz.swift ;;
        streaming-json) echo StreamingJSONDecoderFuzz.swift ;;
        ndjson) echo NDJSONDecoderFuzz.swift ;;
        cron) echo CronScheduleFuzz.swift ;;
        xml) echo XMLDecoderFuzz.swift ;;
        sta-filter) echo STAFilterFuzz.swift ;;
        *) return 1 ;;
    esac
}

# Sources compiled into a target's own module (a no-I/O file of a target the harness does not build whole).
extra_sources() {
    case "$1" in
        sta-filter) echo "$ROOT/Sources/DatenwerkPublishing/STAQuery.swift $ROOT/Sources/DatenwerkPublishing/ByteWriting.swift" ;;
    esac
}

# One library module: its .swiftmodule and one object file, rebuilt when a source is newer.
build_module() {
    local name="$1"
    local object="$BUILD/$name.o"
    if [[ -f "$object" && -f "$BUILD/flags" && "$(cat "$BUILD/flags")" == "$OPT" ]] &&
        [[ -z "$(find "$ROOT/Sources/$name" -name '*.swift' -newer "$object" -print -quit)" ]]; then
        return
    fi
    echo "fuzz: compiling $name ($OPT)" >&2
    # DatenwerkFormats' XML decoder imports the CLibXML2 system module (Sources/CLibXML2, Debian libxml2-dev).
    nice -n 15 swiftc "$OPT" -wmo -parse-as-library -enable-testing -package-name datenwerk -sanitize=fuzzer,address \
        -module-name "$name" -I "$BUILD" -I "$ROOT/Sources/CLibXML2" -Xcc -I/usr/include/libxml2 \
        -emit-module -emit-module-path "$BUILD/$name.swiftmodule" \
        -c "$ROOT/Sources/$name"/*.swift -o "$object"
    REBUILT=1
}

build() {
    mkdir -p "$BUILD/artifacts"
    REBUILT=0
    if [[ ! -f "$BUILD/flags" || "$(cat "$BUILD/flags")" != "$OPT" ]]; then rm -f "$BUILD"/*.o; fi
    build_module DatenwerkCore
    build_module DatenwerkFormats
    build_module DatenwerkTransforms
    echo "$OPT" > "$BUILD/flags"
    local target
    for target in "$@"; do
        local exe="$BUILD/fuzz-$target" src
        src="$(source_file "$target")"
        if [[ $REBUILT == 0 && -x "$exe" && "$exe" -nt "$BUILD/DatenwerkCore.o" && "$exe" -nt "$BUILD/DatenwerkFormats.o" &&
            "$exe" -nt "$BUILD/DatenwerkTransforms.o" ]] &&
            [[ -z "$(find "$ROOT/Fuzz" $(extra_sources "$target") -name '*.swift' -newer "$exe" -print -quit)" ]]; then
            continue
        fi
        echo "fuzz: linking $exe" >&2
        nice -n 15 swiftc "$OPT" -parse-as-library -package-name datenwerk -sanitize=fuzzer,address -I "$BUILD" \
            -I "$ROOT/Sources/CLibXML2" -Xcc -I/usr/include/libxml2 \
            -module-name "Fuzz_${target//-/_}" \
            "$ROOT/Fuzz/Support"/*.swift "$ROOT/Fuzz/Targets/$src" $(extra_sources "$target") \
            "$BUILD/DatenwerkCore.o" "$BUILD/DatenwerkFormats.o" "$BUILD/DatenwerkTransforms.o" -lxml2 -lm -o "$exe" 2>&1 |
            { grep -v "Cannot export local symbol '__asan" || true; } >&2
        [[ ${PIPESTATUS[0]} == 0 ]] || { echo "fuzz: building $exe failed" >&2; exit 1; }
    done
}

# Seeds: each input is [split seed][options byte][document], documents cut to MAX_LEN bytes.
seed() {
    local dir="$1" name="$2" file="$3" prefix
    for prefix in '\x00\x00' '\x01\x01' '\x02\x84' '\x03\x10'; do
        {
            printf "$prefix"
            head -c "$((MAX_LEN - 2))" "$file"
        } > "$dir/$name-$(printf "$prefix" | od -An -tx1 | tr -d ' \n')"
    done
}

corpus() {
    local target="$1" dir="$WORK/seeds/$target" file n=0
    rm -rf "$dir"
    mkdir -p "$dir" "$WORK/corpus/$target"
    local patterns=()
    case "$target" in
        csv) patterns=(-name '*.csv' -o -name '*.txt') ;;
        json | streaming-json) patterns=(-name '*.json' -o -name '*.geojson' -o -name '*.jsonld') ;;
        ndjson) patterns=(-name '*.ndjson' -o -name '*.jsonl' -o -name '*.json') ;;
        xml) patterns=(-name '*.xml') ;;
    esac
    if [[ ${#patterns[@]} -gt 0 ]]; then
        while IFS= read -r -d '' file; do
            n=$((n + 1))
            seed "$dir" "$n-$(basename "$file")" "$file"
        done < <(find "$ROOT/SampleData" "$REFERENCE" -type f \( "${patterns[@]}" \) -print0 2>/dev/null)
    fi
    case "$target" in
        ndjson)
            # NDJSON seeds: JSON files with their newlines removed, one document per line.
            printf '\x00\x00{"a": 1}\n\n  [1, 2]  \r\nnot json\n{"b": {"c": "\\u00e4"}}' > "$dir/lines"
            ;;
        streaming-json)
            printf '\x00\x01{"meta": {"q": "a\\"b]}", "list": [1, {"x": null}]}, "items": [{"n": 1}, {"n": -1.5e2}], "next": "/p/3"}' > "$dir/envelope"
            printf '\x00\x02{"a": {"x": 1, "b": [{"v": true}, {"v": null}], "y": "z"}}' > "$dir/nested"
            ;;
        cron)
            local e k=0
            for e in '*/15 * * * *' '30 2 * * *' '0 0 1 1 *' '5 4 * * SUN' '0 8-18/2 * JAN-MAR MON-FRI' '@hourly' \
                '0 0 31 2 *' 'every 15m' 'every PT1H30M' 'every P1W' 'every 9999999999999m' '1d' 'PT15M' 'P1DT12H'; do
                k=$((k + 1))
                printf '\x00\x00%s' "$e" > "$dir/cron-$k"
                printf '\x01\x01%s' "$e" > "$dir/cron-$k-utc"
            done
            ;;
        sta-filter)
            local e k=0
            for e in "result gt 10 and phenomenonTime ge 2024-10-27T01:00:00.000Z" "not (id eq 1) or name ne 'O''Brien'" \
                "substringof('Nord', name) and startswith(description, 'weather')" "result add 2 mul 3 sub -1.5e2 div 4 mod 3 le 7" \
                "geo.intersects(location, geography'POLYGON((7 51, 8 51, 8 52, 7 52, 7 51))')" "st_within(feature, geometry'POINT(7.6 51.9)')" \
                "year(phenomenonTime) eq 2024 and round(result) ne 0" "Observations(\$top=1;\$orderby=phenomenonTime desc),Thing/Locations" \
                "Datastreams(5)/Observations" "Observations('5:1729990800000000')/Datastream/Thing" "phenomenonTime desc,id"; do
                k=$((k + 1))
                printf '\x00\x06%s' "$e" > "$dir/sta-$k"
                printf '\x01\xa3%s' "$e" > "$dir/sta-$k-options"
                printf '\x02\xc0%s' "$e" > "$dir/sta-$k-path"
            done
            ;;
    esac
    echo "$dir"
}

run() {
    local target="$1" seconds="$2"
    shift 2
    local seeds log
    seeds="$(corpus "$target")"
    log="$WORK/$target.log"
    echo "fuzz: $target for ${seconds}s (corpus $WORK/corpus/$target, seeds $seeds)" >&2
    local status=0
    local limit=()
    [[ "$seconds" != 0 ]] && limit=(-max_total_time="$seconds")
    # The Swift runtime's own crash backtracer would race ASan's report: leave crashes to libFuzzer.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0:malloc_context_size=0:${ASAN_OPTIONS:-}" nice -n 15 "$BUILD/fuzz-$target" \
        "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len="$MAX_LEN" -print_final_stats=1 \
        -artifact_prefix="$BUILD/artifacts/$target-" "$@" \
        "$WORK/corpus/$target" "$seeds" > "$log" 2>&1 || status=$?
    local execs time
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    time="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
    if [[ $status == 0 ]]; then
        echo "fuzz: $target: ${execs:-?} executions in ${time:-$seconds} s, 0 crashes, 0 timeouts"
    else
        echo "fuzz: $target: FAILED after ${execs:-?} executions (exit $status); see $log and $BUILD/artifacts/" >&2
        grep -m 5 -E "ERROR|INVARIANT|Fatal error|Test unit written" "$log" >&2 || true
    fi
    return $status
}

[[ $# -ge 1 ]] || usage
target="$1"
shift
mkdir -p "$WORK"
case "$target" in
    build) build "${TARGETS[@]}" ;;
    all)
        [[ $# -ge 1 ]] || usage
        seconds="$1"
        shift
        build "${TARGETS[@]}"
        failed=0
        for t in "${TARGETS[@]}"; do run "$t" "$seconds" "$@" || failed=1; done
        exit $failed
        ;;
    *)
        source_file "$target" > /dev/null || usage
        [[ $# -ge 1 ]] || usage
        seconds="$1"
        shift
        build "$target"
        run "$target" "$seconds" "$@"
        ;;
esac
