// Ctrl-C for the long runs (see experiments/sigint.hpp).
#include "experiments/sigint.hpp"

#include <csignal>
#include <cstdint>

namespace jebm {

namespace {
volatile std::sig_atomic_t g_sigint = 0;
extern "C" void on_sigint(int) { g_sigint = 1; }
}  // namespace

struct SigintGuard::Saved {
  struct sigaction old_action {};
};

SigintGuard::SigintGuard() : saved_(new Saved) {
  g_sigint = 0;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, &saved_->old_action);
}

SigintGuard::~SigintGuard() {
  sigaction(SIGINT, &saved_->old_action, nullptr);
  g_sigint = 0;
  delete saved_;
}

bool sigint_on_any_rank(Communicator& comm) {
  if (comm.size() == 1) return g_sigint != 0;
  return comm.allreduce_value(static_cast<int64_t>(g_sigint), CommReduce::Max) != 0;
}

}  // namespace jebm
