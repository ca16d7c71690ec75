// Tests for models/optim: Adam and SGD against their update formulas written out here in plain double arithmetic,
// Adam minimising a quadratic, betas (0, 0.999) as in the image runs, clip_grad_norm, the lr schedules, and the
// state_tensors()/load_state() round trip continuing exactly.
#include <cmath>
#include <vector>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
#include "models/optim.hpp"
#include "tests/helpers.hpp"

using namespace jebm;

namespace {

ag::Var param(const std::vector<double>& v) {
  return ag::Var(Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, DType::Float64), true);
}

// loss = 0.5 * sum(a * p^2)  =>  grad = a * p, so the gradient changes from step to step.
void quadratic_backward(const ag::Var& p, const std::vector<double>& a) {
  const ag::Var av(Tensor::from_vector(a, {static_cast<int64_t>(a.size())}, p.dtype()));
  ag::backward(ag::mul_scalar(ag::sum_all(ag::mul(av, ag::square(p))), 0.5));
}

// Reference Adam (PyTorch's algorithm) on the same quadratic.
std::vector<double> adam_reference(std::vector<double> p, const std::vector<double>& a, int steps, double lr,
                                   double b1, double b2, double eps, double wd) {
  std::vector<double> m(p.size(), 0.0), v(p.size(), 0.0);
  for (int t = 1; t <= steps; ++t) {
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = a[i] * p[i] + wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double mhat = m[i] / (1 - std::pow(b1, t));
      const double vhat = v[i] / (1 - std::pow(b2, t));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(adam_matches_formula) {
  const std::vector<double> p0 = {1.0, -2.0, 0.5, 3.0}, a = {1.0, 0.5, 4.0, 0.1};
  for (const auto& [b1, wd] : std::vector<std::pair<double, double>>{{0.9, 0.0}, {0.9, 0.1}, {0.0, 0.0}}) {
    ag::Var p = param(p0);
    Adam opt({p}, 0.01, {b1, 0.999}, 1e-8, wd);
    for (int t = 1; t <= 5; ++t) {
      opt.zero_grad();
      quadratic_backward(p, a);
      opt.step();
      BOOST_TEST(test::all_close(p.value().to_vector(), adam_reference(p0, a, t, 0.01, b1, 0.999, 1e-8, wd),
                                 1e-13, 1e-12, "adam step " + std::to_string(t)));
    }
    BOOST_TEST(opt.step_count() == 5);
  }
}

// With beta1 = 0 (the image runs) the first step is lr * g / (|g| + eps): lr times the sign of the gradient.
BOOST_AUTO_TEST_CASE(adam_beta1_zero_first_step_is_signed_lr) {
  const std::vector<double> p0 = {1.0, -2.0, 0.5};
  ag::Var p = param(p0);
  Adam opt({p}, 1e-4, {0.0, 0.999}, 1e-8);
  quadratic_backward(p, {1.0, 1.0, 1.0});
  opt.step();
  BOOST_TEST(test::all_close(p.value().to_vector(), {1.0 - 1e-4, -2.0 + 1e-4, 0.5 - 1e-4}, 1e-11, 0, "beta1=0"));
}

BOOST_AUTO_TEST_CASE(adam_minimises_quadratic) {
  const std::vector<double> c = {0.3, -1.7, 2.5, 0.0, 10.0};
  ag::Var x = param({0, 0, 0, 0, 0});
  const ag::Var cv(Tensor::from_vector(c, {5}, DType::Float64));
  Adam opt({x}, 0.1);
  const LinearDecayLR schedule(0.1, 3000, 1e-3);
  for (int t = 0; t < 3000; ++t) {
    opt.set_lr(schedule.lr_at(t));
    opt.zero_grad();
    ag::backward(ag::sum_all(ag::square(ag::sub(x, cv))));
    opt.step();
  }
  BOOST_TEST(test::all_close(x.value().to_vector(), c, 1e-4, 0, "argmin"));
}

BOOST_AUTO_TEST_CASE(sgd_matches_formula) {
  const std::vector<double> p0 = {1.0, -2.0, 0.5}, a = {1.0, 0.5, 4.0};
  const double lr = 0.05, mom = 0.9, wd = 0.01;
  ag::Var p = param(p0);
  SGD opt({p}, lr, mom, wd);
  std::vector<double> ref = p0, buf(3, 0.0);
  for (int t = 1; t <= 4; ++t) {
    opt.zero_grad();
    quadratic_backward(p, a);
    opt.step();
    for (size_t i = 0; i < 3; ++i) {
      const double d = a[i] * ref[i] + wd * ref[i];
      buf[i] = t == 1 ? d : mom * buf[i] + d;
      ref[i] -= lr * buf[i];
    }
    BOOST_TEST(test::all_close(p.value().to_vector(), ref, 1e-14, 1e-13, "sgd step " + std::to_string(t)));
  }
  // Plain gradient descent: p -= lr * g.
  ag::Var q = param(p0);
  SGD gd({q}, lr);
  quadratic_backward(q, a);
  gd.step();
  BOOST_TEST(test::all_close(q.value().to_vector(), {1.0 - lr * 1.0, -2.0 + lr * 1.0, 0.5 - lr * 2.0}, 1e-15, 0, "gd"));
}

BOOST_AUTO_TEST_CASE(params_without_grad_are_skipped) {
  ag::Var p = param({1.0, 2.0}), q = param({3.0});
  Adam opt({p, q}, 0.1);
  quadratic_backward(p, {1.0, 1.0});
  opt.step();
  BOOST_TEST(q.value().to_vector() == std::vector<double>{3.0});
  BOOST_TEST(p.value().to_vector() != (std::vector<double>{1.0, 2.0}));
}

BOOST_AUTO_TEST_CASE(clip_grad_norm_scales_and_returns_pre_clip_norm) {
  ag::Var p = param({0, 0, 0}), q = param({0, 0});
  p.grad() = Tensor::from_vector(std::vector<double>{3.0, 0.0, 4.0}, {3}, DType::Float64);
  q.grad() = Tensor::from_vector(std::vector<double>{12.0, 0.0}, {2}, DType::Float64);
  ag::Var none = param({1.0});  // no gradient: ignored
  const double norm = clip_grad_norm({p, q, none}, 6.5);
  BOOST_TEST(std::fabs(norm - 13.0) < 1e-12);  // sqrt(9 + 16 + 144)
  const double c = 6.5 / (13.0 + 1e-6);
  BOOST_TEST(test::all_close(p.grad().to_vector(), {3 * c, 0, 4 * c}, 1e-14, 1e-14, "clipped p"));
  BOOST_TEST(test::all_close(q.grad().to_vector(), {12 * c, 0}, 1e-14, 1e-14, "clipped q"));
  // Below the threshold nothing changes, and the returned norm is the (now clipped) norm.
  const double again = clip_grad_norm({p, q}, 100.0);
  BOOST_TEST(std::fabs(again - 13.0 * c) < 1e-12);
  BOOST_TEST(test::all_close(p.grad().to_vector(), {3 * c, 0, 4 * c}, 1e-14, 1e-14, "unclipped p"));
  BOOST_TEST(clip_grad_norm({none}, 1.0) == 0.0);
  BOOST_CHECK_THROW(clip_grad_norm({p}, 0.0), Error);
}

BOOST_AUTO_TEST_CASE(lr_schedules) {
  const LinearDecayLR mnist(1e-4, 500);  // the MNIST run: factor max(1 - epoch/500, 1e-10)
  BOOST_TEST(mnist.lr_at(0) == 1e-4);
  BOOST_TEST(std::fabs(mnist.lr_at(250) - 5e-5) < 1e-18);
  BOOST_TEST(std::fabs(mnist.lr_at(499) - 1e-4 / 500) < 1e-18);
  BOOST_TEST(mnist.lr_at(500) == 1e-4 * 1e-10);
  BOOST_TEST(mnist.lr_at(600) == 1e-4 * 1e-10);
  const LinearDecayLR cifar(1e-4, 600, 0.0);  // CIFAR-10: linear decay to 0 over 600 epochs
  BOOST_TEST(std::fabs(cifar.lr_at(300) - 5e-5) < 1e-18);
  BOOST_TEST(cifar.lr_at(600) == 0.0);
  const ConstantLR constant{3e-3};
  BOOST_TEST(constant.lr_at(0) == 3e-3);
  BOOST_TEST(constant.lr_at(1000) == 3e-3);
  BOOST_CHECK_THROW(LinearDecayLR(1e-4, 0), Error);
}

// Stop after 5 steps, restore (parameters + optimizer state) into a fresh optimizer, continue: the last steps
// must land on exactly the same values as an uninterrupted run.
BOOST_AUTO_TEST_CASE(adam_state_round_trip_continues_identically) {
  const std::vector<double> p0 = {1.0, -2.0, 0.5}, a = {1.0, 0.5, 4.0};
  ag::Var p = param(p0), r = param({0.25});
  Adam opt({p, r}, 0.01, {0.0, 0.999}, 1e-8, 0.01);
  std::vector<double> saved_p, saved_r;
  NamedTensors saved_state;
  for (int t = 1; t <= 10; ++t) {
    opt.zero_grad();
    quadratic_backward(p, a);
    quadratic_backward(r, {2.0});
    opt.step();
    if (t == 5) {
      saved_p = p.value().to_vector();
      saved_r = r.value().to_vector();
      saved_state = opt.state_tensors();
    }
  }
  BOOST_TEST(saved_state.size() == 5u);  // step, m.0, v.0, m.1, v.1
  ag::Var p2 = param(saved_p), r2 = param(saved_r);
  Adam resumed({p2, r2}, 0.01, {0.0, 0.999}, 1e-8, 0.01);
  resumed.load_state(saved_state);
  BOOST_TEST(resumed.step_count() == 5);
  for (int t = 6; t <= 10; ++t) {
    resumed.zero_grad();
    quadratic_backward(p2, a);
    quadratic_backward(r2, {2.0});
    resumed.step();
  }
  BOOST_TEST(p2.value().to_vector() == p.value().to_vector());
  BOOST_TEST(r2.value().to_vector() == r.value().to_vector());

  // Mismatches are refused, naming the entry.
  Adam other({param({1.0, 2.0})}, 0.01);
  BOOST_CHECK_THROW(other.load_state(saved_state), Error);  // m.0 has 3 entries, the parameter 2
  NamedTensors bad = {{"step", Tensor::scalar(1, DType::Float64)}, {"w.0", Tensor::zeros({2})}};
  BOOST_CHECK_THROW(other.load_state(bad), Error);
  BOOST_CHECK_THROW(other.load_state({}), Error);  // no step
}

BOOST_AUTO_TEST_CASE(sgd_state_round_trip_continues_identically) {
  const std::vector<double> p0 = {1.0, -2.0}, a = {1.0, 3.0};
  ag::Var p = param(p0);
  SGD opt({p}, 0.05, 0.9);
  std::vector<double> saved_p;
  NamedTensors saved_state;
  for (int t = 1; t <= 6; ++t) {
    opt.zero_grad();
    quadratic_backward(p, a);
    opt.step();
    if (t == 3) {
      saved_p = p.value().to_vector();
      saved_state = opt.state_tensors();
    }
  }
  BOOST_TEST(saved_state.size() == 1u);
  ag::Var p2 = param(saved_p);
  SGD resumed({p2}, 0.05, 0.9);
  resumed.load_state(saved_state);
  for (int t = 4; t <= 6; ++t) {
    resumed.zero_grad();
    quadratic_backward(p2, a);
    resumed.step();
  }
  BOOST_TEST(p2.value().to_vector() == p.value().to_vector());
}

BOOST_AUTO_TEST_CASE(set_lr_changes_the_step) {
  ag::Var p = param({1.0});
  SGD opt({p}, 0.1);
  opt.set_lr(0.5);
  BOOST_TEST(opt.lr() == 0.5);
  quadratic_backward(p, {1.0});
  opt.step();
  BOOST_TEST(p.value().to_vector() == std::vector<double>{0.5});
  BOOST_CHECK_THROW(opt.set_lr(-1.0), Error);
}

// Module::to(DType) replaces parameter values in place after the optimizer exists; its moments must follow.
BOOST_AUTO_TEST_CASE(adam_state_follows_a_parameter_cast) {
  const std::vector<double> p0 = {1.0, -2.0, 0.5}, a = {1.0, 0.5, 4.0};
  ag::Var p(Tensor::from_vector(p0, {3}, DType::Float32), true);
  Adam opt({p}, 0.01);
  quadratic_backward(p, a);  // float32 gradient
  opt.step();
  p.value() = p.value().to(DType::Float64);  // what Module::to(Float64) does
  p.zero_grad();
  quadratic_backward(p, a);
  opt.step();
  BOOST_TEST(dtype_name(p.dtype()) == std::string("float64"));
  for (const auto& [name, t] : opt.state_tensors())
    if (name != "step") BOOST_TEST(dtype_name(t.dtype()) == std::string("float64"), name);
  BOOST_TEST(test::all_close(p.value().to_vector(), adam_reference(p0, a, 2, 0.01, 0.9, 0.999, 1e-8, 0.0), 1e-6,
                             1e-6, "adam across a cast"));
}
