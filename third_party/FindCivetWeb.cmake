# FindCivetWeb: locate Debian's libcivetweb-dev (1.15) without its CMake package config.
#
# Debian's civetweb-config.cmake also exports the `civetweb` executable, which lives in a separate
# package, so find_package(civetweb CONFIG) fails with only libcivetweb-dev installed. This module
# finds the header and library directly and checks the version we were written against.
#
# Defines the imported target CivetWeb::civetweb.
find_path(CIVETWEB_INCLUDE_DIR civetweb.h)
find_library(CIVETWEB_LIBRARY NAMES civetweb)

if(CIVETWEB_INCLUDE_DIR AND EXISTS "${CIVETWEB_INCLUDE_DIR}/civetweb.h")
  file(STRINGS "${CIVETWEB_INCLUDE_DIR}/civetweb.h" _cw_version_line
       REGEX "^#define CIVETWEB_VERSION \"[0-9.]+\"")
  string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" CivetWeb_VERSION "${_cw_version_line}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CivetWeb
  REQUIRED_VARS CIVETWEB_LIBRARY CIVETWEB_INCLUDE_DIR
  VERSION_VAR CivetWeb_VERSION)

if(CivetWeb_FOUND AND NOT TARGET CivetWeb::civetweb)
  add_library(CivetWeb::civetweb UNKNOWN IMPORTED)
  set_target_properties(CivetWeb::civetweb PROPERTIES
    IMPORTED_LOCATION "${CIVETWEB_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CIVETWEB_INCLUDE_DIR}")
endif()
mark_as_advanced(CIVETWEB_INCLUDE_DIR CIVETWEB_LIBRARY)
