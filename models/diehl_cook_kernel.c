/* One presentation slot of the frozen Diehl & Cook network, every stream, fused into one loop over time.
 *
 * The same step as FrozenDiehlCook's tensor kernel (models/diehl_cook.py), in the same order and with the same
 * expressions: membrane update with the step-start conductances, conductance decay, thresholds, input spikes
 * (replayed, or drawn per lit pixel with a per-stream xoshiro256+ generator), synaptic events in input order,
 * resets.  A network is one or more ensembles (input -> exc <-> inh each), joined by cross-modal exc -> exc
 * projections; their neurons lie side by side in every state array (ensemble e at [off, off + n_exc)).
 * A stream's whole state (2 x 6 x n_total doubles) stays in the core's cache for the slot's steps_per_slot
 * steps; streams run on OpenMP threads, each with its own generator, so the result does not depend on the
 * number of threads.
 *
 * Built once per machine by models/_kernel.py with the flags the Brian2 engine compiles its C++ with.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <xmmintrin.h>

#if defined(__GLIBC__) && defined(__x86_64__) && !defined(__FAST_MATH__)
/* glibc declares its vector exp (libmvec) only under the full -ffast-math; Brian2's flags keep infinities
 * (-fno-finite-math-only), so declare it here: the membrane loops then call exp on 8 lanes at a time */
__attribute__((simd("notinbranch"))) double exp(double);
#endif

#define MAX_ENS 4
#define MAX_CROSS 12

typedef struct { /* one ensemble: its neurons, inputs, weights and constants */
    int64_t n_exc, n_input, off, in_off, w_off, ref_e, ref_i;
    /* what adds to the excitatory conductance, in Brian2's order (its pathways sorted by name): -1 the
     * ensemble's input, c >= 0 cross projection c */
    int64_t n_sources, sources[MAX_CROSS + 1];
    double spike_gap;
    /* membrane constants (s, V) and step_mean factors, per population: exc, inh */
    double tau[2], e_exc[2], e_inh[2], v_leak[2], ge_mean[2], gi_mean[2], v_reset[2];
    double decay_ge[2], decay_gi[2];
    double v_thresh_i, w_exc_inh, w_inh_exc;
} Ens;

typedef struct { /* a cross-modal projection: src's excitatory spikes add rows of gain * w (n_src, n_dst) */
    int64_t src, dst, w_off;
} Cross;

typedef struct {
    int64_t n_streams, n_ens, n_cross, n_total, steps, step0;
    double dt, t_slot, t_present;
    int64_t rec_in_cap, rec_ex_cap;
    int64_t n_threads;
    Ens ens[MAX_ENS];
    Cross cross[MAX_CROSS];
} Params;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline double uniform(uint64_t *s) { /* xoshiro256+, top 53 bits */
    uint64_t r = s[0] + s[3], t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return (double)(r >> 11) * 0x1.0p-53;
}

/* Brian2's exponential-Euler membrane update (its generated expression, term by term); the constants are locals
 * (read through a pointer, the compiler would have to assume the state arrays alias them and divide again for
 * every neuron) */
