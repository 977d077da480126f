#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Checks that the C sources in git follow .clang-format (clang-format 14):
#   scripts/format-check.sh [PATH...]     (default: the whole tree)
# Prints clang-format's complaint for each file that differs and exits 1;
# `clang-format -i FILE` applies the style.  Exit 2 if clang-format is
# missing or a PATH is not in the tree.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
fmt=${CLANG_FORMAT:-}
if [ -z "$fmt" ]; then
  for c in clang-format-14 clang-format; do
    if command -v "$c" >/dev/null 2>&1; then fmt=$c; break; fi
  done
fi
if [ -z "$fmt" ]; then
  echo "format-check: clang-format not found; install clang-format (Debian: clang-format-14)" >&2
  exit 2
fi
for p in "$@"; do
  if [ ! -e "$p" ]; then
    echo "format-check: $p: no such file or directory in $top" >&2
    exit 2
  fi
done
files=$(git ls-files -- "$@" | grep -E '\.(c|h)$' || true)
if [ -z "$files" ]; then
  echo "format-check: no C files in git under ${*:-.}" >&2
  exit 2
fi
bad=0
n=0
for f in $files; do
  n=$((n + 1))
  if ! "$fmt" --style=file --dry-run -Werror "$f" 2>/tmp/format-check.$$; then
    bad=$((bad + 1))
    head -n 20 /tmp/format-check.$$
  fi
done
rm -f /tmp/format-check.$$
if [ "$bad" -gt 0 ]; then
  echo "format-check: $bad of $n C files differ from .clang-format; run: $fmt -i FILE" >&2
  exit 1
fi
echo "format-check: $n C files follow .clang-format"
