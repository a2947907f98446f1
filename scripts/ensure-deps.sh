#!/bin/sh
# Installs what Datenwerk needs from the system: PostgreSQL 15 server binaries and PostGIS.
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
if [ -z "$missing" ]; then
  exit 0
fi
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
