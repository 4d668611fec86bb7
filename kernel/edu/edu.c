// SPDX-License-Identifier: GPL-2.0
/*
 * edu.c: a PCI DMA driver for QEMU's edu device (1234:11e8, QEMU's
 * docs/specs/edu.rst), written as the skeleton under every NIC, storage
 * controller and accelerator data path: probe follows the init sequence
 * (enable, MMIO, DMA mask, coherent ring, interrupts, initialize, start),
 * transfers use streaming DMA, and a character device lets user space move
 * bytes (docs/kernel.md maps each step to the lines below).
 *
 * The card has one DMA engine (registers 0x80-0x98) and a 4 KiB buffer at
 * 0x40000 in its own address space; it runs each command 100 ms of virtual
 * time after it is written and raises interrupt 0x100 when done. It does not
 * fetch descriptors itself, so the driver keeps the queue a NIC would fetch:
 * a ring of descriptors in coherent memory; submitters fill it, and the
 * interrupt handler acknowledges the card, retires the finished descriptor
 * and programs the next one (what a NIC's tx ring and its doorbell do).
 *
 * Locking: edu->lock (irqsave) guards the ring, the engine's state, the
 * counters and each file's completion list. edu->files_mtx guards the list
 * of open files (mmap and removal). Lifetime: struct edu_dev is refcounted;
 * open files hold a reference, so a file outlives its card's removal and
 * gets -ENODEV from then on.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/dma-mapping.h>
#include <linux/dma-direct.h>
#include <linux/interrupt.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/scatterlist.h>
#include <linux/idr.h>
#include <linux/delay.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include "edu_uapi.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8

/* BAR0 registers (edu.rst); below 0x80 only 32-bit accesses. */
#define EDU_REG_ID 0x00
#define EDU_REG_LIVE 0x04
#define EDU_REG_FACT 0x08
#define EDU_REG_STATUS 0x20
#define EDU_STATUS_COMPUTING 0x01
#define EDU_REG_IRQ_STATUS 0x24
#define EDU_REG_IRQ_ACK 0x64
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_CNT 0x90
#define EDU_REG_DMA_CMD 0x98
#define EDU_DMA_RUN 0x01
#define EDU_DMA_FROM_CARD 0x02
#define EDU_DMA_IRQ 0x04
#define EDU_IRQ_DMA 0x100
#define EDU_BUF_BASE 0x40000 /* the card's buffer, in the card's DMA space */
#define EDU_DMA_BITS 28      /* the card's default dma_mask: 256 MiB */

static bool use_msi = true;
module_param(use_msi, bool, 0444);
MODULE_PARM_DESC(use_msi, "ask for MSI (falls back to INTx when refused); 0: INTx only");
static unsigned int ring_size = 64;
module_param(ring_size, uint, 0444);
MODULE_PARM_DESC(ring_size, "descriptors in the coherent ring, a power of two, 2..4096 (64)");
static unsigned int bounce_max = 1024;
module_param(bounce_max, uint, 0444);
MODULE_PARM_DESC(bounce_max,
		 "transfers up to this many bytes are copied through a kmalloc bounce buffer, "
		 "larger ones pin the user pages (1024; 0: always pin, 4096: always bounce)");
static unsigned int area_kb = 64;
module_param(area_kb, uint, 0444);
MODULE_PARM_DESC(area_kb, "KiB of coherent memory user space can mmap, 4..1024 (64)");
static unsigned int buf_bytes = EDU_BUF_SIZE - 1;
module_param(buf_bytes, uint, 0444);
MODULE_PARM_DESC(buf_bytes,
		 "bytes of the card's 4 KiB buffer transfers may use (4095): QEMU up to 7.2 "
		 "stops the whole VM (hw_error) on a DMA that touches the last byte, an "
		 "off-by-one in its edu_check_range; 4096 for a QEMU that has the fix");
static unsigned int dma_bits = EDU_DMA_BITS;
module_param(dma_bits, uint, 0444);
MODULE_PARM_DESC(dma_bits, "the DMA mask the driver sets, 12..28 bits (28, the card's limit); "
			   "smaller values make the mask check refuse more memory");

/* One descriptor of the ring, in coherent memory (what a NIC would fetch). */
struct edu_desc {
	__le64 addr; /* bus address of the host side */
	__le32 len;
	__le32 dev_off;
	__le32 dir;
	__le32 done; /* 1 once the card finished it */
};

struct edu_dev;

/* One open file. */
struct edu_file {
	struct edu_dev *edu;
	struct address_space *mapping; /* zapped on removal */
	struct list_head node;         /* in edu->files */
	struct list_head done;         /* finished submissions, not yet reaped (edu->lock) */
	wait_queue_head_t done_wq;
	unsigned int outstanding; /* submitted, not yet reaped (edu->lock) */
	u64 next_cookie;
};

