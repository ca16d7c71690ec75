// SGD, Adam, clip_grad_norm and LinearDecayLR. Each update is in place on the parameter's value(), outside
// any graph. Tested by tests/test_optim.cpp.
#include "models/optim.hpp"

#include <algorithm>
#include <cmath>

namespace jebm {

namespace {

// "m.12" -> ("m", 12); returns false when the name has no ".<index>" suffix.
bool split_indexed(const std::string& name, std::string& kind, int64_t& index) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot + 1 == name.size()) return false;
  const std::string digits = name.substr(dot + 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return false;
  kind = name.substr(0, dot);
  index = std::stoll(digits);
  return true;
}

// A private copy of a saved state tensor, in the parameter's dtype and on its device.
Tensor state_like(const Tensor& saved, const ag::Var& param, const std::string& name) {
  JEBM_CHECK(saved.shape() == param.shape(), "optimizer load_state: '" << name << "' has shape "
                                                 << shape_str(saved.shape()) << ", parameter has "
                                                 << shape_str(param.shape()));
  Tensor t = Tensor::empty(param.shape(), param.dtype(), param.device());
  t.copy_(saved);
  return t;
}

void check_grad_matches(const ag::Var& p, size_t i, const char* who) {
  JEBM_CHECK(p.grad().shape() == p.shape() && p.grad().dtype() == p.dtype() && p.grad().device() == p.device(),
             who << ": parameter " << i << " is " << dtype_name(p.dtype()) << " " << shape_str(p.shape())
                 << " on " << p.device().str() << " but its gradient is " << dtype_name(p.grad().dtype()) << " "
                 << shape_str(p.grad().shape()) << " on " << p.grad().device().str());
}

// A state tensor made before Module::to() moved/cast its parameter follows it (same values, new dtype/device).
void follow_param(Tensor& state, const ag::Var& param) {
  if (state.defined() && (state.dtype() != param.dtype() || state.device() != param.device()))
    state = state.to(param.device()).to(param.dtype());
}

}  // namespace

// --- Optimizer ------------------------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<ag::Var> params, double lr) : params_(std::move(params)), lr_(lr) {
  for (size_t i = 0; i < params_.size(); ++i)
    JEBM_CHECK(params_[i].defined(), "Optimizer: parameter " << i << " is undefined");
  set_lr(lr);
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  JEBM_CHECK(std::isfinite(lr) && lr >= 0.0, "Optimizer: learning rate " << lr << " must be finite and >= 0");
  lr_ = lr;
}

// --- SGD ------------------------------------------------------------------------------------------------

SGD::SGD(std::vector<ag::Var> params, double lr, double momentum, double weight_decay)
    : Optimizer(std::move(params), lr), momentum(momentum), weight_decay(weight_decay), buf_(params_.size()) {
  JEBM_CHECK(momentum >= 0.0 && weight_decay >= 0.0,
             "SGD: momentum " << momentum << " and weight_decay " << weight_decay << " must be >= 0");
}

void SGD::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    ag::Var& p = params_[i];
    if (!p.grad().defined()) continue;
    check_grad_matches(p, i, "SGD");
    Tensor d = p.grad();
    if (weight_decay != 0.0) {
      d = d.clone();
      add_(d, p.value(), weight_decay);
    }
    if (momentum != 0.0) {
      follow_param(buf_[i], p);
      if (!buf_[i].defined()) {
        buf_[i] = d.clone();
      } else {
        axpby_(1.0, d, momentum, buf_[i]);
      }
      d = buf_[i];
    }
    add_(p.value(), d, -lr_);
  }
}

NamedTensors SGD::state_tensors() const {
  NamedTensors out;
  for (size_t i = 0; i < buf_.size(); ++i)
    if (buf_[i].defined()) out.emplace_back("momentum." + std::to_string(i), buf_[i].clone());
  return out;
}

void SGD::load_state(const NamedTensors& state) {
  std::vector<Tensor> buf(params_.size());
  for (const auto& [name, t] : state) {
    std::string kind;
    int64_t i = -1;
    JEBM_CHECK(split_indexed(name, kind, i) && kind == "momentum",
               "SGD::load_state: unexpected entry '" << name << "'");
    JEBM_CHECK(i < static_cast<int64_t>(params_.size()),
               "SGD::load_state: '" << name << "' but the optimizer has " << params_.size() << " parameters");
    buf[static_cast<size_t>(i)] = state_like(t, params_[static_cast<size_t>(i)], name);
  }
  buf_ = std::move(buf);
}

// --- Adam -----------------------------------------------------------------------------------------------

Adam::Adam(std::vector<ag::Var> params, double lr, std::pair<double, double> betas, double eps,
           double weight_decay)
    : Optimizer(std::move(params), lr),
      beta1(betas.first),
      beta2(betas.second),
      eps(eps),
      weight_decay(weight_decay),
      m_(params_.size()),
      v_(params_.size()) {
  JEBM_CHECK(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0,
             "Adam: betas (" << beta1 << ", " << beta2 << ") must lie in [0, 1)");
  JEBM_CHECK(eps >= 0.0 && weight_decay >= 0.0,
             "Adam: eps " << eps << " and weight_decay " << weight_decay << " must be >= 0");
}

