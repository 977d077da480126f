# SPDX-License-Identifier: Apache-2.0
# cmake -DIN=forklift-schema.json -DOUT=schema-text.c -P embed-schema.cmake
# Builds the compact Forklift schema into the library as one string, so
# pallet_plan needs no data files at run time.
file(READ "${IN}" text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "" text "${text}")
# Lines of at most 200 characters, cut after a comma.
string(REGEX REPLACE "([^\n]{150}[^,\n]*,)" "\\1\"\n  \"" text "${text}")
file(WRITE "${OUT}.tmp"
     "/* Generated from schema/forklift-schema.json by embed-schema.cmake.  Do not edit. */\n"
     "extern const char Pallet_plan_schema_text[];\n"
     "const char Pallet_plan_schema_text[] =\n  \"${text}\";\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
