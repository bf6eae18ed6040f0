/* flt_head.h - description of the trainable float32 head and its flat parameter layout.
 *
 * Contract
 * - What: a head is a stack of 1..FLT_HEAD_MAX_LAYERS dense layers y = act(W x + b), with
 *   act NONE or RELU, ending in a loss (softmax cross-entropy over integer labels, or MSE
 *   over float targets). Layer l consumes layers[l].in_size floats and produces
 *   layers[l].out_size; layers[l+1].in_size must equal layers[l].out_size. Layer 0 consumes
 *   the backbone's feature vector.
 * - Flat parameter vector (this is what the delta pipeline diffs; never change the order):
 *     for l = 0 .. n_layers-1:
 *         W_l  row-major [out_size][in_size]   (W_l[j][k] multiplies input k into output j)
 *         b_l  [out_size]
 *   i.e. layer l starts at flt_head_param_offset(head, l) = sum_{i<l} (in_i*out_i + out_i).
 *   Gradient vectors and the momentum (optimizer state) use the same layout.
 * - Activations: the forward pass stores each layer's output (after the activation) one
 *   after the other: layer l's output starts at flt_head_act_offset(head, l) = sum_{i<l}
 *   out_i, n_acts = sum of all out_size. The network output is the last out_size floats.
 * - Sizes for static buffers (see flt_train_sizes): with P = n_params, A = n_acts and
 *   Wmax = max out_size,
 *     training workspace  FLT_TRAIN_WORK_FLOATS(P, A, Wmax) = P + A + 2*Wmax floats
 *                         (batch gradient, activations, two backward delta buffers)
 *     optimizer state     FLT_TRAIN_OPT_STATE_FLOATS(P) = P floats (momentum)
 *     sample order        n_samples uint32_t (the epoch shuffle)
 *   The Python twin mirrors this in fltiny.twins.train.train_sizes.
 * - Validation (flt_head_check): NULL -> FLT_ERR_ARG; n_layers 0 -> FLT_ERR_SHAPE;
 *   n_layers > FLT_HEAD_MAX_LAYERS -> FLT_ERR_RANGE; a size 0 or > FLT_HEAD_MAX_WIDTH ->
 *   FLT_ERR_RANGE; layer chain mismatch -> FLT_ERR_SHAPE; unknown activation or loss ->
 *   FLT_ERR_UNSUPPORTED; more than FLT_HEAD_MAX_PARAMS parameters -> FLT_ERR_OVERSIZE.
 *   Every other function of the train component checks its head this way first.
 * - The struct uses uint32_t fields only (no enums) so its layout is the same on every ABI
 *   (arm-none-eabi uses short enums) and for ctypes.
 */
#ifndef FLT_TRAIN_HEAD_H
#define FLT_TRAIN_HEAD_H

#include <stdint.h>

#include "flt_status.h"

#define FLT_HEAD_MAX_LAYERS 8u
#define FLT_HEAD_MAX_WIDTH 4096u
#define FLT_HEAD_MAX_PARAMS (1u << 24)

/* activation (flt_layer_t.act) */
#define FLT_ACT_NONE 0u
#define FLT_ACT_RELU 1u

/* loss (flt_head_t.loss) */
#define FLT_LOSS_SOFTMAX_CE 0u
#define FLT_LOSS_MSE 1u

typedef struct {
    uint32_t in_size;
    uint32_t out_size;
    uint32_t act; /* FLT_ACT_* */
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
    uint32_t max_width;        /* Wmax: max out_size */
    uint32_t n_inputs;         /* layers[0].in_size (features per sample) */
    uint32_t n_outputs;        /* out_size of the last layer */
    uint32_t work_floats;      /* FLT_TRAIN_WORK_FLOATS(P, A, Wmax) */
    uint32_t opt_state_floats; /* FLT_TRAIN_OPT_STATE_FLOATS(P) */
    uint32_t order_len;        /* n_samples */
    uint32_t total_bytes;      /* 4 * (work_floats + opt_state_floats + order_len) */
} flt_train_sizes_t;

#define FLT_DENSE_PARAMS(in_size, out_size) ((in_size) * (out_size) + (out_size))
#define FLT_TRAIN_WORK_FLOATS(n_params, n_acts, max_width) \
    ((n_params) + (n_acts) + 2u * (max_width))
#define FLT_TRAIN_OPT_STATE_FLOATS(n_params) (n_params)

FLT_NODISCARD flt_status_t flt_head_check(const flt_head_t *head);

/* Number of parameters of a valid head; 0 if flt_head_check fails. */
uint32_t flt_head_n_params(const flt_head_t *head);

/* Offset of layer `layer`'s W in the flat parameter vector (its bias follows at
 * + in_size*out_size). 0 if the head is invalid or layer >= n_layers. */
uint32_t flt_head_param_offset(const flt_head_t *head, uint32_t layer);

/* Offset of layer `layer`'s output in the activation buffer. 0 if invalid. */
uint32_t flt_head_act_offset(const flt_head_t *head, uint32_t layer);

/* Fill *out with the buffer sizes needed to train `head` on n_samples samples.
 * NULL -> FLT_ERR_ARG; invalid head -> its flt_head_check status; total_bytes above
 * UINT32_MAX -> FLT_ERR_OVERSIZE. *out is written only on success. */
FLT_NODISCARD flt_status_t flt_train_sizes(const flt_head_t *head, uint32_t n_samples,
                                           flt_train_sizes_t *out);

#endif /* FLT_TRAIN_HEAD_H */
