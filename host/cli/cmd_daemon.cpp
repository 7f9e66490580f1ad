#include "cli/commands.hpp"
namespace vik::cli {
int cmd_status(const Options &) { return 1; }
int cmd_stop(const Options &) { return 1; }
int cmd_restart(const Options &) { return 1; }
int cmd_uninstall(const Options &) { return 1; }
}
