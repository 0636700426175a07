//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* One object, so that both programs share one set of maps when loaded unpinned. */
#include "xdp_wan.c"
#include "tc_lan.c"

char __license[] SEC("license") = "Dual BSD/GPL";