/* One transfer: one or two descriptors (a pinned range across a page). */
struct edu_req {
	struct edu_file *owner; /* async: where the completion goes; NULL: freed on completion */
	struct list_head node;  /* in owner->done */
	struct completion done; /* sync: the submitter waits here */
	bool async;
	unsigned int segs_left;
	int status;
	u64 cookie;
};

struct edu_dev {
	struct kref ref;
	struct pci_dev *pdev;
	struct device *dev;
	void __iomem *bar;
	int id;
	char name[16];
	struct miscdevice misc;
	bool misc_registered;
	bool msi;

	/* the coherent ring (step 4) */
	struct edu_desc *ring;
	dma_addr_t ring_dma;
	struct edu_req **ring_req;      /* the request each slot belongs to */
	unsigned int head, tail, count; /* producer, consumer (engine), used */
	bool busy;                      /* the card runs the descriptor at tail */
	bool dead;                      /* removed: no new work, files get -ENODEV */
	spinlock_t lock;
	wait_queue_head_t space_wq; /* ring slots freed */

	/* the coherent area user space maps */
	void *area;
	dma_addr_t area_dma;
	size_t area_size;

	struct mutex files_mtx;
	struct list_head files;

	struct edu_info stats; /* counters (edu->lock) */
};

static DEFINE_IDA(edu_ida);

static void edu_free(struct kref *ref)
{
	struct edu_dev *edu = container_of(ref, struct edu_dev, ref);

	ida_free(&edu_ida, edu->id);
	pci_dev_put(edu->pdev);
	kfree(edu->ring_req);
	kfree(edu);
}

/*
 * Program the card with the descriptor at tail. Called with edu->lock held,
 * from submit (engine idle) and from the interrupt handler (next one).
 */
static void edu_start_next(struct edu_dev *edu)
{
	struct edu_desc *d;
	u64 addr, dev;
	u32 dir;

	if (!edu->count || edu->dead) {
		edu->busy = false;
		return;
	}
	d = &edu->ring[edu->tail];
	addr = le64_to_cpu(d->addr);
	dev = EDU_BUF_BASE + le32_to_cpu(d->dev_off);
	dir = le32_to_cpu(d->dir);
	/*
	 * The doorbell. Everything the card will read (a bounce buffer filled
	 * by copy_from_user, the user's pinned pages, the coherent area) was
	 * handed over before the descriptor was queued: dma_map_* / sync for the
	 * device for streaming memory, and for coherent memory the program's own
	 * stores. writeq() orders those normal-memory stores before the MMIO
	 * store (the wmb() in the writeX() contract, memory-barriers.txt "KERNEL
	 * I/O BARRIER EFFECTS"), so no explicit dma_wmb() is needed here; it
	 * pairs with the card's read of host memory when its timer fires. The
	 * command is written last: the card latches SRC/DST/CNT when RUN is set
	 * and ignores writes to them while RUN is on.
	 */
	writeq(dir == EDU_FROM_DEV ? dev : addr, edu->bar + EDU_REG_DMA_SRC);
	writeq(dir == EDU_FROM_DEV ? addr : dev, edu->bar + EDU_REG_DMA_DST);
	writeq(le32_to_cpu(d->len), edu->bar + EDU_REG_DMA_CNT);
	writeq(EDU_DMA_RUN | EDU_DMA_IRQ | (dir == EDU_FROM_DEV ? EDU_DMA_FROM_CARD : 0),
	       edu->bar + EDU_REG_DMA_CMD);
	edu->busy = true;
}

/* A request's last descriptor ended (edu->lock held). */
static void edu_req_finish(struct edu_dev *edu, struct edu_req *r, int status)
{
	if (status && !r->status)
		r->status = status;
	if (--r->segs_left)
		return;
	edu->stats.transfers++;
	if (!r->async) {
		complete(&r->done);
		return;
	}
	if (!r->owner) { /* its file was closed: nobody reaps it */
		kfree(r);
		return;
	}
	list_add_tail(&r->node, &r->owner->done);
	wake_up(&r->owner->done_wq);
}

/* Retire the descriptor at tail (edu->lock held). */
static void edu_retire(struct edu_dev *edu, int status)
{
	struct edu_req *r = edu->ring_req[edu->tail];

	edu->ring[edu->tail].done = cpu_to_le32(1);
	edu->ring_req[edu->tail] = NULL;
	edu->tail = (edu->tail + 1) & (ring_size - 1);
	edu->count--;
	if (!status)
		edu->stats.dma_cmds++;
	edu_req_finish(edu, r, status);
}

