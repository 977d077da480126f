# SPDX-License-Identifier: Apache-2.0
# ctest go-fmt: gofmt -l DIR lists no file (cmake -DGOFMT=... -DDIR=... -P).
execute_process(COMMAND "${GOFMT}" -l "${DIR}" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT out STREQUAL "")
  message(FATAL_ERROR "gofmt -l ${DIR} (run gofmt -w on these):\n${out}")
endif()
