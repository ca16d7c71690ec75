#!/usr/bin/env python3
"""PyTorch twins of the `jebm bench` sampler workloads, written the fastest plain-PyTorch way, so both can be timed
side by side on one machine (scripts/device-check.sh runs both on the GPU).

Workloads (same sizes and hyper-parameters as experiments/bench/bench_samplers.cpp and bench_gmm_timings):
  gmm/fused step        ULA move + Jarzynski weight completion for N=10^4 walkers, d=50, float64, U and grad U given
  gmm/full iteration    one Jarzynski iteration of the Gaussian-mixture run: U, grad U, responsibilities
                        of the walkers, weight completion, move, weighted parameter gradient, data term, update,
                        log-sum-exp / ESS check with systematic resampling when CV^2 > 1 (one host sync)
  ula_cnn/<net> ula move    one forward + input gradient of the energy CNN for B of the run's walkers, the
                        completion of their previous move and the next move (jebm: Trainer::energy_and_grad +
                        ula_jarzynski_step on the subset)
  ula_cnn/<net> iteration   one training step as jebm's Trainer::step makes it with the experiment's defaults
                        (MNIST: 1024 walkers, data batch 128, 6 subsets x 30 moves; CIFAR-10: 4096 walkers, data
                        batch 512, 1 x 60, the loss on the walkers just moved), B walkers per subset and in the loss:
                        completion of the last moves and the parameter-change increment of the other walkers, the
                        surrogate loss (alpha=0.01) and its backward, the moves, grad-norm clip, Adam(1e-4, (0, 0.999))
  energy_cnn/<net>_energy_cnn fwd+bwd   one forward of the energy CNN at --batch and one backward to grad_x and
                        grad_theta (experiments/bench/bench_models.cpp)
  energy_cnn/<net>_energy_cnn fwd+grad_x   forward and input gradient only (docs/performance.md's CPU comparison)
Prints one JSON line per workload (with the TF32 mode), then a table. `--compare FILE` (repeatable) also reads
`jebm bench` output tables and prints jebm / torch ratios for the rows both have.
--tf32 off (the default) sets torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32 to False:
strict FP32, like jebm's default; --tf32 on allows TF32 tensor cores (PyTorch's own default for convolutions),
to compare with jebm under JEBM_ALLOW_TF32=1. Tested here by running it on the CPU with small sizes.
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, repeat, dev):
    fn()  # warm-up: allocator, cuDNN algorithm search
    sync(dev)
    times = []
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# --- Gaussian mixture: U(x) = -log sum_j exp(-|x - a_j|^2/2 - z_j) -----------------------------------------

def gmm_eval(x, a, z):
    """U [N], grad_x U [N, D], responsibilities r [N, K], with one N x K x D pass (via the GEMM expansion)."""
    d2 = (x * x).sum(1, keepdim=True) - 2.0 * x @ a.T + (a * a).sum(1)
    e = -0.5 * d2 - z
    u = -torch.logsumexp(e, 1)
    r = torch.softmax(e, 1)
    g = x - r @ a
    return u, g, r


class GmmState:
    """The walkers of the fused pass: positions, previous positions, log-weights, the pending partial term."""

    def __init__(self, n, d, dev, gen_seed):
        torch.manual_seed(gen_seed)
        dt = torch.float64
        self.teacher_a = torch.zeros(2, d, dtype=dt, device=dev)
        self.teacher_a[0, 0], self.teacher_a[1, 0] = -10.0, 6.0
        self.data = torch.randn(n, d, dtype=dt, device=dev)
        self.data[: n // 4] += self.teacher_a[0]
        self.data[n // 4:] += self.teacher_a[1]
        self.a = 0.01 * torch.randn(2, d, dtype=dt, device=dev)
        self.a[0, 0], self.a[1, 0] = -0.1, 0.1
        self.z = torch.zeros(2, dtype=dt, device=dev)
        self.x = torch.randn(n, d, dtype=dt, device=dev) + self.a[torch.arange(n, device=dev) % 2]
        self.x_prev = self.x.clone()
        self.log_w = torch.zeros(n, dtype=dt, device=dev)
        self.partial = torch.zeros(n, dtype=dt, device=dev)
        self.pending = False
        self.log_z_offset = 0.0
        self.h = 0.1
        self.sigma = math.sqrt(2 * self.h)


def gmm_fused_step(s, u, g):
    """Complete the pending move with U, G at the current positions, then move (the fused pass)."""
    h, sig = s.h, s.sigma
    if s.pending:
        back = (s.x_prev - s.x + h * g).square().sum(1)
        s.log_w += s.partial - u - back / (2 * sig * sig)
    xi = torch.randn_like(s.x)
    s.x_prev.copy_(s.x)
    s.x.add_(g, alpha=-h).add_(xi, alpha=sig)
    s.partial = u + 0.5 * xi.square().sum(1)
    s.pending = True


def gmm_iteration(s):
    n = s.x.shape[0]
    u, g, r = gmm_eval(s.x, s.a, s.z)
    gmm_fused_step(s, u, g)
    lse = torch.logsumexp(s.log_w, 0)
    w = torch.exp(s.log_w - lse)
    # sum_i w_i dU/dtheta at X_k (= x_prev) minus the data mean; dU/da_j = r_j (a_j - x), dU/dz_j = r_j
    wr = w[:, None] * r
    ga_w = wr.sum(0)[:, None] * s.a - wr.T @ s.x_prev
    gz_w = wr.sum(0)
    _, _, rd = gmm_eval(s.data, s.a, s.z)
    rd = rd / s.data.shape[0]
    ga_d = rd.sum(0)[:, None] * s.a - rd.T @ s.data
    gz_d = rd.sum(0)
    s.a -= 0.2 / 8 * s.h * (ga_d - ga_w)
    s.z[1:] -= 1.0 / 8 * s.h * (gz_d - gz_w)[1:]
    cv2 = float(n * torch.exp(2 * (s.log_w - lse)).sum() - 1.0)  # the one host sync
    if cv2 > 1.0:
        # systematic resampling of the pre-move state, then the move is redone from the copies
        c = torch.cumsum(w, 0)
        c = c / c[-1]
        pts = (torch.arange(n, device=w.device, dtype=w.dtype) + torch.rand((), device=w.device, dtype=w.dtype)) / n
        anc = torch.searchsorted(c, pts, right=True).clamp_(max=n - 1)
        s.log_z_offset += float(lse) - math.log(n)
        s.log_w.zero_()
        s.x.copy_(s.x_prev[anc])
        s.pending = False
        gmm_fused_step(s, u[anc], g[anc])


# --- energy CNNs (official MNIST, CIFAR-10) -------------------------------------------------------------------------

def mnist_net():
    act = nn.SiLU
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, 2, 4), act(), nn.Conv2d(16, 32, 3, 2, 1), act(), nn.Conv2d(32, 64, 3, 2, 1), act(),
        nn.Conv2d(64, 64, 3, 2, 1), act(), nn.Flatten(), nn.Linear(256, 64), act(), nn.Linear(64, 1))


def cifar_net():
    def act():
        return nn.LeakyReLU(0.2)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, 1, 1), act(), nn.Conv2d(64, 128, 4, 2, 1), act(), nn.Conv2d(128, 256, 4, 2, 1), act(),
        nn.Conv2d(256, 512, 4, 2, 1), act(), nn.Conv2d(512, 1, 4, 1, 0), nn.Flatten())


class ImageRun:
    """The walkers of an image run as jebm's Trainer keeps them (samplers/trainer.hpp): positions, previous
    positions, float64 log-weights, the pending partial term, which walkers are pending, and U at each walker."""

    def __init__(self, net, image, walkers, data_batch, h, sigma, clip, grad_clip, dev):
        self.net, self.h, self.sigma, self.clip, self.grad_clip = net.to(dev), h, sigma, clip, grad_clip
        for p in self.net.parameters():
            p.requires_grad_(True)
        n = walkers
        self.x = torch.rand((n,) + image, device=dev) * 2 - 1
        self.x_prev = self.x.clone()
        self.log_w = torch.zeros(n, dtype=torch.float64, device=dev)
        self.partial = torch.zeros(n, dtype=torch.float64, device=dev)
        self.pending = torch.zeros(n, dtype=torch.bool, device=dev)
        self.u_cache = torch.zeros(n, dtype=torch.float64, device=dev)
        self.data = torch.rand((data_batch,) + image, device=dev) * 2 - 1
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-4, betas=(0.0, 0.999))
        self.dims = tuple(range(1, len(image) + 1))
        self.dev = dev

    def energy_grad(self, xx):
        """U (float64) and grad_x U (clipped per coordinate when clip > 0): one forward + input-gradient pass."""
        xx = xx.detach().requires_grad_(True)
        u = self.net(xx).reshape(-1)
        (g,) = torch.autograd.grad(u.sum(), xx)
        if self.clip > 0:
            g = g.clamp(-self.clip, self.clip)
        return u.detach().double(), g

    def complete(self, idx, u, g):
        """The pending walkers among idx finish their weight increment with U, G at their new positions."""
        p = self.pending[idx]
        back = (self.x_prev[idx] - self.x[idx] + self.h * g).double().square().sum(self.dims)
        inc = self.partial[idx] - u - back / (2 * self.sigma * self.sigma)
        self.log_w[idx] += torch.where(p, inc, torch.zeros_like(inc))
        self.u_cache[idx] = u

    def move(self, idx, first):
        """One fused ULA move of the walkers idx (completing their previous move unless first)."""
        u, g = self.energy_grad(self.x[idx])
        if not first:
            self.complete(idx, u, g)
        xi = torch.randn_like(g)
        self.x_prev[idx] = self.x[idx]
        self.x[idx] = self.x[idx] - self.h * g + self.sigma * xi
        self.partial[idx] = u + 0.5 * xi.double().square().sum(self.dims)
        self.pending[idx] = True

    def step(self, subsets, moves, batch, moved_grad):
        """One Trainer::step: completion + parameter-change increment, surrogate loss over the data batch and the
        gradient walkers (the walkers just moved when moved_grad, else a random subset), the moves, clip + Adam."""
        n = self.x.shape[0]
        moved = self.pending.nonzero().reshape(-1)
        if moved.numel() > 0:
            u, g = self.energy_grad(self.x[moved])
            self.complete(moved, u, g)
            self.pending[moved] = False
        rest = (~torch.isin(torch.arange(n, device=self.dev), moved)).nonzero().reshape(-1)
        if rest.numel() > 0:
            with torch.no_grad():
                u_new = self.net(self.x[rest]).reshape(-1).double()
            self.log_w[rest] += self.u_cache[rest] - u_new
            self.u_cache[rest] = u_new
        gidx = moved if moved_grad and 0 < moved.numel() < n else torch.randperm(n, device=self.dev)[:batch]
        w = torch.softmax(self.log_w[gidx], 0).float()
        ud = self.net(self.data).reshape(-1)
        uw = self.net(self.x[gidx]).reshape(-1)
        loss = ud.mean() - (w * uw).sum() + 0.01 * (ud.square().mean() + (w * uw.square()).sum())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for s in range(subsets):
            idx = torch.randperm(n, device=self.dev)[:batch]
            for k in range(moves):
                self.move(idx, first=(s == 0 and k == 0))
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.opt.step()


def bench_image(name, net, image, walkers, data_batch, h, sigma, clip, grad_clip, subsets, moves, moved_grad, args,
                dev, out):
    """jebm's ula_cnn rows: one ULA move of --batch walkers, and one whole training step (Trainer::step) with the
    experiment's defaults (walkers, data batch, subsets x moves), --batch walkers per subset and in the loss."""
    run = ImageRun(net, image, walkers, data_batch, h, sigma, clip, grad_clip, dev)
    b = args.batch
    if args.moves > 0:
        subsets, moves = 1, args.moves
    sub = torch.arange(b, device=dev) * (walkers // b)
    run.move(sub, first=True)
    out.append(("ula_cnn", f"{name} ula move", b, median_ms(lambda: run.move(sub, first=False), args.repeat, dev)))
    run = ImageRun(net, image, walkers, data_batch, h, sigma, clip, grad_clip, dev)
    out.append(("ula_cnn", f"{name} iteration", b,
                median_ms(lambda: run.step(subsets, moves, b, moved_grad), min(args.repeat, 3), dev)))


def bench_energy_cnn(name, net, shape, args, dev, out):
    """U(x), then grad_x U and grad_theta U from one backward, as a Langevin move with learning needs them."""
    net = net.to(dev)
    x = (torch.rand(shape, device=dev) * 2 - 1).requires_grad_(True)

    def pass_():
        net.zero_grad(set_to_none=True)
        x.grad = None
        net(x).sum().backward()

    out.append(("energy_cnn", f"{name}_energy_cnn fwd+bwd", shape[0], median_ms(pass_, args.repeat, dev)))

    def fwd_grad_x():  # what a Langevin move needs: U and grad_x U only (torch_ref.py's `mnist_step --parts d`)
        xx = x.detach().requires_grad_(True)
        torch.autograd.grad(net(xx).sum(), xx)

    out.append(("energy_cnn", f"{name}_energy_cnn fwd+grad_x", shape[0], median_ms(fwd_grad_x, args.repeat, dev)))


# --- comparison with a `jebm bench` table ----------------------------------------------------------------------

def jebm_key(section, case):
    if section == "gmm":
        for k in ("fused step", "full iteration"):
            if case.startswith(k):
                return f"gmm/{k}"
        return None
    if section == "ula_cnn" and "Trainer::step" in case:
        return f"ula_cnn/{case.split()[0]} iteration"
    if section in ("ula_cnn", "energy_cnn"):
        return section + "/" + case.split(" @")[0]
    return None


def read_jebm_table(path):
    rows = {}
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4 or parts[0] not in ("gmm", "ula_cnn", "energy_cnn"):
                continue
            # "section  case words...  dtype  median_ms  work  rate  % peak": the dtype token ends the case
            at = next((k for k, p in enumerate(parts) if p in ("float32", "float64")), None)
            if at is None or at + 1 >= len(parts):
                continue
            try:
                ms = float(parts[at + 1])
            except ValueError:
                continue
            key = jebm_key(parts[0], " ".join(parts[1:at]))
            if key:
                rows[key] = ms
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions after one warm-up (median reported)")
    ap.add_argument("--walkers", type=int, default=10000, help="gmm: walkers N and data points (the paper: 10^4)")
    ap.add_argument("--dim", type=int, default=50, help="gmm: dimension (the paper: 50)")
    ap.add_argument("--batch", type=int, default=256, help="ula_cnn: walkers per move, energy_cnn: images per pass (the paper: 256)")
    ap.add_argument("--moves", type=int, default=0, help="ula_cnn: moves per iteration; 0 = paper (180 / 60)")
    ap.add_argument("--net", choices=("mnist", "cifar10", "all"), default="all",
                    help="ula_cnn, energy_cnn: which energy (jebm bench --net); CIFAR-10 takes minutes on a CPU")
    ap.add_argument("--only", default="", help="comma-separated sections to run: gmm, ula_cnn, energy_cnn (default: all)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--tf32", choices=("on", "off"), default="off",
                    help="TF32 tensor cores for CUDA convolutions and matmuls: off = strict FP32, like jebm's default "
                         "(on = PyTorch's default for convolutions; compare with jebm under JEBM_ALLOW_TF32=1)")
    ap.add_argument("--compare", action="append", default=[],
                    help="a `jebm bench` output file (repeatable): print jebm/torch ratios")
    args = ap.parse_args()
    sections = [s for s in args.only.split(",") if s] or ["gmm", "ula_cnn", "energy_cnn"]
    unknown = [s for s in sections if s not in ("gmm", "ula_cnn", "energy_cnn")]
    if unknown:
        sys.exit(f"torch_reference.py: --only: unknown section(s) {','.join(unknown)} (gmm, ula_cnn, energy_cnn)")
    tf32 = args.tf32 == "on"
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_reference.py: --device cuda but torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = []  # (section, name, batch, median_ms)
    if "gmm" in sections:
        s = GmmState(args.walkers, args.dim, dev, 1)
        u, g, _ = gmm_eval(s.x, s.a, s.z)
        rows.append(("gmm", "fused step", args.walkers, median_ms(lambda: gmm_fused_step(s, u, g), args.repeat * 20, dev)))
        s = GmmState(args.walkers, args.dim, dev, 2)
        rows.append(("gmm", "full iteration", args.walkers, median_ms(lambda: gmm_iteration(s), args.repeat * 20, dev)))
    if "ula_cnn" in sections:
        # jebm's mnist_defaults() and cifar10_defaults()
        if args.net != "cifar10":
            bench_image("mnist", mnist_net(), (1, 28, 28), 1024, 128, 5e-5, 1e-4, 0.0, 1.0, 6, 30, False, args, dev, rows)
        if args.net != "mnist":
            bench_image("cifar10", cifar_net(), (3, 32, 32), 4096, 512, 1.0, 1e-2, 0.3, 1000.0, 1, 60, True, args,
                        dev, rows)
    if "energy_cnn" in sections:
        if args.net != "cifar10":
            bench_energy_cnn("mnist", mnist_net(), (args.batch, 1, 28, 28), args, dev, rows)
        if args.net != "mnist":
            bench_energy_cnn("cifar", cifar_net(), (args.batch, 3, 32, 32), args, dev, rows)

    mode = ("tf32" if tf32 else "fp32") if dev.type == "cuda" else "fp32 (cpu)"
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    for sec, nm, b, ms in rows:
        print(json.dumps({"workload": f"{sec}/{nm}", "batch": b, "median_ms": round(ms, 4), "device": name,
                          "torch": torch.__version__, "repeat": args.repeat, "tf32": args.tf32, "math": mode}))
    print(f"\ntorch_reference.py on {name}, torch {torch.__version__}, median of {args.repeat}, "
          f"--tf32 {args.tf32} ({mode})")
    print(f"{'workload':36s} {'batch':>6s} {'median ms':>12s}")
    for sec, nm, b, ms in rows:
        print(f"{sec + '/' + nm:36s} {b:6d} {ms:12.3f}")
    if args.compare:
        jebm = {}
        for path in args.compare:
            try:
                jebm.update(read_jebm_table(path))
            except OSError as e:  # a jebm bench that did not run: its rows show as "-"
                print(f"torch_reference.py: --compare {path}: {e}", file=sys.stderr)
        print(f"\njebm / torch (from {', '.join(args.compare)}; torch --tf32 {args.tf32}; < 1 means jebm is faster)")
        print(f"{'workload':36s} {'jebm ms':>10s} {'torch ms':>10s} {'ratio':>8s}")
        for sec, nm, _, ms in rows:
            key = f"{sec}/{nm}"
            if key in jebm:
                print(f"{key:36s} {jebm[key]:10.3f} {ms:10.3f} {jebm[key] / ms:8.2f}")
            else:
                print(f"{key:36s} {'-':>10s} {ms:10.3f} {'-':>8s}")


if __name__ == "__main__":
    main()
