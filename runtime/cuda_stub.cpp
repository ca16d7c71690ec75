// cuda_api for builds without the CUDA backend: nothing is available, and asking for it says so.
#ifndef JEBM_WITH_CUDA
#include "runtime/check.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/user_error.hpp"

namespace jebm::cuda_api {

bool built() { return false; }
int device_count() { return 0; }
bool available() { return false; }
std::string device_name(int) { return "none"; }
void synchronize() {}
void require(const char* what) {
  JEBM_USER_FAIL(what << ": CUDA was requested but this jebm was built without the CUDA backend "
                 "(configure with -DJEBM_CUDA=ON where the CUDA Toolkit and cuDNN are installed)");
}
void memcpy(void*, bool, const void*, bool, size_t) { require("cuda_api::memcpy"); }

}  // namespace jebm::cuda_api
#endif