static irqreturn_t edu_irq(int irq, void *data)
{
	struct edu_dev *edu = data;
	unsigned long flags;
	u32 st;

	st = readl(edu->bar + EDU_REG_IRQ_STATUS);
	if (!st)
		return IRQ_NONE; /* INTx may be shared */
	/* Acknowledge first: INTx is level-triggered, and MSI needs it too (edu.rst). */
	writel(st, edu->bar + EDU_REG_IRQ_ACK);
	spin_lock_irqsave(&edu->lock, flags);
	edu->stats.irqs++;
	if ((st & EDU_IRQ_DMA) && edu->busy && edu->count) {
		/*
		 * The card cleared RUN before raising the interrupt, and its
		 * writes to host memory happened before it: the MMIO read of the
		 * status above orders them before our reads (the submitter's
		 * dma_unmap / sync for the CPU comes after complete()).
		 */
		edu_retire(edu, 0);
		edu_start_next(edu);
		wake_up(&edu->space_wq);
	}
	spin_unlock_irqrestore(&edu->lock, flags);
	return IRQ_HANDLED;
}

struct edu_seg {
	dma_addr_t addr;
	u32 len;
};

/*
 * Queue a request's segments and ring the doorbell if the engine is idle.
 * Waits (killable) for ring space; nothing is queued when it fails.
 */
static int edu_queue(struct edu_dev *edu, struct edu_req *r, const struct edu_seg *seg,
		     unsigned int nseg, u32 dev_off, u32 dir)
{
	unsigned long flags;
	unsigned int i;
	int ret;

	for (;;) {
		spin_lock_irqsave(&edu->lock, flags);
		if (edu->dead) {
			ret = -ENODEV;
			break;
		}
		if (ring_size - edu->count >= nseg) {
			r->segs_left = nseg;
			for (i = 0; i < nseg; i++) {
				struct edu_desc *d = &edu->ring[edu->head];

				d->addr = cpu_to_le64(seg[i].addr);
				d->len = cpu_to_le32(seg[i].len);
				d->dev_off = cpu_to_le32(dev_off);
				d->dir = cpu_to_le32(dir);
				d->done = 0;
				edu->ring_req[edu->head] = r;
				edu->head = (edu->head + 1) & (ring_size - 1);
				edu->count++;
				dev_off += seg[i].len;
			}
			if (!edu->busy)
				edu_start_next(edu);
			ret = 0;
			break;
		}
		spin_unlock_irqrestore(&edu->lock, flags);
		ret = wait_event_killable(edu->space_wq,
					  READ_ONCE(edu->dead) ||
						  ring_size - READ_ONCE(edu->count) >= nseg);
		if (ret)
			return ret;
	}
	spin_unlock_irqrestore(&edu->lock, flags);
	return ret;
}

/*
 * Can the card reach [phys, phys + len)? Asked before mapping, because
 * dma-direct WARNs (and fails) on an address beyond the mask when swiotlb is
 * off, as it is in a guest under 4 GiB. Behind an IOMMU the mapping itself
 * obeys the mask.
 */
static bool edu_reachable(struct edu_dev *edu, phys_addr_t phys, size_t len)
{
	if (device_iommu_mapped(edu->dev))
		return true;
	return dma_capable(edu->dev, phys_to_dma(edu->dev, phys), len, true);
}

/* After mapping: never hand the card an address beyond its mask (QEMU 7.2 may abort). */
static bool edu_in_mask(struct edu_dev *edu, dma_addr_t addr, size_t len)
{
	return addr + len - 1 <= dma_get_mask(edu->dev) && addr + len - 1 >= addr;
}

static int edu_check(const struct edu_xfer *x)
{
	if (!x->len || x->len > buf_bytes || x->dev_off >= buf_bytes ||
	    x->dev_off + x->len > buf_bytes)
		return -EINVAL;
	if (x->dir != EDU_TO_DEV && x->dir != EDU_FROM_DEV)
		return -EINVAL;
	if (x->flags & ~EDU_XFER_AREA || x->pad)
		return -EINVAL;
	return 0;
}

static void edu_count_path(struct edu_dev *edu, u32 path, bool refused)
{
	unsigned long flags;

	spin_lock_irqsave(&edu->lock, flags);
	if (refused)
		edu->stats.refused_mask++;
	else if (path == EDU_PATH_BOUNCE)
		edu->stats.bounced++;
	else if (path == EDU_PATH_PINNED)
		edu->stats.pinned++;
	else
		edu->stats.area++;
	spin_unlock_irqrestore(&edu->lock, flags);
}

