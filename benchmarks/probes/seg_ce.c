/* Cross-entropy of bilinearly upsampled segmentation logits, value and gradient in one pass.
 *
 * Computes, for one image, what the eager PyTorch expression
 *     F.cross_entropy(F.interpolate(z, size=(H, W), mode="bilinear", align_corners=False),
 *                     labels, ignore_index=ignore, reduction="sum")
 * and its gradient with respect to z compute, without materialising the [K, H, W] upsampled
 * logits: PyTorch makes six passes over them in memory (interpolate, log-softmax, their two
 * backwards, two zero fills), which made the loss of DINOv2's linear probe cost more than the
 * ViT forward it replaces.  Here each output row is interpolated into a small buffer, each pixel's
 * K logits go through max / exp / sum in registers, and the gradient is scattered back to the
 * row buffer and then to the low-resolution grid, so memory traffic is the size of the inputs.
 * benchmarks/probes/fused_ce.py calls it per image from a thread pool and checks it against the
 * PyTorch expression in tests/benchmarks/probes/test_fused_ce.py.
 *
 * Source coordinates follow PyTorch's CPU kernel for align_corners=False without a scale factor
 * (area_pixel_compute_source_index and compute_indices_weights_linear): scale = in / out in float,
 * src = max(scale * (dst + 0.5) - 0.5, 0), i0 = floor(src), i1 = i0 + (i0 < in - 1),
 * l1 = clamp(src - i0, 0, 1), l0 = 1 - l1.
 *
 * Symbols: z [h][w][K] logits (channels last), labels [H][W] (uint8), g [h][w][K] gradient of
 * the summed loss times `scale` (so the caller's mean needs no second pass), K classes, padded
 * to Kp in the row buffers.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void coords(int in, int out, int dst, int *i0, int *i1, float *l0, float *l1)
{
    float scale = (float)in / (float)out;
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0.f)
        src = 0.f;
    int i = (int)src;
    float l = src - (float)i;
    l = l < 0.f ? 0.f : (l > 1.f ? 1.f : l);
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = l;
    *l0 = 1.f - l;
}

#define LANES 16   /* classes are padded to a multiple of this so every inner loop is whole vectors */
#define PAD_LOGIT -1e30f  /* a padded class: finite, and its exponential is 2^-126, nothing beside the sum's >= 2^-56 */
#define LOG2E 1.44269504088896341f  /* row buffers hold logits in base 2: 2^t needs no range reduction */
#define LN2 0.69314718055994531


/* 2^t for t in [-126, 0] (arguments are a logit minus the pixel's shift, in base 2, clamped):
 * n = round(t), f = t - n in [-1/2, 1/2] (exact in float), a degree-6 polynomial for 2^f
 * (least-squares fit on Chebyshev nodes, weighted for relative error: 1.9e-9 in exact
 * arithmetic) and 2^n written into the exponent bits.  Relative error below 2e-7 in float
 * (tests/benchmarks/probes/test_fused_ce.py, against float64).  Inline and branch-free, so the
 * compiler vectorises it inside the class loop; glibc's vector expf was a call per vector with a
 * scalar path for large negative inputs. */
