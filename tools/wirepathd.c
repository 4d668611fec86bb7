// SPDX-License-Identifier: MIT
/* wirepathd: the HTTP/MCP front door (docs/daemon.md). Placeholder main
 * until the server lands in the following commits. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "wirepathd: not built yet\n");
	return 1;
}
