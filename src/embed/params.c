/* qembed_params_init: the defaults of every params/options struct, for the
 * header's inline *_default_*() constructors (see "Structs that grow" in
 * qembed.h). Here because this layer sees every other. */
#include "common/params.h"
#include "embed/embed.h"
#include "model/segments.h"
#include "tokenizer/tokenizer_internal.h"

void qembed_params_init(qembed_params_kind kind, void *params, size_t size) {
    switch (kind) {
        case QEMBED_PARAMS_ENCODE: {
            qembed_encode_options d = qe_encode_defaults();
            qe_params_fill(params, size, &d, sizeof d);
            break;
        }
        case QEMBED_PARAMS_MODEL: {
            qembed_model_params d = qe_model_defaults();
            qe_params_fill(params, size, &d, sizeof d);
            break;
        }
        case QEMBED_PARAMS_SPLIT: {
            qembed_split_params d = qe_split_defaults();
            qe_params_fill(params, size, &d, sizeof d);
            break;
        }
        case QEMBED_PARAMS_CTX: {
            qembed_ctx_params d = qe_ctx_defaults();
            qe_params_fill(params, size, &d, sizeof d);
            break;
        }
        case QEMBED_PARAMS_EMBED: {
            qembed_embed_options d = qe_embed_defaults();
            qe_params_fill(params, size, &d, sizeof d);
            break;
        }
    }
}
