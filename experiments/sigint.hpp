// Ctrl-C for the long runs (jebm gmm, mnist, cifar10): the handler only sets a flag; the loops look at it between
// updates, save a checkpoint and stop with exit code 130, so a run can be resumed where it was stopped. A second
// Ctrl-C kills at once. Tested by tests/test_image_ebm.cpp and tests/test_gmm.cpp (through --interrupt-at).
#pragma once

#include "runtime/comm/communicator.hpp"

namespace jebm {

// Installs the handler for its lifetime (SA_RESETHAND: the second Ctrl-C is the default action) and clears the flag.
class SigintGuard {
 public:
  SigintGuard();
  ~SigintGuard();
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct Saved;
  Saved* saved_;
};

// Ctrl-C has been received since the guard was installed, by any rank of comm: one allreduce when there are
// several, so that every rank stops at the same update and none waits in a collective for one that stopped.
bool sigint_on_any_rank(Communicator& comm);

}  // namespace jebm
