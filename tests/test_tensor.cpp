// Tensor basics (runtime/tensor.hpp): creation, views that share storage (reshape, rows), clone, copy_to, dtype
// conversion, item() and printing, and the errors for bad reshapes/rows/items; gather_rows with host indices and
// first_non_finite (runtime/ops.hpp).
#include "tests/helpers.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/ops.hpp"
#include "runtime/tensor.hpp"

using namespace jebm;

BOOST_AUTO_TEST_CASE(creation_fills_every_dtype) {
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
    BOOST_TEST_CONTEXT(dtype_name(dt)) {
      const Tensor z = Tensor::zeros({2, 3}, dt);
      BOOST_TEST(z.shape() == Shape({2, 3}));
      BOOST_TEST(z.numel() == 6);
      BOOST_TEST((z.dtype() == dt));
      BOOST_TEST(z.device().is_cpu());
      BOOST_TEST(z.nbytes() == 6 * dtype_size(dt));
      BOOST_TEST(z.to_vector() == std::vector<double>(6, 0.0));
      BOOST_TEST(Tensor::ones({4}, dt).to_vector() == std::vector<double>(4, 1.0));
      BOOST_TEST(Tensor::full({3, 1}, 7.0, dt).to_vector() == std::vector<double>(3, 7.0));
      BOOST_TEST(Tensor::arange(5, dt).to_vector() == std::vector<double>({0, 1, 2, 3, 4}));
      const Tensor s = Tensor::scalar(3.0, dt);
      BOOST_TEST(s.dim() == 0);
      BOOST_TEST(s.numel() == 1);
      BOOST_TEST(s.item() == 3.0);
    }
  }
  const Tensor f = Tensor::from_vector(std::vector<float>{1.5f, -2.f}, {2});
  BOOST_TEST((f.dtype() == DType::Float32));
  BOOST_TEST(f.host_vector<float>() == std::vector<float>({1.5f, -2.f}));
  const Tensor i = Tensor::from_vector(std::vector<int64_t>{3, -4, 5}, {3, 1});
  BOOST_TEST((i.dtype() == DType::Int64));
  BOOST_TEST(i.host_vector<int64_t>() == std::vector<int64_t>({3, -4, 5}));
  BOOST_CHECK_THROW(Tensor::from_vector(std::vector<double>{1, 2, 3}, {2, 2}), Error);
  const Tensor e = Tensor::empty({0, 5});
  BOOST_TEST(e.numel() == 0);
  BOOST_TEST(e.to_vector().empty());
}

BOOST_AUTO_TEST_CASE(reshape_is_a_view_sharing_storage) {
  Tensor x = Tensor::arange(12, DType::Float64);
  Tensor y = x.reshape({3, -1});
  BOOST_TEST(y.shape() == Shape({3, 4}));
  BOOST_TEST(y.same_storage(x));
  y.data<double>()[5] = 100.0;  // visible through the original
  BOOST_TEST(x.to_vector()[5] == 100.0);
  BOOST_TEST(x.flatten().shape() == Shape({12}));
  BOOST_TEST(x.reshape({2, 3, 2}).size(-1) == 2);
  BOOST_CHECK_THROW(x.reshape({5, 2}), Error);
  BOOST_CHECK_THROW(x.reshape({-1, -1}), Error);
  BOOST_CHECK_THROW(x.reshape({5, -1}), Error);
  try {
    x.reshape({5, 2});
    BOOST_FAIL("reshape should have thrown");
  } catch (const Error& err) {
    const std::string m = err.what();
    BOOST_TEST(m.find("[12]") != std::string::npos);
    BOOST_TEST(m.find("[5, 2]") != std::string::npos);
  }
  BOOST_CHECK_THROW(x.size(3), Error);
}

BOOST_AUTO_TEST_CASE(rows_are_views_of_the_leading_dimension) {
  Tensor x = Tensor::arange(12).reshape({4, 3});
  Tensor r = x.rows(1, 3);
  BOOST_TEST(r.shape() == Shape({2, 3}));
  BOOST_TEST(r.same_storage(x));
  BOOST_TEST(r.to_vector() == std::vector<double>({3, 4, 5, 6, 7, 8}));
  fill_(r, -1.0);  // writes through to rows 1 and 2 of x only
  BOOST_TEST(x.to_vector() == std::vector<double>({0, 1, 2, -1, -1, -1, -1, -1, -1, 9, 10, 11}));
  BOOST_TEST(x.rows(4, 4).numel() == 0);
  BOOST_CHECK_THROW(x.rows(3, 5), Error);
  BOOST_CHECK_THROW(x.rows(2, 1), Error);
  BOOST_CHECK_THROW(Tensor::scalar(1.0).rows(0, 1), Error);
}

