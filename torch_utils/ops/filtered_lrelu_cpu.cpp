// Fused CPU kernel for filtered_lrelu (float32, forward only): bias, polyphase upsampling (separable taps), leaky
// ReLU * gain, clamp, strided downsampling (separable or 2-D taps), one image plane at a time so that every
// intermediate stays in the per-core caches. Alias-Free GAN (arXiv 2106.12423), Sec. 3.2 and App. D.
//
// Steps per plane (no transposes; every inner loop is a vectorised axpy over a block of output columns):
//   1. upsample along H: output row j = sum_k g[k] * z[j + k], z = rows with up - 1 zero rows inserted (polyphase:
//      only the nonzero rows are visited);
//   2. upsample along W by polyphase: output column up*q + r only meets the taps k = k0(r) + up*t; each phase r is
//      a contiguous correlation over q, fused with leaky ReLU * gain + clamp, and is stored as its own plane (the
//      "deinterleaved by `down`" layout that step 3 needs; for up = 2 * down the phases are interleaved pairwise);
//   3. downsample: with stride `down` along W the taps become contiguous loads from the phase planes; a 2-D
//      (radial) fd is one direct strided correlation, a 1-D fd a W pass then an H pass with stride `down`.
// Only pybind11 is included (fast build); tensors travel as raw pointers (the Python wrapper checks dtype, device,
// contiguity and sizes).

#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <vector>

#include <atomic>
#include <thread>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int kVec = 8;                 // floats per vector (GCC/Clang vector extension; AVX2 with -march=native)
constexpr int kNumVec = 4;              // vectors accumulated in registers at once
constexpr int kBlock = kVec * kNumVec;  // output columns per block
typedef float vfloat __attribute__((vector_size(kVec * sizeof(float))));

