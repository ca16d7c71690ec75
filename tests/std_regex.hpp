// <regex> for the tests that parse help texts and messages. GCC 12 reports a false -Wmaybe-uninitialized inside
// libstdc++'s regex automaton (std::function in _StateT) in the ASan build, which -Werror turns into a failure;
// the warning is silenced for the library header only, never for the tests' own code.
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