/*
 * Small transfer: copy through a kmalloc buffer. For a few hundred bytes a
 * memcpy costs less than pinning (page-table walk, page refcounts, an sg
 * table), and the buffer is physically contiguous, so it is always one DMA
 * command, where a user range across a page boundary needs two.
 */
static int edu_xfer_bounce(struct edu_dev *edu, struct edu_xfer *x, void __user *ubuf)
{
	enum dma_data_direction dir = x->dir == EDU_TO_DEV ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	struct edu_req r = { .async = false };
	struct edu_seg seg;
	void *buf;
	int ret;

	buf = kmalloc(x->len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (x->dir == EDU_TO_DEV && copy_from_user(buf, ubuf, x->len)) {
		ret = -EFAULT;
		goto out_free;
	}
	if (!edu_reachable(edu, virt_to_phys(buf), x->len)) {
		edu_count_path(edu, EDU_PATH_BOUNCE, true);
		ret = -ERANGE;
		goto out_free;
	}
	seg.addr = dma_map_single(edu->dev, buf, x->len, dir);
	if (dma_mapping_error(edu->dev, seg.addr)) {
		ret = -ENOMEM;
		goto out_free;
	}
	seg.len = x->len;
	if (!edu_in_mask(edu, seg.addr, seg.len)) {
		edu_count_path(edu, EDU_PATH_BOUNCE, true);
		ret = -ERANGE;
		goto out_unmap;
	}
	init_completion(&r.done);
	ret = edu_queue(edu, &r, &seg, 1, x->dev_off, x->dir);
	if (ret)
		goto out_unmap;
	edu_count_path(edu, EDU_PATH_BOUNCE, false);
	/* Bounded: the card ends each command 100 ms (virtual) after it starts,
	 * and removal fails what it will not run. */
	wait_for_completion(&r.done);
	x->status = r.status;
	x->path = EDU_PATH_BOUNCE;
	x->segs = 1;
	if (x->dir == EDU_FROM_DEV && !r.status) {
		/* Ownership back to the CPU before it reads what the card wrote. */
		dma_sync_single_for_cpu(edu->dev, seg.addr, seg.len, dir);
		if (copy_to_user(ubuf, buf, x->len))
			ret = -EFAULT;
	}
out_unmap:
	dma_unmap_single(edu->dev, seg.addr, x->len, dir);
out_free:
	kfree(buf);
	return ret;
}

/* Larger transfer: pin the user's pages and map them for one direction. */
static int edu_xfer_pinned(struct edu_dev *edu, struct edu_xfer *x, unsigned long uaddr)
{
	enum dma_data_direction dir = x->dir == EDU_TO_DEV ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	unsigned int off = offset_in_page(uaddr), npages, nseg = 0, i;
	struct edu_req r = { .async = false };
	struct page *pages[2]; /* len <= 4096: at most two pages */
	struct edu_seg seg[2];
	struct scatterlist *sg;
	struct sg_table sgt;
	int ret, pinned;

	npages = DIV_ROUND_UP(off + x->len, PAGE_SIZE);
	if (npages > ARRAY_SIZE(pages))
		return -EINVAL;
	pinned = pin_user_pages_fast(uaddr & PAGE_MASK, npages,
				     x->dir == EDU_FROM_DEV ? FOLL_WRITE : 0, pages);
	if (pinned < 0)
		return pinned;
	if (pinned != npages) {
		ret = -EFAULT;
		goto out_unpin;
	}
	for (i = 0; i < npages; i++) {
		size_t l = min_t(size_t, PAGE_SIZE - (i ? 0 : off),
				 x->len - (i ? PAGE_SIZE - off : 0));

		if (!edu_reachable(edu, page_to_phys(pages[i]) + (i ? 0 : off), l)) {
			edu_count_path(edu, EDU_PATH_PINNED, true);
			ret = -ERANGE;
			goto out_unpin;
		}
	}
	ret = sg_alloc_table_from_pages(&sgt, pages, npages, off, x->len, GFP_KERNEL);
	if (ret)
		goto out_unpin;
	ret = dma_map_sgtable(edu->dev, &sgt, dir, 0);
	if (ret) /* dma_map_sgtable checks dma_mapping_error for us */
		goto out_free_sgt;
	for_each_sgtable_dma_sg(&sgt, sg, i)
	{
		if (nseg == ARRAY_SIZE(seg) ||
		    !edu_in_mask(edu, sg_dma_address(sg), sg_dma_len(sg))) {
			edu_count_path(edu, EDU_PATH_PINNED, true);
			ret = -ERANGE;
			goto out_unmap;
		}
		seg[nseg].addr = sg_dma_address(sg);
		seg[nseg].len = sg_dma_len(sg);
		nseg++;
	}
	init_completion(&r.done);
	ret = edu_queue(edu, &r, seg, nseg, x->dev_off, x->dir);
	if (ret)
		goto out_unmap;
	edu_count_path(edu, EDU_PATH_PINNED, false);
	wait_for_completion(&r.done);
	x->status = r.status;
	x->path = EDU_PATH_PINNED;
	x->segs = nseg;
	/* Ownership back to the CPU (user space reads the pages next). */
	dma_sync_sgtable_for_cpu(edu->dev, &sgt, dir);
out_unmap:
	dma_unmap_sgtable(edu->dev, &sgt, dir, 0);
out_free_sgt:
	sg_free_table(&sgt);
out_unpin:
	if (pinned > 0)
		unpin_user_pages_dirty_lock(pages, pinned, x->dir == EDU_FROM_DEV && !ret);
	return ret;
}

/* A transfer on the coherent area: nothing to map, pin or sync. */
static int edu_xfer_area(struct edu_dev *edu, struct edu_file *f, struct edu_xfer *x, bool async)
{
	struct edu_seg seg;
	struct edu_req *r;
	unsigned long flags;
	int ret;

	if (x->addr >= edu->area_size || x->addr + x->len > edu->area_size)
		return -EINVAL;
	seg.addr = edu->area_dma + x->addr;
	seg.len = x->len;
	if (!edu_in_mask(edu, seg.addr, seg.len))
		return -ERANGE; /* not reached: the area came from a masked allocation */
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->async = async;
	init_completion(&r->done);
	if (async) {
		spin_lock_irqsave(&edu->lock, flags);
		if (f->outstanding >= ring_size) {
			spin_unlock_irqrestore(&edu->lock, flags);
			kfree(r);
			return -EAGAIN;
		}
		f->outstanding++;
		r->owner = f;
		r->cookie = x->cookie = ++f->next_cookie;
		spin_unlock_irqrestore(&edu->lock, flags);
	}
	ret = edu_queue(edu, r, &seg, 1, x->dev_off, x->dir);
	if (ret) {
		if (async) {
			spin_lock_irqsave(&edu->lock, flags);
			f->outstanding--;
			spin_unlock_irqrestore(&edu->lock, flags);
		}
		kfree(r);
		return ret;
	}
	edu_count_path(edu, EDU_PATH_AREA, false);
	x->path = EDU_PATH_AREA;
	x->segs = 1;
	if (async)
		return 0;
	wait_for_completion(&r->done);
	x->status = r->status;
	kfree(r);
	return 0;
}

static int edu_xfer_user(struct edu_dev *edu, struct edu_xfer *x)
{
	void __user *ubuf = u64_to_user_ptr(x->addr);

	if (!access_ok(ubuf, x->len))
		return -EFAULT;
	if (x->len <= bounce_max)
		return edu_xfer_bounce(edu, x, ubuf);
	return edu_xfer_pinned(edu, x, (unsigned long)x->addr);
}

static int edu_reap(struct edu_file *f, struct edu_reap __user *arg)
{
	struct edu_dev *edu = f->edu;
	struct edu_reap out = {};
	struct edu_req *r = NULL;
	unsigned long flags;
	int ret;

	for (;;) {
		spin_lock_irqsave(&edu->lock, flags);
		if (!list_empty(&f->done)) {
			r = list_first_entry(&f->done, struct edu_req, node);
			list_del(&r->node);
			f->outstanding--;
		}
		spin_unlock_irqrestore(&edu->lock, flags);
		if (r)
			break;
		if (!READ_ONCE(f->outstanding))
			return -ENOENT; /* nothing submitted */
		ret = wait_event_interruptible(f->done_wq, !list_empty(&f->done));
		if (ret)
			return ret;
	}
	out.cookie = r->cookie;
	out.status = r->status;
	kfree(r);
	return copy_to_user(arg, &out, sizeof(out)) ? -EFAULT : 0;
}

static long edu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct edu_file *f = file->private_data;
	struct edu_dev *edu = f->edu;
	void __user *uarg = (void __user *)arg;
	struct edu_xfer x;
	unsigned long flags;
	int ret;

	if (READ_ONCE(edu->dead) && cmd != EDU_IOC_REAP)
		return -ENODEV;
	switch (cmd) {
	case EDU_IOC_XFER:
	case EDU_IOC_SUBMIT:
		if (copy_from_user(&x, uarg, sizeof(x)))
			return -EFAULT;
		ret = edu_check(&x);
		if (ret)
			return ret;
		x.status = 0;
		if (cmd == EDU_IOC_SUBMIT && !(x.flags & EDU_XFER_AREA))
			return -EINVAL; /* async needs memory that outlives the call */
		if (x.flags & EDU_XFER_AREA)
			ret = edu_xfer_area(edu, f, &x, cmd == EDU_IOC_SUBMIT);
		else
			ret = edu_xfer_user(edu, &x);
		if (ret)
			return ret;
		return copy_to_user(uarg, &x, sizeof(x)) ? -EFAULT : 0;
	case EDU_IOC_REAP:
		return edu_reap(f, uarg);
	case EDU_IOC_INFO: {
		struct edu_info info;

		spin_lock_irqsave(&edu->lock, flags);
		info = edu->stats;
		spin_unlock_irqrestore(&edu->lock, flags);
		info.irq_mode = edu->msi ? EDU_IRQ_MSI : EDU_IRQ_INTX;
		info.ring_size = ring_size;
		info.dma_bits = dma_bits;
		info.bounce_max = bounce_max;
		info.buf_bytes = buf_bytes;
		info.area_size = edu->area_size;
		return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
	}
	default:
		return -ENOTTY;
	}
}