void Adam::step() {
  ++step_;
  AdamHyper h;
  h.lr = lr_;
  h.beta1 = beta1;
  h.beta2 = beta2;
  h.eps = eps;
  h.weight_decay = weight_decay;
  h.step = step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    ag::Var& p = params_[i];
    if (!p.grad().defined()) continue;
    check_grad_matches(p, i, "Adam");
    follow_param(m_[i], p);
    follow_param(v_[i], p);
    if (!m_[i].defined()) {
      m_[i] = Tensor::zeros(p.shape(), p.dtype(), p.device());
      v_[i] = Tensor::zeros(p.shape(), p.dtype(), p.device());
    }
    adam_update_(p.value(), p.grad(), m_[i], v_[i], h);
  }
}

double Adam::step_scale_dot(const std::vector<Tensor>& c, double clip_coef) const {
  JEBM_CHECK(c.size() == params_.size(), "Adam::step_scale_dot: " << c.size() << " tensors for " << params_.size()
                                                                  << " parameters");
  JEBM_CHECK(step_ > 0, "Adam::step_scale_dot: no step() yet");
  const double t = static_cast<double>(step_);
  const double bc1 = 1.0 - std::pow(beta1, t), bc2 = 1.0 - std::pow(beta2, t);
  double total = 0.0;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!c[i].defined() || !v_[i].defined()) continue;
    JEBM_CHECK(c[i].shape() == v_[i].shape(), "Adam::step_scale_dot: tensor " << i << " has shape "
                                                  << shape_str(c[i].shape()) << ", parameter "
                                                  << shape_str(v_[i].shape()));
    // In float64 whatever the parameters' dtype: the products are summed over millions of entries.
    const Tensor v = cast(v_[i], DType::Float64);
    const Tensor denom = add_scalar(mul_scalar(sqrt(v), 1.0 / std::sqrt(bc2)), eps);
    const Tensor ci = cast(c[i].device() == v.device() ? c[i] : c[i].to(v.device()), DType::Float64);
    total += sum_all(div(ci, denom)).item();
  }
  return total * lr_ * (1.0 - beta1) / bc1 * clip_coef;
}

NamedTensors Adam::state_tensors() const {
  NamedTensors out;
  out.emplace_back("step", Tensor::scalar(static_cast<double>(step_), DType::Float64));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!m_[i].defined()) continue;
    out.emplace_back("m." + std::to_string(i), m_[i].clone());
    out.emplace_back("v." + std::to_string(i), v_[i].clone());
  }
  return out;
}

void Adam::load_state(const NamedTensors& state) {
  std::vector<Tensor> m(params_.size()), v(params_.size());
  int64_t step = -1;
  for (const auto& [name, t] : state) {
    if (name == "step") {
      JEBM_CHECK(t.numel() == 1, "Adam::load_state: 'step' has shape " << shape_str(t.shape()) << ", want []");
      const double s = t.item();
      JEBM_CHECK(s >= 0.0 && s == std::floor(s), "Adam::load_state: 'step' = " << s << " is not a count");
      step = static_cast<int64_t>(s);
      continue;
    }
    std::string kind;
    int64_t i = -1;
    JEBM_CHECK(split_indexed(name, kind, i) && (kind == "m" || kind == "v"),
               "Adam::load_state: unexpected entry '" << name << "'");
    JEBM_CHECK(i < static_cast<int64_t>(params_.size()),
               "Adam::load_state: '" << name << "' but the optimizer has " << params_.size() << " parameters");
    (kind == "m" ? m : v)[static_cast<size_t>(i)] = state_like(t, params_[static_cast<size_t>(i)], name);
  }
  JEBM_CHECK(step >= 0, "Adam::load_state: no 'step' entry");
  for (size_t i = 0; i < params_.size(); ++i)
    JEBM_CHECK(m[i].defined() == v[i].defined(), "Adam::load_state: parameter " << i << " has only one of m, v");
  step_ = step;
  m_ = std::move(m);
  v_ = std::move(v);
}

// --- clipping -------------------------------------------------------------------------------------------

double clip_grad_norm(const std::vector<ag::Var>& params, double max_norm) {
  JEBM_CHECK(max_norm > 0.0, "clip_grad_norm: max_norm " << max_norm << " must be > 0");
  Tensor total;  // sum of squares, Float64 {} on the gradients' device
  for (const auto& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    Tensor s = cast(sum_all(square(g)), DType::Float64);
    if (!total.defined()) {
      total = s;
    } else {
      JEBM_CHECK(s.device() == total.device(), "clip_grad_norm: gradients on " << total.device().str()
                                                   << " and " << s.device().str());
      add_(total, s);
    }
  }
  if (!total.defined()) return 0.0;
  const double norm = std::sqrt(total.item());
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    for (const auto& p : params) {
      ag::Var q = p;  // shares the impl; grad() is replaced in place
      if (q.grad().defined()) q.grad() = mul_scalar(q.grad(), coef);
    }
  }
  return norm;
}

// --- schedules ------------------------------------------------------------------------------------------

LinearDecayLR::LinearDecayLR(double start_lr, int64_t total, double floor_factor)
    : start_lr(start_lr), total(total), floor_factor(floor_factor) {
  JEBM_CHECK(total > 0, "LinearDecayLR: total " << total << " must be > 0");
  JEBM_CHECK(floor_factor >= 0.0, "LinearDecayLR: floor_factor " << floor_factor << " must be >= 0");
}

double LinearDecayLR::lr_at(int64_t t) const {
  return start_lr * std::max(1.0 - static_cast<double>(t) / static_cast<double>(total), floor_factor);
}

}  // namespace jebm
