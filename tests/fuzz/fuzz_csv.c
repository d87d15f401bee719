/* libFuzzer harness: bytes -> CSV file -> mtl_data_load_train (inputs a, b; group column "unit";
 * targets y (real) and cls (3 classes), as tests/runtime/test_data_csv.c), then
 * mtl_data_load_test on the same file. The input's last byte also picks the window (1..4), the
 * validation split and whether the group column is used, without altering the file text. */
#include "fuzz_common.h"
#include "mtl_data.h"

static const char *const inputs[] = {"a", "b"};
static const char *const binds[] = {"y", "cls"};
static const MtlTargetKind kinds[] = {MTL_TARGET_REAL, MTL_TARGET_CLASS};
static const int64_t classes[] = {0, 3};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, ".csv");
    uint8_t k = size ? data[size - 1] : 0;
    MtlDataConfig c;
    mtl_data_config_defaults(&c);
    c.kind = MTL_DATA_CSV;
    c.train_path = path;
    c.test_path = path;
    c.n_input_columns = 2;
    c.input_columns = inputs;
    c.group_column = (k & 8) ? NULL : "unit";
    c.n_targets = 2;
    c.target_binds = binds;
    c.target_kinds = kinds;
    c.target_classes = classes;
    c.window = 1 + (k & 3);
    c.window_stride = 1 + ((k >> 4) & 1);
    c.validation = (k & 4) ? 0.25f : 0.0f;
    c.seed = k >> 5;
    MtlDataset train = {0}, val = {0}, test = {0};
    MtlNorm norm = {0};
    if (mtl_data_load_train(&c, &train, &val, &norm) == 0) {
        if (mtl_data_load_test(&c, &norm, &test) == 0) mtl_dataset_free(&test);
        mtl_dataset_free(&train);
        mtl_dataset_free(&val);
        mtl_norm_free(&norm);
    }
    return 0;
}
