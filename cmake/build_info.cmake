# Run at every build (cmake -P, from the jebm_build_info target): writes OUT, the C++ source of jebm::build_info()
# (experiments/version.hpp), with the git commit of SOURCE_DIR at build time ("unknown" outside git, "-dirty" with
# uncommitted changes to tracked files). configure_file rewrites OUT only when its text changes, so an unchanged
# commit recompiles nothing, and a new HEAD is picked up without re-running CMake.
set(JEBM_GIT_COMMIT "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE commit RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(rc EQUAL 0 AND NOT commit STREQUAL "")
    set(JEBM_GIT_COMMIT "${commit}")
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} diff-index --quiet HEAD --
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty EQUAL 0)
      string(APPEND JEBM_GIT_COMMIT "-dirty")
    endif()
  endif()
endif()
file(WRITE ${OUT}.in [=[
// Generated at build time by cmake/build_info.cmake: do not edit.
#include "experiments/version.hpp"

namespace jebm {

BuildInfo build_info() {
  return BuildInfo{"@VERSION@", "@JEBM_GIT_COMMIT@", "@BUILD_TYPE@", "@BACKENDS@"};
}

}  // namespace jebm
]=])
configure_file(${OUT}.in ${OUT} @ONLY)
