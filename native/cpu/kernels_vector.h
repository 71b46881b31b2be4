// The vector types and loads the kernel bodies are written in, sized to the instruction set the including file is
// compiled for: one native register each (64 bytes with AVX-512, 32 with AVX2, 16 with SSE2 or another target's
// baseline). Not a public header: kernels_impl.h includes it.
//
// Wider-than-native GCC vectors are no shortcut: with AVX2, GCC 12 kept 64-byte vectors on the stack and moved them
// through general registers between every FMA (8 doubles per loop iteration cost ~60 instructions), which is what
// made the AVX2 sweep 4x slower per element than the AVX-512 one.
#include <cstddef>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define SN_VECTOR_BYTES 64
#elif defined(__AVX__)
#define SN_VECTOR_BYTES 32
#else
#define SN_VECTOR_BYTES 16
#endif

namespace {

typedef float vf __attribute__((vector_size(SN_VECTOR_BYTES)));
typedef double vd __attribute__((vector_size(SN_VECTOR_BYTES)));
constexpr size_t kFloatLanes = SN_VECTOR_BYTES / sizeof(float);
constexpr size_t kDoubleLanes = SN_VECTOR_BYTES / sizeof(double);

// Unaligned loads and stores: typed arrays carry no alignment promise.
__attribute__((always_inline)) inline vf load_vf(const float* p) {
  vf r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
__attribute__((always_inline)) inline void store_vf(float* p, vf x) { std::memcpy(p, &x, sizeof x); }
__attribute__((always_inline)) inline vd load_vd(const double* p) {
  vd r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
__attribute__((always_inline)) inline void store_vd(double* p, vd x) { std::memcpy(p, &x, sizeof x); }

// kDoubleLanes floats, widened: one conversion with a memory operand.
__attribute__((always_inline)) inline vd load_vd(const float* p) {
#if defined(__AVX512F__)
  return reinterpret_cast<vd>(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
#elif defined(__AVX__)
  return reinterpret_cast<vd>(_mm256_cvtps_pd(_mm_loadu_ps(p)));
#elif defined(__SSE2__)
  return reinterpret_cast<vd>(_mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
#else
  typedef float half __attribute__((vector_size(SN_VECTOR_BYTES / 2)));
  half h;
  std::memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, vd);
#endif
}

// A float vector as two double vectors: its low and high halves.
__attribute__((always_inline)) inline void widen(vf s, vd& lo, vd& hi) {
#if defined(__AVX512F__)
  lo = reinterpret_cast<vd>(_mm512_cvtps_pd(_mm512_castps512_ps256(reinterpret_cast<__m512>(s))));
  hi = reinterpret_cast<vd>(_mm512_cvtps_pd(_mm512_extractf32x8_ps(reinterpret_cast<__m512>(s), 1)));
#elif defined(__AVX__)
  lo = reinterpret_cast<vd>(_mm256_cvtps_pd(_mm256_castps256_ps128(reinterpret_cast<__m256>(s))));
  hi = reinterpret_cast<vd>(_mm256_cvtps_pd(_mm256_extractf128_ps(reinterpret_cast<__m256>(s), 1)));
#elif defined(__SSE2__)
  lo = reinterpret_cast<vd>(_mm_cvtps_pd(reinterpret_cast<__m128>(s)));
  hi = reinterpret_cast<vd>(_mm_cvtps_pd(_mm_movehl_ps(reinterpret_cast<__m128>(s), reinterpret_cast<__m128>(s))));
#else
  typedef float half __attribute__((vector_size(SN_VECTOR_BYTES / 2)));
  half h[2];
  std::memcpy(h, &s, sizeof s);
  lo = __builtin_convertvector(h[0], vd);
  hi = __builtin_convertvector(h[1], vd);
#endif
}

__attribute__((always_inline)) inline vf splat_vf(float x) {
  vf r;
  for (size_t k = 0; k < kFloatLanes; ++k) r[k] = x;
  return r;
}
__attribute__((always_inline)) inline vd splat_vd(double x) {
  vd r;
  for (size_t k = 0; k < kDoubleLanes; ++k) r[k] = x;
  return r;
}

// Σ of a double vector's lanes, pairwise in a fixed order.
__attribute__((always_inline)) inline double lane_sum(vd a) {
  double s[kDoubleLanes];
  std::memcpy(s, &a, sizeof a);
  for (size_t width = kDoubleLanes / 2; width > 0; width /= 2) {
    for (size_t k = 0; k < width; ++k) s[k] += s[k + width];
  }
  return s[0];
}

// The float64 kernels' unit: 8 doubles, the lane count (and so the summation order) the float64 results were first
// defined with, as one, two or four native registers.
constexpr size_t kParts = 8 / kDoubleLanes;
struct f64x8 {
  vd part[kParts];
};

__attribute__((always_inline)) inline f64x8 zero8() {
  f64x8 r;
  for (size_t k = 0; k < kParts; ++k) r.part[k] = vd{};
  return r;
}
__attribute__((always_inline)) inline f64x8 splat8(double x) {
  f64x8 r;
  for (size_t k = 0; k < kParts; ++k) r.part[k] = splat_vd(x);
  return r;
}
__attribute__((always_inline)) inline f64x8 load8(const double* p) {
  f64x8 r;
  for (size_t k = 0; k < kParts; ++k) r.part[k] = load_vd(p + k * kDoubleLanes);
  return r;
}
__attribute__((always_inline)) inline f64x8 load8(const float* p) {
  f64x8 r;
  for (size_t k = 0; k < kParts; ++k) r.part[k] = load_vd(p + k * kDoubleLanes);
  return r;
}
__attribute__((always_inline)) inline void store8(double* p, const f64x8& x) {
  for (size_t k = 0; k < kParts; ++k) store_vd(p + k * kDoubleLanes, x.part[k]);
}
__attribute__((always_inline)) inline f64x8 operator+(const f64x8& a, const f64x8& b) {
  f64x8 r;
  for (size_t k = 0; k < kParts; ++k) r.part[k] = a.part[k] + b.part[k];
  return r;
}
__attribute__((always_inline)) inline f64x8 operator*(const f64x8& a, const f64x8& b) {
  f64x8 r;
  for (size_t k = 0; k < kParts; ++k) r.part[k] = a.part[k] * b.part[k];
  return r;
}
// acc + a·b, written so that each part contracts to one FMA where the target has it, as `acc += a * b` did.
__attribute__((always_inline)) inline void add_product(f64x8& acc, const f64x8& a, const f64x8& b) {
  for (size_t k = 0; k < kParts; ++k) acc.part[k] += a.part[k] * b.part[k];
}

// ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)): a fixed order, whatever the register width.
__attribute__((always_inline)) inline double horizontal_sum(const f64x8& a) {
  double s[8];
  std::memcpy(s, a.part, sizeof s);
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

}  // namespace
