/* libFuzzer harness: bytes -> file -> mtl_safetensors_read (header JSON, metadata, tensor table,
 * offsets), then a lookup of every tensor by name, then mtl_safetensors_free. */
#include "fuzz_common.h"
#include "mtl_runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, ".safetensors");
    MtlSafetensors st;
    char err[512];
    if (mtl_safetensors_read(path, &st, err, sizeof err) == 0) {
        for (int i = 0; i < st.n; i++) {
            const MtlStTensor *t = mtl_safetensors_find(&st, st.tensors[i].name);
            if (!t) __builtin_trap();
            /* touch the bytes the table claims, so a bad range shows up under ASan */
            volatile unsigned char sum = 0;
            for (int64_t b = t->begin; b < t->end; b++) sum += st.data[b];
            (void)sum;
        }
        mtl_safetensors_free(&st);
    }
    return 0;
}