inline vfloat load(const float* p) {  // unaligned load
    vfloat v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

// acc[q] += w * src[q*kVec : (q+1)*kVec] for q < NV.
template <int NV>
inline void axpy_block(vfloat* acc, float w, const float* src) {
    const vfloat wv = vfloat{} + w;
    for (int q = 0; q < NV; ++q) acc[q] += wv * load(src + q * kVec);
}

// Calls f(c0, std::integral_constant<int, NV>) over columns [0, L): blocks of kNumVec vectors, then one block of
// just enough vectors for the rest (so that a 36-column row costs 5 vectors, not 8). Columns up to the next
// multiple of kVec are computed (and stored) too; buffers have a whole block of slack.
template <typename F>
inline void for_blocks(int L, F&& f) {
    int c0 = 0;
    for (; c0 + kBlock <= L; c0 += kBlock) f(c0, std::integral_constant<int, kNumVec>{});
    switch ((L - c0 + kVec - 1) / kVec) {
        case 1: f(c0, std::integral_constant<int, 1>{}); break;
        case 2: f(c0, std::integral_constant<int, 2>{}); break;
        case 3: f(c0, std::integral_constant<int, 3>{}); break;
        case 4: f(c0, std::integral_constant<int, 4>{}); break;
        default: break;
    }
}

// Row stride of a buffer of rows of `len` floats: whole blocks plus slack, so full-block reads never overrun.
inline int stride(int len) { return (len + kBlock - 1) / kBlock * kBlock + kBlock; }

struct Epilogue {
    bool active;
    float slope, gain, clamp;  // clamp < 0: none
    // Applies leaky ReLU * gain and the clamp to NV vectors and stores them (rows are padded).
    template <int NV>
    inline void store(float* dst, const vfloat* acc) const {
        for (int q = 0; q < NV; ++q) {
            vfloat v = acc[q];
            if (active) {
                v = (v < 0.f) ? v * slope : v;
                v *= gain;
                if (clamp >= 0.f) {
                    const vfloat hi = vfloat{} + clamp, lo = vfloat{} - clamp;
                    v = (v > hi) ? hi : v;
                    v = (v < lo) ? lo : v;
                }
            }
            std::memcpy(dst + q * kVec, &v, sizeof(v));
        }
    }
};

// out[j][0:L] = epi(sum_k g[k] * z[down*j + k][0:L]), z[t] = in[(t - p0) / up] when (t - p0) % up == 0 and the
// row exists (else zeros). Whole blocks are computed; columns L .. end of the last block are zeroed.
void row_pass(const float* in, int n_in, int L, int in_stride, float* out, int n_out, int out_stride, const float* g,
              int K, int up, int down, int p0, const Epilogue& epi) {
    std::vector<const float*> rows(K);
    std::vector<float> taps(K);
    const int Lb = (L + kBlock - 1) / kBlock * kBlock;
    for (int j = 0; j < n_out; ++j) {
        int n = 0;
        for (int k = 0; k < K; ++k) {
            int t = down * j + k - p0;
            int r = t >= 0 ? t / up : -((-t + up - 1) / up);
            if (r * up != t || r < 0 || r >= n_in) continue;
            rows[n] = in + (int64_t)r * in_stride;
            taps[n] = g[k];
            ++n;
        }
        float* dst = out + (int64_t)j * out_stride;
        for_blocks(L, [&](int c0, auto nv) {
            constexpr int NV = decltype(nv)::value;
            vfloat accv[NV] = {};
            for (int i = 0; i < n; ++i) axpy_block<NV>(accv, taps[i], rows[i] + c0);
            epi.template store<NV>(dst + c0, accv);
        });
        for (int c = L; c < Lb; ++c) dst[c] = 0.f;
    }
}

// Upsampling along W of rows [R, W] (row stride is; in[r][-margin .. W + margin) readable, zeros outside [0, W)):
// y[m] = epi(sum_k g[k] * z[m + k]) for m < Wm, z[t] = in[(t - p0) / up] when divisible. Output stored
// deinterleaved by `down`: y[m] -> out[(m % down) * phase_stride + r * out_stride + m / down].
void col_up_pass(const float* in, int R, int is, float* out, int64_t phase_stride, int os, int Wm, const float* g, int K,
                 int up, int down, int p0, const Epilogue& epi, float* tmp) {
    for (int ph = 0; ph < up; ++ph) {
        const int Q = (Wm - ph + up - 1) / up;  // outputs m = up*q + ph < Wm
        if (Q <= 0) continue;
        const int k0 = ((p0 - ph) % up + up) % up;
        const int base = (ph + k0 - p0) / up;  // exact
        std::vector<float> taps;
        for (int k = k0; k < K; k += up) taps.push_back(g[k]);
        const int nt = (int)taps.size();
        for (int r = 0; r < R; ++r) {
            const float* src = in + (int64_t)r * is + base;
            const bool direct = up == down;
            float* dst = direct ? out + ph * phase_stride + (int64_t)r * os : tmp;
            for_blocks(Q, [&](int q0, auto nv) {
                constexpr int NV = decltype(nv)::value;
                vfloat accv[NV] = {};
                for (int t = 0; t < nt; ++t) axpy_block<NV>(accv, taps[t], src + q0 + t);
                epi.template store<NV>(dst + q0, accv);
            });
            if (!direct) {
                for (int q = 0; q < Q; ++q) {
                    const int m = up * q + ph;
                    out[(m % down) * phase_stride + (int64_t)r * os + m / down] = tmp[q];
                }
            }
        }
    }
}

// out[j][i] = sum_{b < kr, a < kc} g[b * kc + a] * Z[rdown*j + b][down*i + a], Z given deinterleaved by `down`:
// Z[r][down*c + p] = zp[p * phase_stride + r * row_stride + c]. Whole blocks of output columns are stored.
// When the taps are mirror-symmetric in b (radial filters are), the mirrored rows are added first (once per output
// row, for all columns) and only half the taps are applied: ~1.7x fewer operations. `sym` is scratch space of
// (kr / 2) * down * row_stride floats.
void pass_2d(const float* zp, int64_t phase_stride, int row_stride, float* out, int n_out_rows, int n_out_cols,
             int out_stride, const float* g, int kr, int kc, int rdown, int down, float* sym) {
    bool mirrored = kr >= 2 && sym != nullptr;
    for (int b = 0; b < kr / 2 && mirrored; ++b)
        for (int a = 0; a < kc; ++a) mirrored = mirrored && g[b * kc + a] == g[(kr - 1 - b) * kc + a];
    const int half = mirrored ? kr / 2 : 0;  // rows folded into `sym`
    std::vector<int64_t> offs((size_t)kr * kc);  // tap (b, a) -> offset relative to the output row's base
    std::vector<const float*> bases((size_t)kr);
    const int64_t sym_phase = (int64_t)half * row_stride;
    for (int b = 0; b < kr; ++b)
        for (int a = 0; a < kc; ++a) {
            const bool folded = b < half;
            offs[(size_t)b * kc + a] = (a % down) * (folded ? sym_phase : phase_stride) + a / down;
        }
    const int n_cols_in = (n_out_cols + kVec - 1) / kVec * kVec + (kc - 1) / down + 1;  // what for_blocks reads
    const Epilogue none{false, 0.f, 1.f, -1.f};
    for (int j = 0; j < n_out_rows; ++j) {
        float* dst = out + (int64_t)j * out_stride;
        const float* rowp = zp + (int64_t)(rdown * j) * row_stride;
        for (int b = 0; b < half; ++b) {  // sym[p][b][:] = Z_p[row b] + Z_p[row kr - 1 - b]
            for (int p = 0; p < down; ++p) {
                const float* r0 = rowp + p * phase_stride + (int64_t)b * row_stride;
                const float* r1 = rowp + p * phase_stride + (int64_t)(kr - 1 - b) * row_stride;
                float* o = sym + p * sym_phase + (int64_t)b * row_stride;
                for (int c = 0; c < n_cols_in; ++c) o[c] = r0[c] + r1[c];
            }
        }
        for (int b = 0; b < kr; ++b)
            bases[b] = b < half ? sym + (int64_t)b * row_stride : rowp + (int64_t)b * row_stride;
        const int b_end = kr - half;  // rows half .. kr - half - 1 are not folded (the middle one when kr is odd)
        for_blocks(n_out_cols, [&](int c0, auto nv) {
            constexpr int NV = decltype(nv)::value;
            vfloat accv[NV] = {};
            for (int b = 0; b < b_end; ++b) {
                const float* base = bases[b] + c0;
                const float* gb = g + b * kc;
                const int64_t* ob = offs.data() + (size_t)b * kc;
                for (int a = 0; a < kc; ++a) axpy_block<NV>(accv, gb[a], base + ob[a]);
            }
            none.template store<NV>(dst + c0, accv);
        });
    }
}

// x [P, H, W] (P = N*C planes), bias [C] or 0, gu [Ku] (1-D correlation taps incl. gain), gd [Kd] (1-D) or
// [Kd, Kd] (2-D, fd_2d) correlation taps; out [P, Ho, Wo]. Sizes are validated by the caller.
void filtered_lrelu_fwd(uintptr_t x_ptr, uintptr_t bias_ptr, uintptr_t gu_ptr, uintptr_t gd_ptr, uintptr_t out_ptr,
                        int P, int C, int H, int W, int Ku, int Kd_h, int Kd_w, bool fd_2d, int up, int down, int px0,
                        int py0, int Hm, int Wm, int Ho, int Wo, float slope, float gain, float clamp, int threads) {
    const float* x = reinterpret_cast<const float*>(x_ptr);
    const float* bias = reinterpret_cast<const float*>(bias_ptr);
    const float* gu = reinterpret_cast<const float*>(gu_ptr);
    const float* gd = reinterpret_cast<const float*>(gd_ptr);
    float* out = reinterpret_cast<float*>(out_ptr);
    const Epilogue none{false, 0.f, 1.f, -1.f};
    const Epilogue act{true, slope, gain, clamp};
    // Planes are handed out one at a time to `threads` workers: torch's own OpenMP team when built with OpenMP (see
    // _cpu_kernels.py), else plain std::threads; the calling thread is worker 0.
    std::atomic<int> next{0};
    auto worker = [&]() {
        // Per-thread plane buffers, zero-filled once: u1 rows keep zero margins (the W zero padding of step 2).
        const int margin = ((std::max(0, px0) + up - 1) / up + kBlock) / kVec * kVec;
        const int sW = stride(W);
        const int sU = margin + stride(std::max(W, Wm / up + 1) + Ku + margin);
        const int Lp = stride((Wm + down - 1) / down + Kd_w);  // phase-plane row stride
        const int64_t ps = (int64_t)(Hm + 1) * Lp;            // phase-plane size
        const int sWo = stride(Wo);
        std::vector<float> xb((size_t)(H + 1) * sW, 0.f), u1((size_t)(Hm + 1) * sU, 0.f);
        std::vector<float> u2((size_t)down * ps, 0.f), tmp(stride(Wm), 0.f);
        std::vector<float> d1(fd_2d ? 0 : (size_t)(Hm + 1) * sWo, 0.f), ob((size_t)(Ho + 1) * sWo, 0.f);
        std::vector<float> sym(fd_2d ? (size_t)down * (Kd_h / 2 + 1) * Lp : 0, 0.f);
        for (int p = next++; p < P; p = next++) {
            const float* xp = x + (int64_t)p * H * W;
            float* op = out + (int64_t)p * Ho * Wo;
            const float b = bias ? bias[p % C] : 0.f;
            for (int r = 0; r < H; ++r)
                for (int c = 0; c < W; ++c) xb[(size_t)r * sW + c] = xp[(int64_t)r * W + c] + b;
            // 1. Up along H: [H, W] -> [Hm, W] (rows of u1 start after the zero margin).
            row_pass(xb.data(), H, W, sW, u1.data() + margin, Hm, sU, gu, Ku, up, 1, py0, none);
            // 2. Up along W with the activation: phase planes of [Hm, Wm].
            col_up_pass(u1.data() + margin, Hm, sU, u2.data(), ps, Lp, Wm, gu, Ku, up, down, px0, act, tmp.data());
            // 3. Down.
            if (fd_2d) {
                pass_2d(u2.data(), ps, Lp, ob.data(), Ho, Wo, sWo, gd, Kd_h, Kd_w, down, down, sym.data());
            } else {
                pass_2d(u2.data(), ps, Lp, d1.data(), Hm, Wo, sWo, gd, 1, Kd_w, 1, down, nullptr);  // along W
                row_pass(d1.data(), Hm, Wo, sWo, ob.data(), Ho, sWo, gd, Kd_h, 1, down, 0, none);  // along H
            }
            for (int r = 0; r < Ho; ++r)
                std::memcpy(op + (int64_t)r * Wo, ob.data() + (size_t)r * sWo, sizeof(float) * Wo);
        }
    };
    pybind11::gil_scoped_release release;
    const int n_workers = std::max(1, std::min(threads, P));
#ifdef _OPENMP
    // Built against the OpenMP runtime torch itself uses (libgomp on Linux): the same worker threads as torch's
    // intra-op pool, so no second team spins next to it and no thread is created per call.
    if (n_workers > 1) {
#pragma omp parallel num_threads(n_workers)
        worker();
    } else {
        worker();
    }
#else
    std::vector<std::thread> pool;
    for (int t = 1; t < n_workers; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "Fused float32 CPU forward kernel of filtered_lrelu (see torch_utils/ops/filtered_lrelu.py).";
    m.def("filtered_lrelu_fwd", &filtered_lrelu_fwd);
}