/* read/write: the card's buffer at *ppos, through EDU_IOC_XFER's user path. */
static ssize_t edu_rw(struct file *file, char __user *ubuf, size_t len, loff_t *ppos, u32 dir)
{
	struct edu_file *f = file->private_data;
	struct edu_xfer x = { .dir = dir };
	int ret;

	if (READ_ONCE(f->edu->dead))
		return -ENODEV;
	if (*ppos < 0)
		return -EINVAL;
	if (*ppos >= buf_bytes)
		return dir == EDU_FROM_DEV ? 0 : -ENOSPC;
	if (!len)
		return 0;
	x.addr = (u64)(uintptr_t)ubuf;
	x.dev_off = *ppos;
	x.len = min_t(size_t, len, buf_bytes - *ppos);
	ret = edu_xfer_user(f->edu, &x);
	if (ret)
		return ret;
	if (x.status)
		return x.status;
	*ppos += x.len;
	return x.len;
}

static ssize_t edu_read(struct file *file, char __user *ubuf, size_t len, loff_t *ppos)
{
	return edu_rw(file, ubuf, len, ppos, EDU_FROM_DEV);
}

static ssize_t edu_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	return edu_rw(file, (char __user *)ubuf, len, ppos, EDU_TO_DEV);
}

static loff_t edu_llseek(struct file *file, loff_t off, int whence)
{
	return fixed_size_llseek(file, off, whence, buf_bytes);
}

