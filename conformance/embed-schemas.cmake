# SPDX-License-Identifier: Apache-2.0
# cmake -DSCHEMA_DIR=... -DOUT=... -P embed-schemas.cmake
# Writes a C file holding every SCHEMA_DIR/*.schema.json as a string, so
# pallet-conformance works without finding its data files.
file(GLOB schemas "${SCHEMA_DIR}/*.schema.json")
list(SORT schemas)
set(c "/* Generated from docs/schemas by embed-schemas.cmake.  Do not edit. */\n")
string(APPEND c "#include <stddef.h>\n")
string(APPEND c "struct pc_embedded_schema { const char *name; const char *text; };\n")
string(APPEND c "extern const struct pc_embedded_schema pc_embedded_schemas[];\n")
string(APPEND c "const struct pc_embedded_schema pc_embedded_schemas[] = {\n")
foreach(f IN LISTS schemas)
  get_filename_component(base "${f}" NAME)
  string(REPLACE ".schema.json" "" name "${base}")
  file(READ "${f}" text)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "\"" "\\\"" text "${text}")
  string(REPLACE "\n" "\\n\"\n  \"" text "${text}")
  string(APPEND c "  { \"${name}\",\n  \"${text}\" },\n")
endforeach()
string(APPEND c "  { NULL, NULL }\n};\n")
file(WRITE "${OUT}.tmp" "${c}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
