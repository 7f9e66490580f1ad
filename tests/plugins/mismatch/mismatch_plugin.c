/* Its library says id "actual-id" while its manifest says "mismatch". */
#include <stddef.h>
#include <vik/plugin.h>

static const void *get_interface(const char *id) {
    (void)id;
    return NULL;
}

VIK_PLUGIN_EXPORT const vik_entry vik_plugin_entry = {
    VIK_ABI_MAJOR, VIK_ABI_MINOR, sizeof(vik_entry), "actual-id", "0.1.0", "manifest disagrees", get_interface, NULL, NULL};