/* After removal the area is freed: its pages were zapped, and a touch is SIGBUS. */
static vm_fault_t edu_vm_fault(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static const struct vm_operations_struct edu_vm_ops = {
	.fault = edu_vm_fault,
};

static int edu_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct edu_file *f = file->private_data;
	struct edu_dev *edu = f->edu;
	size_t len = vma->vm_end - vma->vm_start;
	int ret;

	if (vma->vm_pgoff || len > edu->area_size)
		return -EINVAL;
	/* files_mtx: removal zaps every mapping after it set dead, under it. */
	mutex_lock(&edu->files_mtx);
	if (edu->dead) {
		ret = -ENODEV;
	} else {
		vma->vm_ops = &edu_vm_ops;
		ret = dma_mmap_coherent(edu->dev, vma, edu->area, edu->area_dma, len);
	}
	mutex_unlock(&edu->files_mtx);
	return ret;
}

static int edu_open(struct inode *inode, struct file *file)
{
	/* misc_open holds misc_mtx: the device is registered, so edu is alive. */
	struct edu_dev *edu = container_of(file->private_data, struct edu_dev, misc);
	struct edu_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->edu = edu;
	f->mapping = file->f_mapping;
	INIT_LIST_HEAD(&f->done);
	init_waitqueue_head(&f->done_wq);
	kref_get(&edu->ref);
	mutex_lock(&edu->files_mtx);
	list_add(&f->node, &edu->files);
	mutex_unlock(&edu->files_mtx);
	file->private_data = f;
	return 0;
}

static int edu_release(struct inode *inode, struct file *file)
{
	struct edu_file *f = file->private_data;
	struct edu_dev *edu = f->edu;
	struct edu_req *r, *tmp;
	unsigned long flags;
	unsigned int i;

	mutex_lock(&edu->files_mtx);
	list_del(&f->node);
	mutex_unlock(&edu->files_mtx);
	spin_lock_irqsave(&edu->lock, flags);
	/* Submissions still in the ring are freed when they finish. */
	for (i = 0; i < ring_size; i++)
		if (edu->ring_req[i] && edu->ring_req[i]->owner == f)
			edu->ring_req[i]->owner = NULL;
	list_for_each_entry_safe(r, tmp, &f->done, node)
	{
		list_del(&r->node);
		kfree(r);
	}
	spin_unlock_irqrestore(&edu->lock, flags);
	kfree(f);
	kref_put(&edu->ref, edu_free);
	return 0;
}

