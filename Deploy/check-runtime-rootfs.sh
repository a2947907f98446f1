#!/bin/sh
# The Dockerfile's runtime stage without a container engine: a Debian bookworm root made with debootstrap,
# the runtime stage's own RUN line (read from Deploy/Dockerfile) run in it, the release binary and its resource
# bundles staged as the build stage does, then, as user 10001:
#   datenwerk validate Pipelines          (reads the DatenwerkPipeline resource bundle next to the binary)
#   datenwerk serve                        (applies the migrations from the DatenwerkPostgres bundle)
#   the image's HEALTHCHECK command        (must exit 0 against /health)
# With a dynamically linked release build the Swift runtime libraries are copied in as a stand-in for
# `--static-swift-stdlib`; with DATENWERK_RELEASE_DIR pointing at a static build nothing is. Needs root, debootstrap, the Debian mirror, the venv-deploy
# tools (scripts/ensure-validators.sh) and a release build (swift build -c release --scratch-path .build-release).
# Not run by the tests (it takes minutes); Deploy/README.md says when it was run.
#   Usage: sh Deploy/check-runtime-rootfs.sh [WORKDIR]
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/datenwerk-runtime-check}
# A --static-swift-stdlib build (DATENWERK_RELEASE_DIR=.build-static/release) needs no Swift libraries copied in.
bin="${DATENWERK_RELEASE_DIR:-$repo/.build-release/release}"
python="${HUB_VALIDATORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hub-validators}/venv-deploy/bin/python"
port=18080
pgport=54397
root="$work/rootfs"
mkdir -p "$work"

instruction() {  # instruction RUN|HEALTHCHECK: the runtime stage's instruction text, by BuildKit's parser
  "$python" - "$repo/Deploy/Dockerfile" "$1" <<'EOF'
import sys, dockerfile
stage = 0
for c in dockerfile.parse_file(sys.argv[1]):
    if c.cmd == "FROM":
        stage += 1
    if stage == 2 and c.cmd == sys.argv[2]:
        print(c.value[-1] if c.cmd == "HEALTHCHECK" else c.value[0])
EOF
}

if [ ! -x "$root/bin/sh" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$work/debootstrap.log"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
if ! chroot "$root" id datenwerk >/dev/null 2>&1; then
  chroot "$root" /bin/sh -c "$(instruction RUN)" > "$work/run.log" 2>&1
fi
echo "user in the runtime root: $(chroot "$root" id datenwerk)"

# The build stage's staging: the binary and every resource bundle beside it.
rm -rf "$root/usr/local/bin/"*
cp "$bin/datenwerk" "$root/usr/local/bin/"
find "$bin/" -maxdepth 1 -name '*.resources' -exec cp -R {} "$root/usr/local/bin/" \;
rm -rf "$root/opt/swift-runtime"
mkdir -p "$root/opt/swift-runtime" "$root/srv/datenwerk"
if ldd "$bin/datenwerk" | grep -q libswiftCore; then
  echo "note: a dynamically linked build: the Swift runtime libraries are copied in (the image links them statically)"
  cp /opt/swift/usr/lib/swift/linux/*.so "$root/opt/swift-runtime/"
fi
chroot "$root" /usr/bin/ldd /usr/local/bin/datenwerk > "$work/ldd.txt" 2>&1 || true
rm -rf "$root/srv/datenwerk/"*
cp -R "$repo/Pipelines" "$repo/SampleData" "$repo/catalog.yaml" "$root/srv/datenwerk/"

mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"   # a container always has /proc
pg_started=false
cleanup() {
  if [ -n "${serve_pid:-}" ]; then kill -TERM "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  $pg_started && DATENWERK_PG_ROOT="$work/pg" DATENWERK_PG_PORT=$pgport "$repo/.build/debug/datenwerk" db stop >/dev/null 2>&1 || true
  umount "$root/proc" 2>/dev/null || true
}
trap cleanup EXIT
as_user() { chroot --userspec=10001:10001 "$root" /usr/bin/env LD_LIBRARY_PATH=/opt/swift-runtime "$@"; }

echo "validate: $(as_user sh -c 'cd /srv/datenwerk && /usr/local/bin/datenwerk validate Pipelines 2>&1 | tail -n 1')"

DATENWERK_PG_ROOT="$work/pg" DATENWERK_PG_PORT=$pgport "$repo/.build/debug/datenwerk" db start >/dev/null
pg_started=true
psql -q -h "$work/pg/socket" -p $pgport -U datenwerk postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'datenwerk'" | grep -q 1 ||
  psql -q -h "$work/pg/socket" -p $pgport -U datenwerk postgres -c 'CREATE DATABASE datenwerk'
url="postgres://datenwerk:$(cat "$work/pg/password")@127.0.0.1:$pgport/datenwerk"
# chroot, env and sh each exec the next, so $! is the server's own process id.
chroot --userspec=10001:10001 "$root" /usr/bin/env LD_LIBRARY_PATH=/opt/swift-runtime DATABASE_URL="$url" \
  sh -c "cd /srv/datenwerk && exec /usr/local/bin/datenwerk serve --host 127.0.0.1 --port $port --workers 0 --no-scheduler" > "$work/serve.log" 2>&1 &
serve_pid=$!
check=$(instruction HEALTHCHECK | sed "s|/8080|/$port|")
healthy=false
for _ in $(seq 1 60); do
  if as_user bash -c "$check" 2>/dev/null; then healthy=true; break; fi
  sleep 1
done
echo "health: $(curl -s "http://127.0.0.1:$port/health")"
$healthy || { echo "error: the image's HEALTHCHECK never passed; see $work/serve.log" >&2; exit 1; }
echo "ok: the runtime stage runs serve as 10001 and its HEALTHCHECK passes"
