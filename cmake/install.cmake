# Install rules and the CMake / pkg-config packages:
#   bin/paro, include/paro_runtime.h and paro_stats.h, lib/libparo_runtime.so.<major> and
#   libparo_stats.so.<major>, share/paro/schemas/*.json, lib/cmake/paro/ (find_package(paro) ->
#   paro::runtime, paro::stats), lib/pkgconfig/paro-runtime.pc and paro-stats.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(PARO_INSTALL_SCHEMADIR ${CMAKE_INSTALL_DATADIR}/paro/schemas)
set(PARO_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/paro)

install(TARGETS paro_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The Python package, where `paro export` looks first (share/paro/python next to bin/).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/paro DESTINATION ${CMAKE_INSTALL_DATADIR}/paro/python
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/schemas/paro-dump-v1.json ${PROJECT_SOURCE_DIR}/schemas/paro-pattern-v1.json
              ${PROJECT_SOURCE_DIR}/schemas/paro-pattern-v2.json ${PROJECT_SOURCE_DIR}/schemas/inspect-pattern.schema.json
              ${PROJECT_SOURCE_DIR}/schemas/README.md
        DESTINATION ${PARO_INSTALL_SCHEMADIR})

if(TARGET paro_runtime)
  install(TARGETS paro_runtime paro_stats EXPORT paroTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT paroTargets NAMESPACE paro:: DESTINATION ${PARO_INSTALL_CMAKEDIR})
  # Relocatable: the prefix is found from the .pc file's own place (pkg-config's pcfiledir).
  file(RELATIVE_PATH PARO_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
  foreach(pc paro-runtime paro-stats)
    configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  endforeach()
else()
  # Without CUDA there is no runtime to install; the header still documents the API.
  install(FILES ${PROJECT_SOURCE_DIR}/kernels/runtime/paro_runtime.h ${PROJECT_SOURCE_DIR}/kernels/stats/paro_stats.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/paroConfig.cmake.in ${PROJECT_BINARY_DIR}/paroConfig.cmake
  INSTALL_DESTINATION ${PARO_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR PARO_INSTALL_SCHEMADIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/paroConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/paroConfig.cmake ${PROJECT_BINARY_DIR}/paroConfigVersion.cmake
        DESTINATION ${PARO_INSTALL_CMAKEDIR})
