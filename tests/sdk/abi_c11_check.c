/* Compiled as strict C11: proves plugin.h is a C header, and freezes the layout from C's view. */
#include <vik/plugin.h>

#include <stddef.h>
#include <stdio.h>

#define VIK_SIZE(T, N) _Static_assert(sizeof(T) == (N), "size of " #T " changed");
#define VIK_FIELD(T, F, N) _Static_assert(offsetof(T, F) == (N), "offset of " #T "." #F " changed");
#include "abi_layout.inc"

int main(void) {
    printf("plugin.h compiles as C11; ABI %d.%d layout frozen\n", VIK_ABI_MAJOR, VIK_ABI_MINOR);
    return 0;
}
