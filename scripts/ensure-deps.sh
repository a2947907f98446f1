#!/bin/sh
# Installs what Datenwerk needs from the system: PostgreSQL 15 server binaries, PostGIS, the zlib and
# libxml2 headers (and, as root, what the test validators need: scripts/ensure-validators.sh).
# As root it installs them with apt; otherwise it prints the one command to run.
set -eu

missing=""
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  missing="$missing postgresql-15"
fi
if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
  missing="$missing postgresql-15-postgis-3"
fi
if [ ! -f /usr/include/zlib.h ]; then
  missing="$missing zlib1g-dev"
fi
# libxml2's headers and pkg-config file for the CLibXML2 system library (the streaming XML decoder).
if [ ! -f /usr/include/libxml2/libxml/parser.h ] || ! pkg-config --exists libxml-2.0 2>/dev/null; then
  missing="$missing libxml2-dev"
fi
if ! command -v pkg-config >/dev/null 2>&1; then
  missing="$missing pkg-config"
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "Installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Do not let the Debian package start its own cluster; Datenwerk runs a private one.
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "Datenwerk needs:$missing"
    echo "Install with: sudo apt-get install -y$missing"
    exit 1
  fi
fi
# As root, also prepare the outside validators the tests use (gdal-bin, chromium, their Python venvs).
# A failure here (e.g. no PyPI access) does not stop `make demo`; the validator tests then report it.
if [ "$(id -u)" = "0" ]; then
  sh "$(dirname "$0")/ensure-validators.sh" --quick || echo "warning: the validators are not ready (scripts/ensure-validators.sh failed)"
fi
