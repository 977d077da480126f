#!/bin/sh
# Placeholder until the demo lands: fails loudly rather than pretending.
echo "demo: not yet implemented" >&2
exit 1
