/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * edu_uapi.h: the user interface of the edu driver (kernel/edu/edu.c), shared
 * by the module and its users (tests/vm/edu_test.c). One character device
 * per edu card, /dev/eduN:
 *
 *   read/write/lseek  the card's 4 KiB buffer, through DMA (pin or bounce)
 *   EDU_IOC_XFER      one transfer between user memory (or the mmap'd
 *                     coherent area) and the card's buffer; blocks until the
 *                     card finished it; the status says how it ended
 *   EDU_IOC_SUBMIT    queue a transfer on the mmap'd area and return at once
 *   EDU_IOC_REAP      wait for one submitted transfer and return its status
 *   EDU_IOC_INFO      what the driver really obtained (MSI or INTx, ...)
 *   mmap              the coherent area (offset 0, at most area_kb KiB)
 *
 * Errors (ioctl returns -1 and sets errno): EINVAL for a length of 0 or over
 * buf_bytes (EDU_IOC_INFO; 4095 by default, see the module parameter), a
 * device range beyond buf_bytes, a bad direction or flag, an
 * area range beyond the mapping; EFAULT for a bad user pointer; ERANGE for
 * memory the card cannot reach (beyond its DMA mask); ENODEV once the card
 * is gone (unbound, unloaded); EAGAIN when a file has ring_size submissions
 * not yet reaped.
 */
#ifndef EDU_UAPI_H
#define EDU_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define EDU_BUF_SIZE 4096u /* the card's DMA buffer (at 0x40000 in BAR0's space) */

enum edu_dir {
	EDU_TO_DEV = 0,   /* user memory -> card buffer */
	EDU_FROM_DEV = 1, /* card buffer -> user memory */
};

#define EDU_XFER_AREA 0x1u /* addr is an offset into the mmap'd coherent area */

enum edu_path {
	EDU_PATH_BOUNCE = 1, /* copied through a kmalloc buffer (len <= bounce_max) */
	EDU_PATH_PINNED = 2, /* the user's pages pinned and mapped (dma_map_sgtable) */
	EDU_PATH_AREA = 3,   /* the coherent area: nothing mapped per transfer */
};

struct edu_xfer {
	__u64 addr;    /* user pointer, or offset into the area (EDU_XFER_AREA) */
	__u32 len;     /* 1..EDU_BUF_SIZE */
	__u32 dev_off; /* offset in the card's buffer; dev_off + len <= EDU_BUF_SIZE */
	__u32 dir;     /* enum edu_dir */
	__u32 flags;   /* EDU_XFER_* */
	__s32 status;  /* out: 0 or -errno of the DMA itself (-ENODEV: card removed) */
	__u32 path;    /* out: enum edu_path */
	__u32 segs;    /* out: DMA commands the card ran (1, or 2 across a page) */
	__u32 pad;
	__u64 cookie; /* out (EDU_IOC_SUBMIT): names the transfer in EDU_IOC_REAP */
};

struct edu_reap {
	__u64 cookie;
	__s32 status;
	__u32 pad;
};

enum edu_irq_mode {
	EDU_IRQ_MSI = 1,
	EDU_IRQ_INTX = 2,
};

struct edu_info {
	__u32 irq_mode;              /* enum edu_irq_mode: what pci_alloc_irq_vectors gave */
	__u32 ring_size;             /* descriptors in the coherent ring */
	__u32 dma_bits;              /* the DMA mask the driver set */
	__u32 bounce_max;            /* transfers up to this many bytes are bounced */
	__u64 area_size;             /* bytes mmap can map */
	__u64 transfers;             /* finished transfers, any status */
	__u64 dma_cmds;              /* DMA commands the card completed */
	__u64 irqs;                  /* interrupts handled */
	__u64 bounced, pinned, area; /* transfers by path */
	__u64 refused_mask;          /* transfers refused: memory beyond the DMA mask */
	__u32 buf_bytes; /* bytes of the buffer transfers may use (4095 on QEMU <= 7.2) */
	__u32 pad;
};

#define EDU_IOC_XFER _IOWR('E', 1, struct edu_xfer)
#define EDU_IOC_SUBMIT _IOWR('E', 2, struct edu_xfer)
#define EDU_IOC_REAP _IOR('E', 3, struct edu_reap)
#define EDU_IOC_INFO _IOR('E', 4, struct edu_info)

#endif
