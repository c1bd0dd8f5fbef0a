/* Links libparo_runtime.so from an installed prefix and exercises the C API that needs no GPU:
 * version, status strings, the device check, and argument errors. Prints one line per check and
 * exits non-zero on the first surprise. With a GPU present it also builds and frees a tiny plan. */
#include <paro_runtime.h>
#include <paro_stats.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;

static void expect(int ok, const char* what) {
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) ++failures;
}

int main(void) {
    expect(paro_runtime_api_version() == PARO_RUNTIME_API_VERSION, "API version matches the header");
    expect(strcmp(paro_status_string(PARO_OK), "") != 0, "status strings");

    int devices = -1;
    const paro_status dev = paro_device_check(&devices);
    expect(dev == PARO_OK || dev == PARO_ERROR_NO_GPU, "device check answers OK or NO_GPU");

    paro_plan* plan = NULL;
    expect(paro_plan_create(NULL, &plan) == PARO_ERROR_INVALID_ARGUMENT && plan == NULL, "null desc is refused");
    expect(strlen(paro_last_error()) > 0, "the refusal has a message");

    paro_stats_engine* engine = NULL;
    expect(paro_stats_engine_create(NULL, &engine) == PARO_ERROR_INVALID_ARGUMENT, "stats: null desc is refused");
    expect(paro_stats_api_version() == PARO_STATS_API_VERSION, "stats API version matches the header");

    if (dev == PARO_OK) {
        const uint8_t orders[2] = {PARO_ORDER_FHW, PARO_ORDER_WHF};
        paro_plan_desc d;
        memset(&d, 0, sizeof d);
        d.grid[0] = 2; d.grid[1] = 8; d.grid[2] = 8;
        d.text_tokens = 16;
        d.block = 64;
        d.layers = 1; d.slots = 1; d.heads = 2;
        d.orders = orders;
        expect(paro_plan_create(&d, &plan) == PARO_OK, "dense plan on the GPU");
        paro_plan_info info;
        expect(paro_plan_get_info(plan, &info) == PARO_OK && info.tokens == 144 && info.tiles_per_side == 3,
               "plan info");
        paro_plan_destroy(plan);
    }
    printf("%d passed, %d failed\n", failures ? 0 : 1, failures);
    return failures ? 1 : 0;
}
