# Installs the build BUILD into a fresh PREFIX (and empties WORK, the consumers' build space): the fixture of
# tests/install/CMakeLists.txt.
file(REMOVE_RECURSE ${PREFIX} ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD} --prefix ${PREFIX} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD} --prefix ${PREFIX} failed (${rc})")
endif()
foreach(f lib/cmake/jebm/jebmConfig.cmake lib/cmake/jebm/jebmConfigVersion.cmake include/jebm/samplers/trainer.hpp)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "cmake --install did not write ${PREFIX}/${f}")
  endif()
endforeach()
# The command line's internals and the kernel side stay out of the package.
foreach(f include/jebm/experiments include/jebm/runtime/backend.hpp include/jebm/samplers/backend.hpp
          include/jebm/runtime/cpu include/jebm/samplers/kernels.inc)
  if(EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "${PREFIX}/${f} is internal but was installed")
  endif()
endforeach()
