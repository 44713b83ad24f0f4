# FindHiredis: locate Debian's libhiredis-dev (0.14) for the cluster engine (app/cluster/cluster.c).
#
# Debian's hiredis 0.14 ships a pkg-config file but no CMake package config, so this module finds the
# header and the library directly (include <hiredis/async.h>, as the adapter does) and reads the
# version from hiredis.h. The async API used (redisAsyncContext->ev hooks, redisAsyncCommandArgv) is
# the same in 0.14 and 1.x.
#
# Defines the imported target Hiredis::hiredis.
find_path(HIREDIS_INCLUDE_DIR hiredis/async.h)
find_library(HIREDIS_LIBRARY NAMES hiredis)

if(HIREDIS_INCLUDE_DIR AND EXISTS "${HIREDIS_INCLUDE_DIR}/hiredis/hiredis.h")
  file(STRINGS "${HIREDIS_INCLUDE_DIR}/hiredis/hiredis.h" _hr_lines REGEX "^#define HIREDIS_(MAJOR|MINOR|PATCH) [0-9]+")
  string(REGEX REPLACE ".*HIREDIS_MAJOR ([0-9]+).*" "\\1" _hr_major "${_hr_lines}")
  string(REGEX REPLACE ".*HIREDIS_MINOR ([0-9]+).*" "\\1" _hr_minor "${_hr_lines}")
  string(REGEX REPLACE ".*HIREDIS_PATCH ([0-9]+).*" "\\1" _hr_patch "${_hr_lines}")
  set(Hiredis_VERSION "${_hr_major}.${_hr_minor}.${_hr_patch}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Hiredis
  REQUIRED_VARS HIREDIS_LIBRARY HIREDIS_INCLUDE_DIR
  VERSION_VAR Hiredis_VERSION)

if(Hiredis_FOUND AND NOT TARGET Hiredis::hiredis)
  add_library(Hiredis::hiredis UNKNOWN IMPORTED)
  set_target_properties(Hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION "${HIREDIS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIR}")
endif()
mark_as_advanced(HIREDIS_INCLUDE_DIR HIREDIS_LIBRARY)
