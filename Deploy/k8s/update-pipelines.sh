#!/bin/sh
# Rewrites the configMapGenerator file list in kustomization.yaml from the repository's Pipelines/ folder:
# one key per file, its path below Pipelines/ with "/" written "__" (ConfigMap keys cannot hold "/"); the
# init containers turn the keys back into the folder tree. Run after adding or removing a pipeline.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
file="$here/kustomization.yaml"
list=$(cd "$here/../../Pipelines" && find . -type f \( -name '*.yaml' -o -name '*.yml' \) | sed 's|^\./||' | LC_ALL=C sort |
  while read -r path; do printf '      - %s=../../Pipelines/%s\n' "$(printf '%s' "$path" | sed 's|/|__|g')" "$path"; done)
awk -v list="$list" '
  /# BEGIN pipelines/ { print; print list; skip = 1; next }
  /# END pipelines/   { skip = 0 }
  !skip { print }
' "$file" > "$file.new"
mv "$file.new" "$file"
