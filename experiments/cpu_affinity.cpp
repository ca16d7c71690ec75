// CPU affinity around jebm's self-restart (experiments/cpu_affinity.hpp).
#include "experiments/cpu_affinity.hpp"

#include <omp.h>
#include <sched.h>

#include <vector>

namespace jebm {

namespace {

// With OpenMP binding on: the CPUs of all of libgomp's places (from the mask the process started with; the initial
// thread itself is bound to the first place). False when binding is off or there are no places.
bool places_union(cpu_set_t& set) {
  CPU_ZERO(&set);
  if (omp_get_proc_bind() == omp_proc_bind_false) return false;
  bool any = false;
  for (int p = 0; p < omp_get_num_places(); ++p) {
    std::vector<int> ids(static_cast<size_t>(omp_get_place_num_procs(p)));
    omp_get_place_proc_ids(p, ids.data());
    for (int id : ids) {
      if (id < 0 || id >= CPU_SETSIZE) continue;
      CPU_SET(id, &set);
      any = true;
    }
  }
  return any;
}

}  // namespace

int usable_cpus() {
  cpu_set_t set;
  if (places_union(set)) return CPU_COUNT(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}

void unbind_before_restart() {
  cpu_set_t set;
  // On failure the restarted process keeps the narrower mask: slower, still correct.
  if (places_union(set)) sched_setaffinity(0, sizeof set, &set);
}

}  // namespace jebm
