#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Gives every source file in git an SPDX-License-Identifier line:
#   scripts/spdx.sh [--check] [PATH...]   (default: the whole tree)
# Source files: C and headers, CMake, shell, Python and Go (by name, or by
# a #! line).  abi/ is BSD-3-Clause (abi/LICENSE), the rest Apache-2.0
# (LICENSE).  A file that already has an SPDX line keeps it (material
# taken from other projects keeps its own licence); one carrying another
# project's copyright or licence notice but no SPDX line is never edited:
# it is listed, to be given its own licence's line by hand.
# --check changes nothing: it lists the files without an SPDX line and
# exits 1 if there are any.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
for p in "$@"; do
  if [ ! -e "$p" ]; then
    echo "spdx: $p: no such file or directory in $top" >&2
    exit 2
  fi
done

# The comment style of a source file, or nothing for a file that is not one.
kind() {
  case $1 in
    *.c|*.h|*.go) echo c; return ;;
    *.cmake|*.cmake.in|*/CMakeLists.txt|CMakeLists.txt|*.sh|*.py) echo hash; return ;;
  esac
  if head -c 2 "$1" 2>/dev/null | grep -q '^#!'; then
    if head -n 1 "$1" | grep -Eq '(sh|bash|python3?)( |$)'; then echo hash; fi
  fi
  return 0
}

missing=0
foreign=0
git ls-files -z -- "$@" | tr '\0' '\n' > /tmp/spdx.$$
while IFS= read -r f; do
  [ -f "$f" ] || continue
  k=$(kind "$f")
  [ -n "$k" ] || continue
  if head -n 12 "$f" | grep -q 'SPDX-License-Identifier:'; then
    continue
  fi
  if head -n 30 "$f" | grep -Eiq 'copyright|licensed under|permission is hereby granted'; then
    echo "spdx: $f: another project's notice but no SPDX line: add its licence's SPDX line by hand" >&2
    foreign=$((foreign + 1))
    continue
  fi
  missing=$((missing + 1))
  if [ "$check" = 1 ]; then
    echo "spdx: $f: no SPDX-License-Identifier line"
    continue
  fi
  case $f in
    abi/*) lic=BSD-3-Clause ;;
    *) lic=Apache-2.0 ;;
  esac
  case $f in
    *.go) line="// SPDX-License-Identifier: $lic" ;;
    *) if [ "$k" = c ]; then line="/* SPDX-License-Identifier: $lic */"; else line="# SPDX-License-Identifier: $lic"; fi ;;
  esac
  tmp="$f.spdx.$$"
  # After a #! line (and a Python coding line), else first.
  awk -v line="$line" '
    NR == 1 && /^#!/ { print; hold = 1; next }
    hold && NR == 2 && /^#.*coding[:=]/ { print; next }
    !done { print line; done = 1 }
    { print }
    END { if (!done) print line }
  ' "$f" > "$tmp"
  chmod --reference="$f" "$tmp"
  mv "$tmp" "$f"
  echo "spdx: $f: $lic"
done < /tmp/spdx.$$
rm -f /tmp/spdx.$$
if [ "$check" = 1 ]; then
  if [ $((missing + foreign)) -gt 0 ]; then
    echo "spdx: $((missing + foreign)) source files have no SPDX-License-Identifier line; run scripts/spdx.sh" >&2
    exit 1
  fi
  echo "spdx: every source file under ${*:-.} has an SPDX-License-Identifier line"
  exit 0
fi
[ "$foreign" -eq 0 ] || exit 1
