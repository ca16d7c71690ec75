// `jebm gmm` (gmm.hpp): the command. Parses the options (gmm_options.cpp), runs every algorithm (GmmRun), then
// rank 0 prints the summary (gmm_summary.hpp) and writes the plot (gmm_plot.hpp). Tested by tests/test_gmm.cpp.
#include "experiments/gmm.hpp"

#include <omp.h>

#include <iostream>

#include "experiments/cli.hpp"
#include "experiments/cli_options.hpp"
#include "experiments/gmm_plot.hpp"
#include "experiments/gmm_run.hpp"
#include "experiments/gmm_summary.hpp"
#include "runtime/comm/communicator.hpp"

namespace jebm {

int run_gmm(const std::vector<std::string>& args) {
  Communicator& comm = world();
  std::string argv_text = JEBM_VERSION;
  for (const auto& a : args) argv_text += "\n" + a;
  check_same_on_all_ranks(comm, "the command lines (or jebm versions)", argv_text);
  GmmCommandLine cl;
  bool go = true;
  agree_on_errors(comm, [&] { go = parse_gmm_args(args, cl); });  // the same command line: the same error
  if (!go) return 0;
  if (comm.rank() == 0)
    for (const auto& note : cl.notes) std::cerr << note << "\n";
  if (gmm_run_is_finished(cl)) {
    if (comm.rank() == 0)
      std::cout << "jebm gmm: " << cl.out << " has finished its " << cl.config.iterations
                << " iterations: nothing to do (a larger --iterations extends it)\n";
    return 0;
  }
  apply_threads(cl.threads);
  GmmRun run(cl, comm);
  if (const int rc = run.run(); rc != 0) return rc;
  if (comm.rank() != 0) return 0;  // every rank has the same records; rank 0 reports them
  print_gmm_summary(std::cout, run, comm.size());
  if (!cl.out.empty()) {
    write_gmm_plot(cl.out, run);
    print_gmm_wrote(std::cout, run);
  }
  return 0;
}

}  // namespace jebm
