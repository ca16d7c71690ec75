# Docs that cannot rot silently (CTest: docs_links). Fails when README.md or docs/*.md links to a relative path
# that does not exist, names a repository path in backticks (`samplers/trainer.hpp`) that does not exist, or when
# a source file, help text, preset, script or doc cites a design document outside the repository by section
# number or points at a docs/ page that does not exist. Run: cmake -DSOURCE_DIR=<repo> -P tests/check_docs.cmake
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_docs.cmake: pass -DSOURCE_DIR=<repository root>")
endif()
set(problems "")

# --- links and repository paths in the docs ----------------------------------------------------------------------
file(GLOB doc_files "${SOURCE_DIR}/docs/*.md")
list(PREPEND doc_files "${SOURCE_DIR}/README.md")
set(top_dirs "runtime|autograd|models|samplers|experiments|tests|scripts|docs|examples|cmake|\\.ci")
set(checked 0)
foreach(doc IN LISTS doc_files)
  file(READ "${doc}" text)
  # Square brackets and semicolons would upset CMake's list splitting: neutralise them first.
  string(REPLACE "[" "<" text "${text}")
  string(REPLACE "]" ">" text "${text}")
  string(REPLACE ";" "," text "${text}")
  file(RELATIVE_PATH doc_name "${SOURCE_DIR}" "${doc}")
  get_filename_component(doc_dir "${doc}" DIRECTORY)
  # Markdown links and images: ](target), relative to the doc. Web and mail links and in-page anchors are skipped.
  string(REGEX MATCHALL ">\\([^) ]+\\)" links "${text}")
  list(FILTER links EXCLUDE REGEX "^>\\(([a-z]+:|#)")
  list(TRANSFORM links REPLACE "^>\\(([^)#]*).*$" "${doc_dir}/\\1")
  # Repository paths in backticks, relative to the repository root (no wildcards or placeholders).
  string(REGEX MATCHALL "`(${top_dirs})/[A-Za-z0-9_./-]*`" paths "${text}")
  list(TRANSFORM paths REPLACE "^`(.*)`$" "${SOURCE_DIR}/\\1")
  foreach(path IN LISTS links paths)
    math(EXPR checked "${checked} + 1")
    if(NOT EXISTS "${path}")
      file(RELATIVE_PATH shown "${SOURCE_DIR}" "${path}")
      list(APPEND problems "${doc_name} names '${shown}': no such file or folder")
    endif()
  endforeach()
endforeach()
if(checked LESS 20)
  list(APPEND problems "only ${checked} links and paths found in README.md and docs/*.md: the patterns are broken")
endif()

# --- citations of a design document that is not in the repository ------------------------------------------------
# The pattern is split so that this file does not match itself.
set(design_word "DESIG")
string(APPEND design_word "N")
file(GLOB_RECURSE cited_files
  "${SOURCE_DIR}/runtime/*" "${SOURCE_DIR}/autograd/*" "${SOURCE_DIR}/models/*" "${SOURCE_DIR}/samplers/*"
  "${SOURCE_DIR}/experiments/*" "${SOURCE_DIR}/tests/*" "${SOURCE_DIR}/scripts/*" "${SOURCE_DIR}/examples/*"
  "${SOURCE_DIR}/docs/*.md" "${SOURCE_DIR}/.ci/*")
list(APPEND cited_files "${SOURCE_DIR}/README.md" "${SOURCE_DIR}/CMakeLists.txt" "${SOURCE_DIR}/CMakePresets.json")
foreach(f IN LISTS cited_files)
  if(NOT f MATCHES "\\.(cpp|hpp|cu|cuh|inc|h|c|py|sh|cmake|ini|md|txt|json)$" AND NOT f MATCHES "/\\.ci/")
    continue()
  endif()
  file(RELATIVE_PATH name "${SOURCE_DIR}" "${f}")
  file(STRINGS "${f}" hits REGEX "${design_word}(\\.md)? ?[0-9]")
  if(hits)
    list(GET hits 0 first)
    list(APPEND problems "${name}: cites a design document outside the repository: ${first}")
  endif()
  # A source or script that points at a page of docs/ names one that exists.
  file(STRINGS "${f}" doc_refs REGEX "docs/[A-Za-z0-9_-]+\\.md")
  string(REGEX MATCHALL "docs/[A-Za-z0-9_-]+\\.md" doc_refs "${doc_refs}")
  list(REMOVE_DUPLICATES doc_refs)
  foreach(ref IN LISTS doc_refs)
    if(NOT EXISTS "${SOURCE_DIR}/${ref}")
      list(APPEND problems "${name} points at ${ref}: no such file")
    endif()
  endforeach()
endforeach()

if(problems)
  list(LENGTH problems n)
  string(REPLACE ";" "\n  " shown "${problems}")
  message(FATAL_ERROR "docs check: ${n} problem(s):\n  ${shown}")
endif()
message(STATUS "docs check: ${checked} links and paths exist; no citation of an outside design document")
