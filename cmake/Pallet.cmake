# SPDX-License-Identifier: Apache-2.0
# Helpers shared by every directory.

# pallet_missing(WHAT FIX)
# A part that cannot be built for want of a tool or library.  An error by
# default: a quietly skipped part takes its tests out of `make check`, and
# the run still looks green.  PALLET_ALLOW_MISSING=ON (package builds, a
# developer's partial build) turns it into a warning.
option(PALLET_ALLOW_MISSING "Skip, with a warning, the parts whose tools or libraries are missing" OFF)
function(pallet_missing what fix)
  if(PALLET_ALLOW_MISSING)
    message(WARNING "${what}: not built (${fix})")
  else()
    message(FATAL_ERROR "${what} cannot be built: ${fix}; "
                        "or configure with -DPALLET_ALLOW_MISSING=ON to build without it")
  endif()
endfunction()

find_program(PALLET_VALGRIND_EXE valgrind)
find_program(PALLET_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)

# pallet_add_unit_test(NAME n SOURCES s... [LIBS l...] [INCLUDES i...]
#                      [LABELS l...] [ARGS a...] [NO_VALGRIND])
# A CUnit test executable.  Unless NO_VALGRIND, it is registered a second
# time as n-valgrind, run under memcheck with --error-exitcode.
function(pallet_add_unit_test)
  cmake_parse_arguments(T "NO_VALGRIND" "NAME" "SOURCES;LIBS;INCLUDES;LABELS;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CUNIT)
  target_include_directories(${T_NAME} PRIVATE ${T_INCLUDES})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "unit;${T_LABELS}")
  if(PALLET_VALGRIND AND PALLET_VALGRIND_EXE AND NOT T_NO_VALGRIND)
    add_test(NAME ${T_NAME}-valgrind
             COMMAND ${PALLET_VALGRIND_EXE} --error-exitcode=99 --leak-check=full
                     --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
                     --track-fds=no --quiet $<TARGET_FILE:${T_NAME}> ${T_ARGS})
    set_tests_properties(${T_NAME}-valgrind PROPERTIES LABELS "valgrind;${T_LABELS}")
  endif()
endfunction()

# pallet_add_provider(NAME n SOURCES s... [LIBS l...] [INCLUDES i...])
# Builds pallet-provider-n.so exporting only pallet_provider_entry, and adds
# a test that checks the export list with nm -D.
function(pallet_add_provider)
  cmake_parse_arguments(P "" "NAME" "SOURCES;LIBS;INCLUDES" ${ARGN})
  set(target pallet-provider-${P_NAME})
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/providers)
  target_link_libraries(${target} PRIVATE pallet::abi ${P_LIBS})
  target_include_directories(${target} PRIVATE ${P_INCLUDES})
  target_link_options(${target} PRIVATE
    -Wl,--version-script=${PROJECT_SOURCE_DIR}/abi/pallet-provider.map
    -Wl,--no-undefined)
  add_test(NAME ${target}-exports-one-symbol
           COMMAND ${PROJECT_SOURCE_DIR}/abi/check-exports.sh $<TARGET_FILE:${target}>)
  set_tests_properties(${target}-exports-one-symbol PROPERTIES LABELS "abi")
  # Relative, so --prefix at install time (and DESTDIR) is honoured; the
  # compiled-in lookup dir stays the full PALLET_PROVIDER_DIR.
  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/pallet/providers)
endfunction()