BOOST_AUTO_TEST_CASE(clone_copies_and_to_dtype_converts) {
  Tensor x = Tensor::from_vector(std::vector<double>{1.25, -2.5, 3.75, 1e10}, {2, 2}, DType::Float64);
  Tensor c = x.clone();
  BOOST_TEST(!c.same_storage(x));
  fill_(c, 0.0);
  BOOST_TEST(x.to_vector()[0] == 1.25);  // the original is untouched

  BOOST_TEST(x.to(DType::Float64).same_storage(x));  // same dtype: no copy
  const Tensor f = x.to(DType::Float32);
  BOOST_TEST((f.dtype() == DType::Float32));
  BOOST_TEST(f.shape() == x.shape());
  BOOST_TEST(f.to_vector() == std::vector<double>({1.25, -2.5, 3.75, static_cast<double>(1e10f)}));
  const Tensor i = x.to(DType::Int64);  // truncation toward zero, as static_cast
  BOOST_TEST(i.host_vector<int64_t>() == std::vector<int64_t>({1, -2, 3, 10000000000}));
  BOOST_TEST(i.to(DType::Float64).to_vector() == std::vector<double>({1, -2, 3, 1e10}));

  Tensor dst = Tensor::zeros({2, 2}, DType::Float32);
  dst.copy_(x);  // converts on the way
  BOOST_TEST(dst.to_vector()[1] == -2.5);
  BOOST_CHECK_THROW(dst.copy_(Tensor::zeros({4})), Error);
}

BOOST_AUTO_TEST_CASE(copies_gathers_and_non_finite_scans) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}, DType::Float64);
  const Tensor c = x.copy_to(Device::cpu());  // same device: still a copy, never the same storage
  BOOST_TEST(!c.same_storage(x));
  BOOST_TEST(c.to_vector() == x.to_vector(), boost::test_tools::per_element());
  // Host indices: rows in the order given, repeats allowed, the bad index named.
  BOOST_TEST(gather_rows(x, std::vector<int64_t>{2, 0, 2}).to_vector() == std::vector<double>({5, 6, 1, 2, 5, 6}),
             boost::test_tools::per_element());
  BOOST_TEST(gather_rows(x, std::vector<int64_t>{}).shape() == Shape({0, 2}));
  test::expect_error([&] { gather_rows(x, std::vector<int64_t>{1, 3}); }, {"gather_rows", "index 3", "3 rows"});
  double bad = 0.0;
  BOOST_TEST(first_non_finite(x, &bad) == -1);
  BOOST_TEST(bad == 0.0);
  for (DType dt : {DType::Float32, DType::Float64}) {
    const Tensor y = Tensor::from_vector(std::vector<double>{0, 1, -INFINITY, NAN}, {2, 2}, dt);
    BOOST_TEST(first_non_finite(y, &bad) == 2);
    BOOST_TEST(bad == -INFINITY);
  }
  BOOST_TEST(first_non_finite(Tensor::zeros({3}, DType::Int64)) == -1);
  BOOST_TEST(first_non_finite(Tensor()) == -1);
}

BOOST_AUTO_TEST_CASE(item_and_printing) {
  BOOST_TEST(Tensor::full({1, 1}, 2.5).item() == 2.5);
  BOOST_CHECK_THROW(Tensor::zeros({2}).item(), Error);
  const std::string s = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::Float64).str();
  BOOST_TEST(s.find("[3]") != std::string::npos);
  BOOST_TEST(s.find("float64") != std::string::npos);
  BOOST_TEST(s.find("cpu") != std::string::npos);
  BOOST_TEST(s.find("1, 2, 3") != std::string::npos);
  const std::string longer = Tensor::zeros({100}).str(4);
  BOOST_TEST(longer.find("96 more") != std::string::npos);
  BOOST_TEST(Tensor().str() == "Tensor(undefined)");
  BOOST_TEST(!Tensor().defined());
}
