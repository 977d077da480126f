#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Copies the source tree into DIR for a package build:
#   export-source.sh TOPDIR DIR
# PALLET_PKG_SOURCE=head (default) takes the committed HEAD (git archive):
# a consistent tree even while the working tree is mid-change;
# PALLET_PKG_SOURCE=worktree takes the tracked files as they are in the
# working tree (uncommitted edits included, untracked files not).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 TOPDIR DIR" >&2; exit 2; }
top=$1 dir=$2
mkdir -p "$dir"
case ${PALLET_PKG_SOURCE:-head} in
  head)
    git -C "$top" archive --format=tar HEAD | tar -x -C "$dir" ;;
  worktree)
    (cd "$top" && git ls-files -z --cached | xargs -0 sh -c \
       'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done; exit 0' sh |
     tar -c --null -T - -f -) | tar -x -C "$dir" ;;
  *)
    echo "export-source: PALLET_PKG_SOURCE=${PALLET_PKG_SOURCE} is neither head nor worktree" >&2
    exit 2 ;;
esac
