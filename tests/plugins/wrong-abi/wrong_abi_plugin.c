/* Claims ABI major 2: the host (ABI 1) must refuse it. */
#include <stddef.h>
#include <vik/plugin.h>

static const void *get_interface(const char *id) {
    (void)id;
    return NULL;
}

VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {
    2, 0, sizeof(vik_entry), "wrong-abi", "0.1.0", "built for ABI 2", get_interface, NULL, NULL};
