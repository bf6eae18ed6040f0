/* flt_head.h - description of the trainable float32 head and its flat parameter layout.
 *
 * Contract
 * - What: a head is a stack of 1..FLT_HEAD_MAX_LAYERS layers ending in a loss (softmax
 *   cross-entropy over integer labels, or MSE over float targets). Layer l consumes
 *   layers[l].in_size floats and produces layers[l].out_size; layers[l+1].in_size must equal
 *   layers[l].out_size. Layer 0 consumes the backbone's output (its input gradient is never
 *   computed: the backbone is frozen). Layer kinds (flt_layer_t.kind):
 *     FLT_LAYER_DENSE  (0)  y = act(W x + b)                           flt_dense.h
 *     FLT_LAYER_CONV1D (1)  1-D convolution, channels-last, zero pad   flt_conv1d.h
 *     FLT_LAYER_GAP1D  (2)  mean over time [len][ch] -> [ch], no params flt_gap1d.h
 *   A layer whose kind and geometry fields are all zero is a dense layer exactly as before
 *   these kinds existed, so callers that only set in_size/out_size/act keep working.
 * - Geometry (checked by flt_head_check; fields not listed for a kind must be 0):
 *     DENSE   in_size, out_size, act.
 *     CONV1D  in_ch, out_ch, kernel, stride, pad_left; in_len = in_size / in_ch and
 *             out_len = out_size / out_ch (both exact). The right padding is implied:
 *             pad_right = (out_len-1)*stride + kernel - in_len - pad_left (signed) and must
 *             satisfy -stride < pad_right <= min(pad_left + 1, kernel - 1): no further window
 *             fits, at most one more zero on the right than on the left (TensorFlow 'same'
 *             puts the odd zero there), and every window overlaps the input. Keras 'same'
 *             (pad_left = total/2) and 'valid' (pad_left = 0) both satisfy it.
 *     GAP1D   act NONE; ch = out_size, len = in_size / out_size (exact); in_ch and out_ch
 *             may be 0 or equal to ch.
 * - Flat parameter vector (this is what the delta pipeline diffs; never change the order):
 *     for l = 0 .. n_layers-1:
 *         DENSE   W_l row-major [out_size][in_size] (W_l[j][k] multiplies input k into
 *                 output j), then b_l [out_size]             -> in*out + out floats
 *         CONV1D  W_l [out_ch][kernel][in_ch] (W_l[o][k][c] multiplies x[t*stride+k-pad_left][c]
 *                 into y[t][o]), then b_l [out_ch]           -> out_ch*kernel*in_ch + out_ch
 *         GAP1D   nothing                                    -> 0
 *   i.e. layer l starts at flt_head_param_offset(head, l) = sum_{i<l} flt_layer_n_params(i).
 *   Gradient vectors and the momentum (optimizer state) use the same layout.
 * - Activations: the forward pass stores each layer's output (after the activation) one
 *   after the other: layer l's output starts at flt_head_act_offset(head, l) = sum_{i<l}
 *   out_i, n_acts = sum of all out_size. The network output is the last out_size floats.
 *   Conv and pooling activations are stored channels-last, [len][ch].
 * - Sizes for static buffers (see flt_train_sizes): with P = n_params, A = n_acts and
 *   Wmax = max out_size over the layers,
 *     training workspace  FLT_TRAIN_WORK_FLOATS(P, A, Wmax) = P + A + 2*Wmax floats
 *                         (batch gradient, activations, two backward delta buffers)
 *     optimizer state     FLT_TRAIN_OPT_STATE_FLOATS(P) = P floats (momentum)
 *     sample order        n_samples uint32_t (the epoch shuffle)
 *   Why Wmax is the largest out_size and not the largest in/out size: the backward pass
 *   holds dL/dz of layer l (out_size_l floats) and writes dL/da of layer l-1 (in_size_l ==
 *   out_size_{l-1} floats) only for l > 0; layer 0's input gradient is never formed. So
 *   the largest in_size that is ever a buffer length is some out_size, and heads without
 *   conv layers keep exactly the sizes they had. Example, har-tiny with the float tail
 *   (conv 64x8 -> 32x16, k5 s2, GAP, dense 16-16-6): P = 656 + 0 + 272 + 102 = 1030,
 *   A = 512 + 16 + 16 + 6 = 550, Wmax = 512, work = 1030 + 550 + 1024 = 2604 floats.
 *   The Python oracle tests/oracles/train.py mirrors this in train_sizes (dense heads).
 * - Validation (flt_head_check), the first failing rule decides: NULL -> FLT_ERR_ARG;
 *   n_layers 0 -> FLT_ERR_SHAPE; n_layers > FLT_HEAD_MAX_LAYERS -> FLT_ERR_RANGE; unknown
 *   loss -> FLT_ERR_UNSUPPORTED; then per layer: unknown kind or activation, or a GAP1D
 *   with act != NONE -> FLT_ERR_UNSUPPORTED; a size 0 or > FLT_HEAD_MAX_WIDTH -> FLT_ERR_RANGE;
 *   CONV1D in_ch / out_ch / stride 0 or > FLT_HEAD_MAX_WIDTH, kernel 0 or >
 *   FLT_HEAD_MAX_KERNEL, pad_left >= kernel -> FLT_ERR_RANGE; a size that is not a whole
 *   number of channels, an out_len inconsistent with in_len / kernel / stride / pad_left,
 *   a non-zero field the kind does not use, or a layer chain mismatch -> FLT_ERR_SHAPE;
 *   more than FLT_HEAD_MAX_PARAMS parameters -> FLT_ERR_OVERSIZE.
 *   Every other function of the train component checks its head this way first.
 * - The struct uses uint32_t fields only (no enums) so its layout is the same on every ABI
 *   (arm-none-eabi uses short enums) and for ctypes: 9 uint32_t per layer, in the order
 *   declared below (the first three are the pre-conv layout).
 */