static inline float exp2_nonpositive(float t)
{
    float n = rintf(t);
    float f = t - n;
    float p = 1.5337577497120947e-4f;
    p = p * f + 1.3399859890341759e-3f;
    p = p * f + 9.6185198053717610e-3f;
    p = p * f + 5.5503290146589280e-2f;
    p = p * f + 2.4022646248340607e-1f;
    p = p * f + 6.9314718246459960e-1f;
    p = p * f + 1.f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

/* Returns 0, 1 when a label is neither below K nor `ignore` (its flat index in *bad), or 2 when
 * out of memory.  *loss receives the summed loss over the non-ignored pixels, in double. */
int seg_ce_image(const float *z, const uint8_t *labels, float *g, int h, int w, int K, int H, int W,
                 int ignore, float scale, double *loss, int64_t *bad)
{
    const int Kp = (K + LANES - 1) / LANES * LANES;
    const size_t n_row = (size_t)w * Kp;
    int *x0 = malloc(sizeof(int) * W), *x1 = malloc(sizeof(int) * W);
    float *lx0 = malloc(sizeof(float) * W), *lx1 = malloc(sizeof(float) * W);
    float *row = malloc(sizeof(float) * n_row), *grow = malloc(sizeof(float) * n_row);
    float *e = malloc(sizeof(float) * Kp), *colmax = malloc(sizeof(float) * w);
    int status = 0;
    if (!x0 || !x1 || !lx0 || !lx1 || !row || !grow || !e || !colmax) {
        status = 2;
        goto done;
    }
    for (int x = 0; x < W; x++)
        coords(w, W, x, &x0[x], &x1[x], &lx0[x], &lx1[x]);
    for (size_t i = 0; i < n_row; i++)
        row[i] = PAD_LOGIT;
    memset(g, 0, sizeof(float) * (size_t)h * w * K);
    double total = 0.0;
    for (int y = 0; y < H; y++) {
        int y0, y1;
        float ly0, ly1;
        coords(h, H, y, &y0, &y1, &ly0, &ly1);
        const float *a = z + (size_t)y0 * w * K, *b = z + (size_t)y1 * w * K;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < K; k++)
                row[(size_t)x * Kp + k] = (ly0 * a[(size_t)x * K + k] + ly1 * b[(size_t)x * K + k]) * LOG2E;
        for (int x = 0; x < w; x++) {
            float m = PAD_LOGIT;
            for (int k = 0; k < K; k++)
                m = row[(size_t)x * Kp + k] > m ? row[(size_t)x * Kp + k] : m;
            colmax[x] = m;
        }
        memset(grow, 0, sizeof(float) * n_row);
        int touched = 0;
        for (int x = 0; x < W; x++) {
            int lab = labels[(size_t)y * W + x];
            if (lab == ignore)
                continue;
            if (lab >= K) {
                *bad = (int64_t)y * W + x;
                status = 1;
                goto done;
            }
            touched = 1;
            const float *restrict p = row + (size_t)x0[x] * Kp, *restrict q = row + (size_t)x1[x] * Kp;
            float *restrict ev = e;
            float c0 = lx0[x], c1 = lx1[x];
            /* shift by an upper bound of this pixel's logits (each is a convex combination of
             * the two columns'), so the exponentials need no separate pass for the maximum; when
             * the bound is far above the true maximum the sum gets tiny, and the pixel is redone
             * with the exact maximum */
            float m = colmax[x0[x]] > colmax[x1[x]] ? colmax[x0[x]] : colmax[x1[x]];
            float zy = c0 * p[lab] + c1 * q[lab], s = 0.f;
            for (int k = 0; k < Kp; k++) {
                ev[k] = exp2_nonpositive(fmaxf(c0 * p[k] + c1 * q[k] - m, -126.f));
                s += ev[k];
            }
            if (s < 1.3877788e-17f) {   /* 2^-56 */
                m = PAD_LOGIT;
                for (int k = 0; k < Kp; k++) {
                    float v = c0 * p[k] + c1 * q[k];
                    m = v > m ? v : m;
                }
                s = 0.f;
                for (int k = 0; k < Kp; k++) {
                    ev[k] = exp2_nonpositive(fmaxf(c0 * p[k] + c1 * q[k] - m, -126.f));
                    s += ev[k];
                }
            }
            total += log((double)s) + ((double)m - (double)zy) * LN2;
            float r = scale / s;
            ev[lab] -= s;                 /* softmax minus one-hot, before the common factor */
            if (x0[x] == x1[x]) {         /* right edge: both weights land on one column */
                float *restrict gp = grow + (size_t)x0[x] * Kp;
                float c = (c0 + c1) * r;
                for (int k = 0; k < Kp; k++)
                    gp[k] += c * ev[k];
            } else {
                float *restrict gp = grow + (size_t)x0[x] * Kp, *restrict gq = grow + (size_t)x1[x] * Kp;
                float d0 = c0 * r, d1 = c1 * r;
                for (int k = 0; k < Kp; k++) {
                    gp[k] += d0 * ev[k];
                    gq[k] += d1 * ev[k];
                }
            }
        }
        if (!touched)
            continue;
        float *ga = g + (size_t)y0 * w * K, *gb = g + (size_t)y1 * w * K;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < K; k++) {
                ga[(size_t)x * K + k] += ly0 * grow[(size_t)x * Kp + k];
                gb[(size_t)x * K + k] += ly1 * grow[(size_t)x * Kp + k];
            }
    }
    *loss = total;
done:
    free(x0); free(x1); free(lx0); free(lx1); free(row); free(grow); free(e); free(colmax);
    return status;
}
