// SPDX-License-Identifier: MIT
/*
 * `wirepathd --check FILE` (config.h): everything wirepathd would load at
 * start, loaded and checked without binding or starting anything: the
 * configuration, the rules file it names (tenants, API keys, gateway
 * statements), the TLS files it would read and the interface it would
 * attach XDP to. One line of output either way.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tenants.h"

int wpd_config_check(const char *path, FILE *out)
{
	struct wpd_config *c;
	struct wpd_tenants *t = NULL;
	char err[1024];
	int ret;

	ret = wpd_config_load(path, &c, err, sizeof(err));
	if (ret < 0) {
		fprintf(out, "%s\n", err[0] ? err : strerror(-ret));
		return 1;
	}
	for (uint32_t i = 0; i < c->nlisten; i++) {
		const struct wpd_listen *l = &c->listen[i];
		const char *files[2] = { l->tls_cert, l->tls_key };

		for (int f = 0; f < 2; f++) {
			if (files[f][0] && access(files[f], R_OK) < 0) {
				fprintf(out, "%s:%d: tls %s '%s': %s\n", c->path, l->line,
					f ? "key" : "cert", files[f], strerror(errno));
				goto out_fail;
			}
		}
	}
	if (c->xdp_iface[0] && !if_nametoindex(c->xdp_iface)) {
		fprintf(out, "%s:%d: xdp: no interface '%s' here (%s)\n", c->path, c->xdp_line,
			c->xdp_iface, strerror(errno));
		goto out_fail;
	}
	if (c->policy[0]) {
		ret = wpd_tenants_load(c->policy, &t, err, sizeof(err));
		if (ret < 0) {
			/* the rules file's own FILE:LINE; say which config line named it */
			fprintf(out, "%s (policy at %s:%d)\n", err[0] ? err : strerror(-ret),
				c->path, c->policy_line);
			goto out_fail;
		}
	}
	fprintf(out, "%s: ok (%u listeners, %u backends, %u models, %u MCP servers, %u tenants)\n",
		c->path, c->nlisten, c->nbackends, c->nmodels, c->nmcp, wpd_tenants_count(t));
	wpd_tenants_free(t);
	wpd_config_free(c);
	return 0;

out_fail:
	wpd_config_free(c);
	return 1;
}
