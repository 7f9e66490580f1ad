/* A valid shared library without the vik_plugin_entry symbol. */
#include <vik/plugin.h>

VIK_PLUGIN_EXPORT int not_a_vik_plugin(void) { return 42; }
