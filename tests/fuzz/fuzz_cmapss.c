/* libFuzzer harness: bytes -> C-MAPSS text file -> mtl_data_load_train (rul + health targets,
 * the 17 default features), then mtl_data_load_inputs on the same file with the fitted
 * normalisation. The input's last byte also picks the window (1..4), whether a validation
 * split is taken and whether the normalisation is per operating condition (k-means, k = 3), so
 * windows, splitting and conditions are exercised without altering the file text. A fitted
 * normalisation must survive its JSON round trip bit for bit. */
#include "fuzz_common.h"
#include "mtl_data.h"

#include <stdlib.h>

static const char *const binds[] = {"rul", "health"};
static const MtlTargetKind kinds[] = {MTL_TARGET_REAL, MTL_TARGET_CLASS};
static const int64_t classes[] = {0, 3};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, ".txt");
    uint8_t k = size ? data[size - 1] : 0;
    MtlDataConfig c;
    mtl_data_config_defaults(&c);
    c.train_path = path;
    c.n_targets = 2;
    c.target_binds = binds;
    c.target_kinds = kinds;
    c.target_classes = classes;
    c.window = 1 + (k & 3);
    c.window_stride = 1 + ((k >> 4) & 1);
    c.validation = (k & 4) ? 0.25f : 0.0f;
    c.seed = k >> 5;
    c.conditions = (k & 8) ? 3 : 1;
    MtlDataset train = {0}, val = {0}, in = {0};
    MtlNorm norm = {0};
    if (mtl_data_load_train(&c, &train, &val, &norm) == 0) {
        if (mtl_data_load_inputs(&c, path, &norm, &in) == 0) mtl_dataset_free(&in);
        char *json = mtl_norm_to_json(&norm), err[256];
        MtlNorm back;
        if (!json || mtl_norm_from_json(json, norm.n, &back, err, sizeof err) != 0 || !mtl_norm_equal(&norm, &back))
            abort();
        mtl_norm_free(&back);
        free(json);
        mtl_dataset_free(&train);
        mtl_dataset_free(&val);
        mtl_norm_free(&norm);
    }
    return 0;
}
