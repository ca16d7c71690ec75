// The common tail of `jebm mnist` and `jebm cifar10` (see image_ebm.hpp): the run directory and its
// options.txt, run_image_ebm, and the summary with its timing line. Tested by tests/test_image_ebm.cpp.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "experiments/image_ebm.hpp"
#include "experiments/image_ebm_plot.hpp"
#include "experiments/image_ebm_summary.hpp"
#include "experiments/output.hpp"
#include "experiments/summary_text.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/file_io.hpp"

namespace jebm {

std::string image_ebm_timing(const ImageEbmConfig& c, const ImageEbmResult& r) {
  auto g4 = [](double v) {  // 4 significant digits
    std::ostringstream o;
    o << std::setprecision(4) << v;
    return o.str();
  };
  std::ostringstream os;
  os << "  timing (" << c.device.str() << (r.collectives.empty() ? "" : ", " + r.collectives) << "):";
  if (r.burn_in_steps_run > 0)
    os << " burn-in " << r.burn_in_steps_run << " steps in " << g4(r.burn_in_s) << " s ("
       << g4(1e3 * r.burn_in_s / static_cast<double>(r.burn_in_steps_run)) << " ms/step);";
  if (r.updates_run == 0) return os.str() + " no updates in this run\n";
  // Steady state: without the first update (allocator growth, cuDNN algorithm choice).
  const int64_t rest = r.updates_run - 1;
  const double per_update = rest > 0 ? (r.train_s - r.first_update_s) / static_cast<double>(rest) : r.train_s;
  os << " " << r.updates_run << " updates in " << g4(r.train_s) << " s, " << g4(1e3 * per_update) << " ms/update"
     << (rest > 0 ? " (first " + g4(1e3 * r.first_update_s) + " ms)" : "") << "; " << r.updates_per_epoch
     << " updates/epoch -> " << g4(per_update * static_cast<double>(r.updates_per_epoch)) << " s/epoch";
  if (r.last_epoch_s > 0) os << " (last whole epoch, with grids and checkpoints: " << g4(r.last_epoch_s) << " s)";
  os << "; " << c.epochs << " epochs at this rate: "
     << g4(per_update * static_cast<double>(r.updates_per_epoch * c.epochs) / 3600.0) << " h\n";
  return os.str();
}

int run_image_ebm_command(const ImageEbmConfig& c, const ImageEbmProblem& p,
                          const std::vector<std::pair<std::string, std::string>>& saved_options) {
  // Under mpirun -np K: every rank runs the same loop on the same (replicated) walkers and data and
  // shares out the evaluation blocks (--shard-block); rank 0 alone writes the run directory and prints.
  Communicator& comm = world();
  const bool root = comm.rank() == 0;
  std::string options_text = JEBM_VERSION;
  for (const auto& [k, v] : saved_options)
    if (k != "threads" && k != "eval-chunk") options_text += "\n" + k + " = " + v;
  check_same_on_all_ranks(comm, "the run options (or jebm versions)", options_text);
  if (comm.size() > 1 && c.shard_block == 0)
    throw SharedError("started on " + std::to_string(comm.size()) + " MPI ranks: give --shard-block (rows per "
                      "evaluation block, e.g. 64; the results depend on it, not on the number of ranks)");
  const int64_t walker_blocks = c.shard_block > 0 ? ceil_div(c.walkers, c.shard_block) : 1;  // no overflow
  if (comm.size() > walker_blocks)
    throw SharedError("started on " + std::to_string(comm.size()) + " MPI ranks, but --walkers " +
                      std::to_string(c.walkers) + " make only " + std::to_string(walker_blocks) + " block(s) of " +
                      "--shard-block " + std::to_string(c.shard_block) + ": some ranks would never work; use fewer "
                      "ranks or a smaller --shard-block");
  const auto started = std::filesystem::file_time_type::clock::now();  // the files after it are this run's
  const std::string options_path = (std::filesystem::path(c.out) / "options.txt").string();
  std::string old_options;
  RunDirLock run_lock;  // rank 0 holds the directory until the run ends
  run_on_rank0(comm, [&] {
    run_lock = prepare_run_dir(c.out, c.force, c.resume);
    // A resume that fails (e.g. the checkpoint refuses a changed --holdout-walkers) must leave the run's
    // options.txt as it was: it is the defaults of the next --resume.
    if (c.resume && std::filesystem::is_regular_file(options_path)) old_options = read_file(options_path);
    write_options(c.out, saved_options, c.resume);
  });
  ImageEbmResult r;
  try {
    r = run_image_ebm(c, p);
  } catch (const Error&) {
    if (root && !old_options.empty()) write_file_atomic(options_path, old_options);
    throw;
  }
  if (!root) return r.diverged || r.interrupted ? r.exit_code() : 0;
  if (c.box_revert && c.algo == Algorithm::Jarzynski)
    std::cerr << "jebm " << c.command << ": warning: --box alters the moves after the fact; the Jarzynski weights "
                 "no longer follow the weight formula\n";
  if (r.diverged || r.interrupted) {
    std::cerr << "jebm " << c.command << ": " << r.message << "\n";
    return r.exit_code();
  }
  if (r.nothing_to_do) {
    std::cout << "jebm " << c.command << ": " << r.message << "\n";
    return 0;
  }
  write_metrics_plot(c.out, algorithm_name(c.algo));
  std::cout << image_ebm_summary(c, p, r, files_written_since(c.out, started));
  return 0;
}

}  // namespace jebm