#ifndef FLT_TRAIN_HEAD_H
#define FLT_TRAIN_HEAD_H

#include <stdint.h>

#include "core/flt_status.h"

#define FLT_HEAD_MAX_LAYERS 8u
#define FLT_HEAD_MAX_WIDTH 4096u
#define FLT_HEAD_MAX_PARAMS (1u << 24)
#define FLT_HEAD_MAX_KERNEL 64u

/* layer kind (flt_layer_t.kind) */
#define FLT_LAYER_DENSE 0u
#define FLT_LAYER_CONV1D 1u
#define FLT_LAYER_GAP1D 2u

/* activation (flt_layer_t.act) */
#define FLT_ACT_NONE 0u
#define FLT_ACT_RELU 1u

/* loss (flt_head_t.loss) */
#define FLT_LOSS_SOFTMAX_CE 0u
#define FLT_LOSS_MSE 1u

typedef struct {
    uint32_t in_size;  /* floats in (CONV1D / GAP1D: len * channels, channels-last) */
    uint32_t out_size; /* floats out */
    uint32_t act;      /* FLT_ACT_* */
    uint32_t kind;     /* FLT_LAYER_*; 0 = dense */
    uint32_t in_ch;    /* CONV1D: input channels (GAP1D: 0 or out_size) */
    uint32_t out_ch;   /* CONV1D: filters (GAP1D: 0 or out_size) */
    uint32_t kernel;   /* CONV1D: taps */
    uint32_t stride;   /* CONV1D: stride */
    uint32_t pad_left; /* CONV1D: zeros before the input, < kernel */
} flt_layer_t;

typedef struct {
    uint32_t n_layers;
    uint32_t loss; /* FLT_LOSS_* */
    flt_layer_t layers[FLT_HEAD_MAX_LAYERS];
} flt_head_t;

/* Buffer sizes of a head, all in elements (floats, or uint32_t for order_len). */
typedef struct {
    uint32_t n_params;         /* P: params, gradient, momentum, global params */
    uint32_t n_acts;           /* A: sum of out_size */
    uint32_t max_width;        /* Wmax: max out_size (see "Sizes" above) */
    uint32_t n_inputs;         /* layers[0].in_size (features per sample) */
    uint32_t n_outputs;        /* out_size of the last layer */
    uint32_t work_floats;      /* FLT_TRAIN_WORK_FLOATS(P, A, Wmax) */
    uint32_t opt_state_floats; /* FLT_TRAIN_OPT_STATE_FLOATS(P) */
    uint32_t order_len;        /* n_samples */
    uint32_t total_bytes;      /* 4 * (work_floats + opt_state_floats + order_len) */
} flt_train_sizes_t;

#define FLT_DENSE_PARAMS(in_size, out_size) ((in_size) * (out_size) + (out_size))
#define FLT_CONV1D_PARAMS(in_ch, out_ch, kernel) ((out_ch) * (kernel) * (in_ch) + (out_ch))
#define FLT_TRAIN_WORK_FLOATS(n_params, n_acts, max_width) \
    ((n_params) + (n_acts) + 2u * (max_width))
#define FLT_TRAIN_OPT_STATE_FLOATS(n_params) (n_params)

FLT_NODISCARD flt_status_t flt_head_check(const flt_head_t *head);

/* Number of parameters of one layer by its kind (see the layout above). No checks: call it
 * on layers of a head that passed flt_head_check (an unknown kind gives 0). */
uint32_t flt_layer_n_params(const flt_layer_t *layer);

/* Number of parameters of a valid head; 0 if flt_head_check fails. */
uint32_t flt_head_n_params(const flt_head_t *head);

/* Offset of layer `layer`'s W in the flat parameter vector (its bias follows W: at
 * + in_size*out_size for DENSE, + out_ch*kernel*in_ch for CONV1D). 0 if the head is
 * invalid or layer >= n_layers. */
uint32_t flt_head_param_offset(const flt_head_t *head, uint32_t layer);

/* Offset of layer `layer`'s output in the activation buffer. 0 if invalid. */
uint32_t flt_head_act_offset(const flt_head_t *head, uint32_t layer);

/* Fill *out with the buffer sizes needed to train `head` on n_samples samples.
 * NULL -> FLT_ERR_ARG; invalid head -> its flt_head_check status; total_bytes above
 * UINT32_MAX -> FLT_ERR_OVERSIZE. *out is written only on success. */
FLT_NODISCARD flt_status_t flt_train_sizes(const flt_head_t *head, uint32_t n_samples,
                                           flt_train_sizes_t *out);

#endif /* FLT_TRAIN_HEAD_H */
