// SPDX-License-Identifier: MIT
/*
 * The probe "dma.edu": is there an edu card (QEMU's -device edu, PCI
 * 1234:11e8) and is the wirepath driver (kernel/edu, docs/kernel.md) bound
 * to it? A bound card is asked what the driver really obtained (MSI or
 * INTx, ring, DMA mask) through its character device, so the answer comes
 * from the driver, not from sysfs names alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/core.h"
#include "../kernel/edu/edu_uapi.h"

static int read_hex(const char *dir, const char *name, unsigned int *v)
{
	char p[400], buf[32];
	FILE *f;
	int ok;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "re");
	if (!f)
		return -1;
	ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%x", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/* The misc device the driver made under the card: /sys/.../misc/eduN. */
static int find_misc(const char *dir, char *name, size_t len)
{
	char p[400];
	struct dirent *e;
	DIR *d;
	int ret = -1;

	snprintf(p, sizeof(p), "%s/misc", dir);
	d = opendir(p);
	while (d && (e = readdir(d))) {
		if (!strncmp(e->d_name, "edu", 3)) {
			snprintf(name, len, "%s", e->d_name);
			ret = 0;
			break;
		}
	}
	if (d)
		closedir(d);
	return ret;
}

void wp_edu_probe(void)
{
	char dir[320], link[400], target[PATH_MAX] = "", card[256] = "", misc[256], dev[272];
	const char *drv = "";
	struct edu_info info;
	struct dirent *e;
	unsigned int vendor, device;
	int n = 0, fd;
	ssize_t l;
	DIR *d;

	d = opendir("/sys/bus/pci/devices");
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", e->d_name);
		if (read_hex(dir, "vendor", &vendor) || read_hex(dir, "device", &device) ||
		    vendor != 0x1234 || device != 0x11e8)
			continue;
		if (n++)
			continue;
		snprintf(card, sizeof(card), "%s", e->d_name);
		snprintf(link, sizeof(link), "%s/driver", dir);
		l = readlink(link, target, sizeof(target) - 1);
		if (l > 0) {
			target[l] = 0;
			drv = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
		}
	}
	if (d)
		closedir(d);
	if (!n) {
		wp_probe_add(
			"dma.edu", -ENODEV,
			"no edu card (PCI 1234:11e8; QEMU -device edu) for the kernel/edu driver");
		return;
	}
	if (strcmp(drv, "edu")) {
		wp_probe_add("dma.edu", -ENOENT,
			     "%d edu card(s), %s at %s, not bound to the edu driver (insmod "
			     "kernel/edu/edu.ko)",
			     n, drv[0] ? drv : "no driver", card);
		return;
	}
	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", card);
	if (find_misc(dir, misc, sizeof(misc))) {
		wp_probe_add("dma.edu", -ENOENT, "card %s bound to edu, but no /dev/eduN", card);
		return;
	}
	snprintf(dev, sizeof(dev), "/dev/%s", misc);
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		wp_probe_add("dma.edu", -errno, "card %s bound to edu; open %s failed", card, dev);
		return;
	}
	if (ioctl(fd, EDU_IOC_INFO, &info) < 0) {
		wp_probe_add("dma.edu", -errno, "card %s: %s answers no EDU_IOC_INFO", card, dev);
		close(fd);
		return;
	}
	close(fd);
	wp_probe_add(
		"dma.edu", 0,
		"card %s, driver edu: %s, %s, ring %u, %u-bit DMA, bounce <= %u B, buffer %u B",
		card, dev, info.irq_mode == EDU_IRQ_MSI ? "MSI" : "INTx", info.ring_size,
		info.dma_bits, info.bounce_max, info.buf_bytes);
}
