# The installable library: `cmake --install <build> --prefix P` puts the public headers under P/include/jebm (so
# that they include each other as in the source tree: "runtime/tensor.hpp"), the static libraries of runtime,
# comm, autograd, models and samplers under P/lib, and the CMake package jebm (jebmConfig.cmake,
# jebmConfigVersion.cmake, the exported targets) under P/lib/cmake/jebm. A user's project needs only
#   find_package(jebm CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE jebm::jebm)
# Tested by tests/install (install into a temporary prefix, every installed header compiled alone, and
# examples/toy2d built and run from outside).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(JEBM_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/jebm)
set(JEBM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/jebm)

# jebm::jebm: everything a user links; the executable already owns the target name `jebm`.
add_library(jebm_all INTERFACE)
target_link_libraries(jebm_all INTERFACE jebm_samplers)
set_target_properties(jebm_all PROPERTIES EXPORT_NAME jebm)
add_library(jebm::jebm ALIAS jebm_all)

install(TARGETS jebm_flags jebm_runtime jebm_comm jebm_autograd jebm_models jebm_samplers jebm_all
        EXPORT jebmTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT jebmTargets NAMESPACE jebm:: DESTINATION ${JEBM_INSTALL_CMAKEDIR})

# The public headers: every header of these rooms except the kernel side listed below (dispatch tables, the
# CPU/CUDA twins' shared code, the communicators' backends), which is internal and may change. experiments/ (the
# command line) is not installed.
file(GLOB JEBM_PUBLIC_HEADERS RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} CONFIGURE_DEPENDS
     runtime/*.hpp runtime/comm/*.hpp autograd/*.hpp models/*.hpp samplers/*.hpp)
set(JEBM_INTERNAL_HEADERS runtime/backend.hpp runtime/broadcast.hpp runtime/unary_math.hpp
    runtime/comm/backends.hpp runtime/comm/watchdog.hpp models/backend.hpp samplers/backend.hpp)
list(REMOVE_ITEM JEBM_PUBLIC_HEADERS ${JEBM_INTERNAL_HEADERS})
foreach(header ${JEBM_PUBLIC_HEADERS})
  get_filename_component(dir ${header} DIRECTORY)
  install(FILES ${header} DESTINATION ${JEBM_INSTALL_INCLUDEDIR}/${dir})
endforeach()

# The package records what this build was made with, so that it asks for the same dependencies.
set(JEBM_PACKAGE_BLA_VENDOR "${BLA_VENDOR}")
set(JEBM_PACKAGE_CUDNN_LIB "")
set(JEBM_PACKAGE_NCCL_LIB "")
if(JEBM_WITH_CUDA)
  set(JEBM_PACKAGE_CUDNN_LIB "${JEBM_CUDNN_LIB}")
endif()
if(JEBM_WITH_NCCL)
  set(JEBM_PACKAGE_NCCL_LIB "${JEBM_NCCL_LIB}")
endif()
configure_package_config_file(cmake/jebmConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/jebmConfig.cmake
                              INSTALL_DESTINATION ${JEBM_INSTALL_CMAKEDIR} PATH_VARS JEBM_INSTALL_INCLUDEDIR)
# 0.x: a minor version may change the API (docs/extending.md says what is stable).
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/jebmConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/jebmConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/jebmConfigVersion.cmake
        DESTINATION ${JEBM_INSTALL_CMAKEDIR})