static const struct file_operations edu_fops = {
	.owner = THIS_MODULE,
	.open = edu_open,
	.release = edu_release,
	.read = edu_read,
	.write = edu_write,
	.llseek = edu_llseek,
	.unlocked_ioctl = edu_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = edu_mmap,
};

/* Step 6's self-test: identification, liveness (~x) and factorial. */
static int edu_selftest(struct edu_dev *edu)
{
	u32 id = readl(edu->bar + EDU_REG_ID), v;
	int i;

	if ((id & 0xff) != 0xed) {
		dev_err(edu->dev, "identification 0x%08x is not an edu card\n", id);
		return -ENODEV;
	}
	writel(0x5aa5f00f, edu->bar + EDU_REG_LIVE);
	v = readl(edu->bar + EDU_REG_LIVE);
	if (v != ~0x5aa5f00fu) {
		dev_err(edu->dev, "liveness: wrote 0x5aa5f00f, read 0x%08x (want 0x%08x)\n", v,
			~0x5aa5f00fu);
		return -EIO;
	}
	writel(10, edu->bar + EDU_REG_FACT);
	for (i = 0; i < 1000 && (readl(edu->bar + EDU_REG_STATUS) & EDU_STATUS_COMPUTING); i++)
		usleep_range(100, 200);
	v = readl(edu->bar + EDU_REG_FACT);
	if (v != 3628800) {
		dev_err(edu->dev, "factorial: 10! read as %u\n", v);
		return -EIO;
	}
	dev_info(edu->dev, "edu %u.%u: liveness and factorial self-test passed\n", id >> 24,
		 (id >> 16) & 0xff);
	return 0;
}

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *ent)
{
	struct device *dev = &pdev->dev;
	struct edu_dev *edu;
	int ret, nvec;

	edu = kzalloc(sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	kref_init(&edu->ref);
	edu->pdev = pci_dev_get(pdev);
	edu->dev = dev;
	spin_lock_init(&edu->lock);
	init_waitqueue_head(&edu->space_wq);
	mutex_init(&edu->files_mtx);
	INIT_LIST_HEAD(&edu->files);
	edu->id = ida_alloc(&edu_ida, GFP_KERNEL);
	if (edu->id < 0) {
		ret = edu->id;
		pci_dev_put(pdev);
		kfree(edu);
		return ret;
	}
	edu->ring_req = kcalloc(ring_size, sizeof(*edu->ring_req), GFP_KERNEL);
	if (!edu->ring_req) {
		ret = -ENOMEM;
		goto out_put;
	}

	/* 1. Enable the device (managed: disabled again on any failure or removal). */
	ret = pcim_enable_device(pdev);
	if (ret)
		goto out_put;
	/* 2. Request and map the MMIO region, BAR0 (1 MiB). */
	ret = pcim_iomap_regions(pdev, BIT(0), KBUILD_MODNAME);
	if (ret)
		goto out_put;
	edu->bar = pcim_iomap_table(pdev)[0];
	pci_set_master(pdev);
	/* 3. The DMA mask: the card reaches 28 bits; beyond it QEMU 7.2 may abort. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(dma_bits));
	if (ret) {
		dev_err(dev, "no usable %u-bit DMA\n", dma_bits);
		goto out_put;
	}
	/* 4. Coherent memory for control structures: the descriptor ring, and
	 * the area user space maps (long-lived, shared with the card). */
	edu->ring = dmam_alloc_coherent(dev, ring_size * sizeof(*edu->ring), &edu->ring_dma,
					GFP_KERNEL);
	edu->area_size = (size_t)area_kb << 10;
	edu->area = dmam_alloc_coherent(dev, edu->area_size, &edu->area_dma, GFP_KERNEL);
	if (!edu->ring || !edu->area) {
		ret = -ENOMEM;
		goto out_put;
	}
	/* 5. Interrupts: MSI when allowed, else INTx (freed with the device). */
	nvec = pci_alloc_irq_vectors(pdev, 1, 1,
				     use_msi ? PCI_IRQ_MSI | PCI_IRQ_LEGACY : PCI_IRQ_LEGACY);
	if (nvec < 0) {
		ret = nvec;
		goto out_put;
	}
	edu->msi = pdev->msi_enabled;
	/* 6. Initialize: self-test, then clear anything pending before arming. */
	ret = edu_selftest(edu);
	if (ret)
		goto out_put;
	writel(readl(edu->bar + EDU_REG_IRQ_STATUS), edu->bar + EDU_REG_IRQ_ACK);
	ret = devm_request_irq(dev, pci_irq_vector(pdev, 0), edu_irq, edu->msi ? 0 : IRQF_SHARED,
			       KBUILD_MODNAME, edu);
	if (ret)
		goto out_put;
	/* 7. Enable the engine: the ring is empty and the doorbell live; the
	 * character device is the last thing, so nobody submits before this. */
	snprintf(edu->name, sizeof(edu->name), "edu%d", edu->id);
	edu->misc.minor = MISC_DYNAMIC_MINOR;
	edu->misc.name = edu->name;
	edu->misc.fops = &edu_fops;
	edu->misc.parent = dev;
	ret = misc_register(&edu->misc);
	if (ret)
		goto out_put;
	edu->misc_registered = true;
	pci_set_drvdata(pdev, edu);
	dev_info(dev,
		 "/dev/%s: %s, ring %u, %u-bit DMA, bounce up to %u B, area %zu KiB, buffer %u B\n",
		 edu->name, edu->msi ? "MSI" : "INTx", ring_size, dma_bits, bounce_max,
		 edu->area_size >> 10, buf_bytes);
	return 0;

out_put:
	/* The managed resources (device enable, regions, mapping, coherent
	 * memory, vectors, IRQ) unwind after this returns. */
	kref_put(&edu->ref, edu_free);
	return ret;
}

static void edu_remove(struct pci_dev *pdev)
{
	struct edu_dev *edu = pci_get_drvdata(pdev);
	struct edu_file *f;
	unsigned long flags;
	int i;

	/* No new files; open ones see dead and get -ENODEV. */
	misc_deregister(&edu->misc);
	mutex_lock(&edu->files_mtx);
	spin_lock_irqsave(&edu->lock, flags);
	edu->dead = true;
	spin_unlock_irqrestore(&edu->lock, flags);
	/* The coherent area goes with the device: take it away from every
	 * mapping (a later touch faults to SIGBUS, edu_vm_fault). */
	list_for_each_entry(f, &edu->files, node)
	{
		unmap_mapping_range(f->mapping, 0, 0, 1);
	}
	mutex_unlock(&edu->files_mtx);

	/* Let the command the card runs finish (100 ms virtual): its memory
	 * stays mapped until it has. 2 s is twenty times that. A card that
	 * never finishes would need a reset before its memory is unmapped;
	 * edu has none, so that request fails with -EIO (and the log says so). */
	for (i = 0; i < 2000 && (readq(edu->bar + EDU_REG_DMA_CMD) & EDU_DMA_RUN); i++)
		usleep_range(1000, 2000);
	spin_lock_irqsave(&edu->lock, flags);
	if (edu->busy && edu->count) {
		if (readq(edu->bar + EDU_REG_DMA_CMD) & EDU_DMA_RUN)
			dev_err(edu->dev, "DMA still running after 2 s; its request fails\n");
		edu_retire(edu, (readq(edu->bar + EDU_REG_DMA_CMD) & EDU_DMA_RUN) ? -EIO : 0);
	}
	edu->busy = false;
	/* What the card will not run now fails with -ENODEV. */
	while (edu->count)
		edu_retire(edu, -ENODEV);
	spin_unlock_irqrestore(&edu->lock, flags);
	wake_up_all(&edu->space_wq);
	/* An interrupt raised by the last command may still be running. */
	synchronize_irq(pci_irq_vector(pdev, 0));
	dev_info(edu->dev, "/dev/%s removed\n", edu->name);
	kref_put(&edu->ref, edu_free);
}

static const struct pci_device_id edu_ids[] = { { PCI_DEVICE(EDU_VENDOR, EDU_DEVICE) }, {} };
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = KBUILD_MODNAME,
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
};

static int __init edu_init(void)
{
	if (ring_size < 2 || ring_size > 4096 || !is_power_of_2(ring_size) || area_kb < 4 ||
	    area_kb > 1024 || bounce_max > EDU_BUF_SIZE || !buf_bytes || buf_bytes > EDU_BUF_SIZE ||
	    dma_bits < 12 || dma_bits > EDU_DMA_BITS) {
		pr_err("edu: bad parameter (ring_size %u: power of two 2..4096; area_kb %u: "
		       "4..1024; bounce_max %u: <= 4096; buf_bytes %u: 1..4096; dma_bits %u: 12..28)\n",
		       ring_size, area_kb, bounce_max, buf_bytes, dma_bits);
		return -EINVAL;
	}
	return pci_register_driver(&edu_driver);
}

static void __exit edu_exit(void)
{
	pci_unregister_driver(&edu_driver);
}

module_init(edu_init);
module_exit(edu_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("DMA driver for QEMU's edu PCI device (wirepath, docs/kernel.md)");