#define MEMBRANE(v, ge, gi, k)                                                                                \
    ({                                                                                                        \
        const double ba_ = (e_exc##k * ge_mean##k * (ge) / tau##k + e_inh##k * gi_mean##k * (gi) / tau##k +   \
                            v_leak##k / tau##k) /                                                             \
                           (-ge_mean##k * (ge) / tau##k - gi_mean##k * (gi) / tau##k - 1.0 / tau##k);         \
        -ba_ + (ba_ + (v)) * exp(dt * (-ge_mean##k * (ge) / tau##k - gi_mean##k * (gi) / tau##k - 1.0 / tau##k)); \
    })

/* The groups of ensemble E for one step (inhibitory, then excitatory: state update, decay, threshold, reset,
 * and the exc <-> inh events of the step, which arrive after the decay); returns the step's excitatory spikes.
 * ve..li point at the ensemble's neurons of this stream, act / n_act its inhibitory neurons not at rest. */
static inline int64_t ensemble_step(const Ens *E, const double t, const double dt, double *ve, double *vi,
                                    double *gee, double *gie, double *gei, double *gii, double *le, double *li,
                                    const double *v_fire, int8_t *quiet, int *act, int *n_act_p, int *fired_i,
                                    double *si, double *nv, int32_t *cnt) {
    const int N = (int)E->n_exc;
    const double ref_e = (double)E->ref_e, ref_i = (double)E->ref_i, spike_gap = E->spike_gap;
    const double tau0 = E->tau[0], e_exc0 = E->e_exc[0], e_inh0 = E->e_inh[0], v_leak0 = E->v_leak[0];
    const double ge_mean0 = E->ge_mean[0], gi_mean0 = E->gi_mean[0];
    const double tau1 = E->tau[1], e_exc1 = E->e_exc[1], e_inh1 = E->e_inh[1], v_leak1 = E->v_leak[1];
    const double ge_mean1 = E->ge_mean[1], gi_mean1 = E->gi_mean[1];
    const double dge0 = E->decay_ge[0], dgi0 = E->decay_gi[0], dge1 = E->decay_ge[1], dgi1 = E->decay_gi[1];
    const double v_reset0 = E->v_reset[0], v_reset1 = E->v_reset[1], v_thresh_i = E->v_thresh_i;
    const double w_exc_inh = E->w_exc_inh, w_inh_exc = E->w_inh_exc;
    int n_act = *n_act_p, n_fired_i = 0;
    /* inhibitory group: state update, conductance decay, threshold, reset -- of the neurons not at rest.
     * A neuron whose update left it unchanged with no conductance (v at the update's fixed point, not
     * refractory) stays so until its excitatory partner fires: it leaves the list, which is exact. */
    double n_si = 0.0;
    for (int q = 0; q < n_act; q++) {
        const int j = act[q];
        const double nr = floor((t - li[j] + 1e-3 * dt) / dt) >= ref_i;
        const double nvj = MEMBRANE(vi[j], gei[j], gii[j], 1);
        const double v = nr ? nvj : vi[j]; /* frozen while refractory */
        const double v_old = vi[j];
        gei[j] *= dge1;
        gii[j] *= dgi1;
        const int s = (v > v_thresh_i) && nr;
        li[j] = s ? t : li[j];
        vi[j] = s ? v_reset1 : v;
        if (s) {
            si[j] = 1.0;
            fired_i[n_fired_i++] = j;
            n_si += 1.0;
        } else if (nr && v == v_old && gei[j] == 0.0 && gii[j] == 0.0) {
            quiet[j] = 1; /* at rest: swap out of the list, look at the swapped-in neuron next */
            act[q--] = act[--n_act];
        }
    }
    /* excitatory group: the same, then the inhibitory spikes (all but its partner) and its own spike to its
     * inhibitory partner, which both arrive after the decay of this step */
    int64_t n_se_step = 0;
#pragma omp simd
    for (int j = 0; j < N; j++) nv[j] = MEMBRANE(ve[j], gee[j], gie[j], 0);
#pragma omp simd reduction(+ : n_se_step)
    for (int j = 0; j < N; j++) {
        const double nr = floor((t - le[j] + 1e-3 * dt) / dt) >= ref_e;
        const double v = nr ? nv[j] : ve[j];
        gee[j] *= dge0;
        gie[j] = gie[j] * dgi0 + w_inh_exc * (n_si - si[j]);
        const int s = (v > v_fire[j]) && ((t - le[j]) > spike_gap) && nr;
        gei[j] = gei[j] + w_exc_inh * (double)s; /* a quiet partner holds 0 here: 0 * decay = 0 */
        le[j] = s ? t : le[j];
        ve[j] = s ? v_reset0 : v;
        cnt[j] += s;
        n_se_step += s;
    }
    if (n_se_step) { /* the partners of this step's spikes leave rest */
        for (int j = 0; j < N; j++)
            if (le[j] == t && quiet[j]) {
                quiet[j] = 0;
                act[n_act++] = j;
            }
    }
    for (int q = 0; q < n_fired_i; q++) si[fired_i[q]] = 0.0;
    *n_act_p = n_act;
    return n_se_step;
}

/* state: v_e, v_i, ge_e, gi_e, ge_i, gi_i, last_e, last_i, each (n_streams, n_total).
 * w: every ensemble's input weights (n_input, n_exc) at its w_off; cw: every cross projection's gain * w at its
 * w_off.  Input, per (stream, ensemble) pair p = b * n_ens + e: lit_ptr (n_streams * n_ens + 1) into lit_idx /
 * lit_p (the pair's lit inputs, ascending, and their per-step firing probability), rng (n_streams, 4); or, when
 * rp_ptr is not NULL, replayed spikes: pair p's are rp_step / rp_idx [rp_ptr[p], rp_ptr[p + 1]) sorted by step,
 * consumed from rp_pos[p].
 * active (n_streams; NULL: all) marks the streams to run; counts (n_streams, n_total) accumulate the slot's
 * excitatory spikes.  Recording (when rec_in_n / rec_ex_n are not NULL): pairs (step, index) appended per stream
 * up to the capacity (indices into the concatenated inputs / neurons); the returned count may exceed it
 * (overflow).  Returns 0. */
int dc_slot(const Params *P, double *v_e, double *v_i, double *ge_e, double *gi_e, double *ge_i, double *gi_i,
            double *last_e, double *last_i, const double *w, const double *cw, const double *v_fire,
            const int64_t *lit_ptr, const int64_t *lit_idx, const double *lit_p, uint64_t *rng,
            const int64_t *rp_ptr, const int64_t *rp_step, const int64_t *rp_idx, int64_t *rp_pos,
            const int8_t *active, int8_t *inh_quiet, int32_t *counts, int64_t *rec_in_n, int64_t *rec_in,
            int64_t *rec_ex_n, int64_t *rec_ex) {
    const int64_t B = P->n_streams, n_ens = P->n_ens;
    const int NT = (int)P->n_total;
    const double dt = P->dt, t_slot = P->t_slot, t_present = P->t_present;
    const int64_t steps = P->steps, step0 = P->step0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(P->n_threads)
    for (int64_t b = 0; b < B; b++) {
        if (active && !active[b]) continue; /* a stream with nothing left to show */
        /* denormals flushed to zero, as in Brian2's standalone binaries (linked with -ffast-math) */
        const unsigned csr = _mm_getcsr();
        _mm_setcsr(csr | 0x8040); /* FTZ, DAZ */
        double *ve = v_e + b * NT, *vi = v_i + b * NT, *gee = ge_e + b * NT, *gie = gi_e + b * NT;
        double *gei = ge_i + b * NT, *gii = gi_i + b * NT, *le = last_e + b * NT, *li = last_i + b * NT;
        int32_t *cnt = counts + b * NT;
        int8_t *quiet = inh_quiet + b * NT;
        /* the stream's generator state in a local copy: in the shared (n_streams, 4) array two streams share a
         * cache line, and every draw of one thread would evict the other's */
        uint64_t rs_local[4] = {0, 0, 0, 0}, *rs = rs_local;
        if (rng) memcpy(rs_local, rng + 4 * b, sizeof rs_local);
        double si[NT], nv[NT]; /* nv: every neuron's membrane update, in a loop of its own (a vector exp) */
        /* per ensemble, its inhibitory neurons not at rest (act at the ensemble's offset); quiet (n_streams,
         * n_total) carries who is at rest between calls */
        int act[NT], fired_i[NT], n_act[MAX_ENS];
        int64_t n_se[MAX_ENS];
        for (int64_t e = 0; e < n_ens; e++) {
            const int off = (int)P->ens[e].off;
            n_act[e] = 0;
            for (int j = 0; j < (int)P->ens[e].n_exc; j++) {
                si[off + j] = 0.0;
                if (!quiet[off + j]) act[off + n_act[e]++] = j;
            }
        }
        for (int64_t k = 0; k < steps; k++) {
            const int64_t step = step0 + k;
            const double t = step * dt;
            for (int64_t e = 0; e < n_ens; e++) {
                const Ens *E = &P->ens[e];
                const int64_t o = E->off;
                n_se[e] = ensemble_step(E, t, dt, ve + o, vi + o, gee + o, gie + o, gei + o, gii + o, le + o, li + o,
                                        v_fire + o, quiet + o, act + o, &n_act[e], fired_i + o, si + o, nv + o,
                                        cnt + o);
                if (n_se[e] && rec_ex_n) {
                    for (int j = 0; j < (int)E->n_exc; j++) {
                        if (le[o + j] == t) {
                            const int64_t m = rec_ex_n[b]++;
                            if (m < P->rec_ex_cap) {
                                rec_ex[(b * P->rec_ex_cap + m) * 2] = step;
                                rec_ex[(b * P->rec_ex_cap + m) * 2 + 1] = o + j;
                            }
                        }
                    }
                }
            }
            const int presenting = (t - t_slot * floor(t / t_slot + 1e-6)) < t_present;
            /* synaptic events onto each ensemble's excitatory conductance, source by source in Brian2's order */
            for (int64_t e = 0; e < n_ens; e++) {
                const Ens *E = &P->ens[e];
                const int N = (int)E->n_exc;
                double *g = gee + E->off;
                for (int64_t q = 0; q < E->n_sources; q++) {
                    const int64_t src = E->sources[q];
                    if (src >= 0) { /* cross projection: the source ensemble's spikes of this step, in order */
                        const Cross *C = &P->cross[src];
                        const Ens *S = &P->ens[C->src];
                        if (!n_se[C->src]) continue;
                        for (int i = 0; i < (int)S->n_exc; i++) {
                            if (le[S->off + i] != t) continue;
                            const double *row = cw + C->w_off + (int64_t)i * N;
#pragma omp simd
                            for (int j = 0; j < N; j++) g[j] += row[j];
                        }
                        continue;
                    }
                    /* the ensemble's input spikes, each adding its weight row in input order */
                    const int64_t pe = b * n_ens + e;
                    const double *we = w + E->w_off;
                    if (rp_ptr) {
                        int64_t p = rp_pos[pe];
                        const int64_t end = rp_ptr[pe + 1];
                        for (; p < end && rp_step[p] == step; p++) {
                            const double *row = we + rp_idx[p] * N;
#pragma omp simd
                            for (int j = 0; j < N; j++) g[j] += row[j];
                        }
                        rp_pos[pe] = p;
                    } else if (presenting) {
                        for (int64_t p = lit_ptr[pe]; p < lit_ptr[pe + 1]; p++) {
                            if (uniform(rs) < lit_p[p]) {
                                const double *row = we + lit_idx[p] * N;
#pragma omp simd
                                for (int j = 0; j < N; j++) g[j] += row[j];
                                if (rec_in_n) {
                                    const int64_t m = rec_in_n[b]++;
                                    if (m < P->rec_in_cap) {
                                        rec_in[(b * P->rec_in_cap + m) * 2] = step;
                                        rec_in[(b * P->rec_in_cap + m) * 2 + 1] = E->in_off + lit_idx[p];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if (rng) memcpy(rng + 4 * b, rs_local, sizeof rs_local);
        _mm_setcsr(csr);
    }
    return 0;
}
