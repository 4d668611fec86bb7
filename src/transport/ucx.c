// SPDX-License-Identifier: MIT
/*
 * The ucx path: wirepath over UCX's UCP layer (Debian 12: UCX 1.13.1), for
 * traffic between hosts on whatever fabric UCX finds (tcp, shared memory,
 * verbs). A message path (docs/architecture.md, "ucx"):
 *
 * - One ucp context and worker per wirepath context, thread mode single.
 *   The worker's event fd (ucp_worker_get_efd) sits in the context's epoll
 *   set; poll progresses the worker, and before sleeping arms it
 *   (ucp_worker_arm: UCS_ERR_BUSY means events arrived meanwhile, so
 *   progress again instead of sleeping). busy_poll spins on progress.
 * - Connections by sockaddr: ucp_listener_create, connection requests queued
 *   by the listener's callback and accepted after progress returns;
 *   connectors ucp_ep_create with the sockaddr. Every endpoint uses
 *   UCP_ERR_HANDLING_MODE_PEER, so a dead peer fails its requests and calls
 *   the error callback. The acceptor sends HELLO once its endpoint exists:
 *   the connector's WP_EP_CONNECTED waits for it (UCX has no connect
 *   completion of its own in the client-server flow).
 * - Frames are active messages: the 40-byte wire header is the AM header,
 *   the payload the AM data (ucp_am_send_nbx; UCX switches to rendezvous
 *   above its threshold). Received data UCX can keep (UCP_AM_RECV_ATTR_FLAG_DATA)
 *   is held in place (UCS_INPROGRESS) and given back with
 *   ucp_am_data_release once the frame's callback returned (the ownership
 *   contract: lent to the callback, wp_msg_keep copies); rendezvous data is
 *   received (ucp_am_recv_data_nbx) into a buffer of the frame's validated
 *   length. Frames are delivered per connection in arrival order, a
 *   rendezvous frame holding back those behind it until its data is in.
 * - Bulk transfers are RMA (xfer_direct): regions are mapped once with
 *   ucp_mem_map when registered (the registration cache in mem.c), an
 *   exported region's rkey is packed (ucp_rkey_pack) and sent to every
 *   connection (RKEY messages, not frames), and the peer names it with the
 *   wp_rkey's id and key; a transfer is ucp_put_nbx / ucp_get_nbx per
 *   descriptor and one ucp_ep_flush_nbx, whose completion is the transfer's.
 * - explain names the lanes UCX selected, from UCX's own endpoint dump
 *   (ucp_ep_print_info: 1.13's ucp_ep_query reports no transports), and
 *   wp_ctx_opts.ucx_need checks them: under select=require a connection UCX
 *   put on another transport fails with -EPROTONOSUPPORT and an ERR line.
 *
 * Every UCX callback runs inside ucp_worker_progress, which must not be
 * re-entered: callbacks only record (queue a frame, a connection request, an
 * error) and the poll acts on what they recorded once progress returned.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <ucp/api/ucp.h>

#include "core/core.h"

enum {
	UCX_AM_FRAME = 0,    /* header: the wire header; data: the payload */
	UCX_AM_HELLO = 1,    /* acceptor -> connector: accepted */
	UCX_AM_RKEY = 2,     /* a region was exported: struct ucx_rkey_msg + packed rkey */
	UCX_AM_UNEXPORT = 3, /* a region is gone: struct ucx_rkey_msg */
	UCX_AM_BYE = 4,      /* orderly close: EOF after the frames before it */
	UCX_AM__COUNT
};

#define UCX_EVENTS 16
#define UCX_RKEY_MAX 4096u   /* packed rkey bytes accepted from a peer */
#define UCX_PEER_RKEYS 4096u /* regions a peer may announce per connection */
#define UCX_CONNREQ_MAX 128u /* connection requests waiting per listener */
#define UCX_CLOSE_WAIT_NS 1000000000ull
/*
 * The longest sleep while UCX holds send requests. UCX 1.13's shared-memory
 * transports (sysv, posix) queue a send the peer's FIFO has no room for and
 * retry it only from our progress; the peer freeing room signals nothing
 * our worker's event fd sees, so a sender asleep in epoll would never send
 * it (test_embed's 1000-chunk stream hung so). While sends are held the
 * sleep is capped to this; idle contexts still sleep without limit.
 */
#define UCX_SEND_WAIT_US 1000

/* A request UCX still holds (a send, a flush, a rendezvous receive, a
 * close), on the context's list until its callback runs: at destroy, those
 * that never complete (an unresponsive peer) are given back to UCX and
 * their owners told -ECONNABORTED, since UCX asserts on a worker destroyed
 * with requests the user did not release. */
struct ucx_req {
	struct ucx_req *prev, *next;
	void *handle;
	void (*abort)(struct ucx_req *rq);
};

#define ucx_container(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* An exported region, as announced (little-endian on the wire). */
struct ucx_rkey_msg {
	uint32_t id, key;
	uint64_t addr, len;
};

/* A peer's region we may address. */
struct ucx_rrkey {
	struct ucx_rrkey *next;
	uint32_t id, key;
	uint64_t addr, len;
	ucp_rkey_h rkey;
};

enum ucx_rx_kind { RX_HELD, RX_COPY, RX_RNDV, RX_HELLO, RX_BYE, RX_BAD };

/* One received message, in arrival order on its connection. */
struct ucx_rx {
	struct ucx_rx *next;
	struct wp_ep *ep;
	uint8_t kind;
	bool ready;   /* data in place (a rendezvous: received) */
	bool started; /* rendezvous receive posted */
	bool orphan;  /* its endpoint let go while UCX still writes into buf */
	int status;   /* 0, or a failed rendezvous receive */
	int reason;   /* RX_BAD: enum wp_bad_reason */
	struct ucx_req rq;
	struct wp_frame_hdr h;
	void *data; /* held UCX data, the rendezvous descriptor, or our buffer */
	size_t len;
	void *buf; /* ours to free (RX_COPY, RX_RNDV) */
};

struct ucx_connreq {
	struct ucx_connreq *next;
	ucp_conn_request_h req;
};

struct ucx_ep {
	ucp_ep_h uep;
	ucp_listener_h lst;
	struct ucx_connreq *creq, **creq_tail; /* listener: waiting requests */
	uint32_t ncreq;
	struct ucx_rx *rxq, **rxq_tail;
	struct wp_ep *next_rx; /* on the context's list of connections with rx */
	bool on_rx;
	ucs_status_t err; /* set by the error callback */
	bool err_seen;    /* acted upon */
	bool closed;      /* ucp_ep_close_nbx issued */
	struct ucx_req close_rq;
	struct wp_ep *ep;
	struct ucx_rrkey *rkeys;
	uint32_t nrkeys;
	char lanes[480]; /* what UCX selected, from ucp_ep_print_info */
	char tls[96];    /* the transports of the data lanes, comma-separated */
};

/* A region we mapped (ucp_mem_map). mr->idx stays -1: wp_mr_is_pinned
 * means pinned by the kernel for io_uring, and on tcp UCX pins nothing. */
struct ucx_memh {
	const struct wp_mr *mr;
	ucp_mem_h memh; /* NULL: free slot */
	void *rkey_buf; /* packed at export */
	size_t rkey_len;
};

struct ucx_sreq {
	struct ucx_sreq *next;
	struct ucx_req rq;
	struct wp_ep *ep;
	wp_done_fn done;
	void *arg;
	void *blob; /* control messages: freed at completion */
	uint8_t hdr[WP_FRAME_HDR];
};

struct ucx_xfer {
	struct ucx_req rq;
	struct wp_ep *ep;
	struct wp_xfer_stats *st; /* the core's, until wp_xfer_direct_done */
	int status;
};

struct ucx_ctx {
	int epfd; /* first: wp_epoll_bk_init */
	struct epoll_event ev[UCX_EVENTS];
	ucp_context_h uctx;
	ucp_worker_h w;
	int efd;
	struct wp_ep *rx_list;      /* connections with received messages queued */
	struct wp_ep *listeners[8]; /* listeners with connection requests */
	struct wp_ep **failed;      /* error callbacks to act on */
	uint32_t nfailed, failed_cap;
	struct ucx_memh *mh;
	uint32_t nmh;
	struct ucx_sreq *sfree;
	struct ucx_req inflight; /* requests UCX holds: list head */
	struct wp_ep *last_ep;   /* lookup cache: reply ep -> endpoint */
	ucp_ep_h last_uep;
	uint32_t sends; /* send requests UCX holds (see UCX_SEND_WAIT_US) */
	uint64_t am_rx, am_held, am_copied, am_rndv, rma_ops, rma_bytes;
	char need[64]; /* wp_ctx_opts.ucx_need */
};

static struct ucx_ep *uep_of(const struct wp_ep *ep)
{
	return ep->bk;
}

static struct ucx_ctx *uctx_of(const struct wp_ctx *ctx)
{
	return ctx->bk;
}

static void req_hold(struct wp_ctx *ctx, struct ucx_req *rq, void *handle,
		     void (*abort)(struct ucx_req *))
{
	struct ucx_req *h = &((struct ucx_ctx *)ctx->bk)->inflight;

	rq->handle = handle;
	rq->abort = abort;
	rq->next = h->next;
	rq->prev = h;
	h->next->prev = rq;
	h->next = rq;
}

/* The request completed: off the list; UCX gets the handle back. */
static void req_done(struct ucx_req *rq)
{
	rq->prev->next = rq->next;
	rq->next->prev = rq->prev;
	rq->next = rq->prev = rq;
	ucp_request_free(rq->handle);
	rq->handle = NULL;
}

static int ucx_errno(ucs_status_t st)
{
	switch (st) {
	case UCS_OK:
		return 0;
	case UCS_ERR_NO_MEMORY:
		return -ENOMEM;
	case UCS_ERR_CANCELED:
		return -ECANCELED;
	case UCS_ERR_ENDPOINT_TIMEOUT:
	case UCS_ERR_TIMED_OUT:
		return -ETIMEDOUT;
	case UCS_ERR_UNREACHABLE:
		return -EHOSTUNREACH;
	case UCS_ERR_REJECTED:
		return -ECONNREFUSED;
	case UCS_ERR_BUSY:
		return -EBUSY;
	case UCS_ERR_UNSUPPORTED:
		return -EOPNOTSUPP;
	case UCS_ERR_INVALID_PARAM:
		return -EINVAL;
	case UCS_ERR_NO_DEVICE:
		return -ENODEV;
	case UCS_ERR_CONNECTION_RESET:
	default:
		return -ECONNRESET;
	}
}

/* ---- probing ------------------------------------------------------------ */

static int ucx_open(ucp_context_h *uctx, char *why, size_t len)
{
	ucp_params_t pp = { .field_mask = UCP_PARAM_FIELD_FEATURES,
			    .features = UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP };
	ucp_config_t *cfg;
	ucs_status_t st;

	st = ucp_config_read(NULL, NULL, &cfg);
	if (st != UCS_OK) {
		snprintf(why, len, "ucp_config_read: %s", ucs_status_string(st));
		return ucx_errno(st);
	}
	st = ucp_init(&pp, cfg, uctx);
	ucp_config_release(cfg);
	if (st != UCS_OK) {
		snprintf(why, len, "ucp_init: %s", ucs_status_string(st));
		return st == UCS_ERR_NO_DEVICE ? -ENODEV : ucx_errno(st);
	}
	return 0;
}

/* The resources UCX found ("tcp/lo sysv/memory ..."), from its own dump. */
static void ucx_resources(ucp_context_h uctx, char *out, size_t len, bool *rdma)
{
	char *dump = NULL, *line, *save = NULL;
	size_t dlen = 0;
	FILE *f = open_memstream(&dump, &dlen);

	*out = 0;
	*rdma = false;
	if (!f)
		return;
	ucp_context_print_info(uctx, f);
	fclose(f);
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *r = strstr(line, "resource");
		const char *name = r ? strstr(r, "flags") : NULL;

		if (!name || !(name = strstr(name, " -- ")))
			continue;
		name += 4;
		snprintf(out + strlen(out), len - strlen(out), "%s%s", *out ? " " : "", name);
		if (!strncmp(name, "rc_", 3) || !strncmp(name, "ud_", 3) ||
		    !strncmp(name, "dc_", 3))
			*rdma = true;
	}
	free(dump);
}

static int ucx_available(char *why, size_t len)
{
	ucp_context_h uctx;
	int ret = ucx_open(&uctx, why, len);

	if (ret == 0)
		ucp_cleanup(uctx);
	return ret;
}

static void ucx_probe(void)
{
	char why[160] = "", res[120];
	ucp_context_h uctx;
	int ret = ucx_open(&uctx, why, sizeof(why));
	bool rdma;

	if (ret < 0) {
		wp_probe_add("path.ucx", ret, "UCX %s: %s", ucp_get_version_string(), why);
		return;
	}
	ucx_resources(uctx, res, sizeof(res), &rdma);
	ucp_cleanup(uctx);
	wp_probe_add("path.ucx", 0, "UCX %s (ucp_init with AM, RMA, wakeup): %s",
		     ucp_get_version_string(), res);
	wp_probe_add("path.ucx.rdma", rdma ? 0 : -ENODEV,
		     rdma ? "UCX has verbs transports: %s"
			  : "no verbs transport among UCX's resources (%s): ucx_need=rdma "
			    "cannot be met",
		     res);
}

/* ---- endpoint lookup and bookkeeping ----------------------------------- */

/* The endpoint a message came from (its reply ep), or NULL. */
static struct wp_ep *ucx_find(struct wp_ctx *ctx, ucp_ep_h uep)
{
	struct ucx_ctx *uc = uctx_of(ctx);

	if (!uep)
		return NULL;
	if (uc->last_uep == uep && uc->last_ep)
		return uc->last_ep;
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (uep_of(ep)->uep == uep && !uep_of(ep)->closed) {
			uc->last_uep = uep;
			uc->last_ep = ep;
			return ep;
		}
	return NULL;
}

static void rx_push(struct wp_ep *ep, struct ucx_rx *r)
{
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_ctx *uc = uctx_of(ep->ctx);

	r->ep = ep;
	if (!ue->rxq_tail)
		ue->rxq_tail = &ue->rxq;
	*ue->rxq_tail = r;
	ue->rxq_tail = &r->next;
	if (!ue->on_rx) {
		ue->on_rx = true;
		ue->next_rx = uc->rx_list;
		uc->rx_list = ep;
	}
}

static void rx_release(struct ucx_ctx *uc, struct ucx_rx *r)
{
	if (r->kind == RX_HELD && r->len)
		ucp_am_data_release(uc->w, r->data);
	else if (r->kind == RX_RNDV && !r->started && r->data)
		ucp_am_data_release(uc->w, r->data); /* drops the rendezvous */
	free(r->buf);
	free(r);
}

/* ---- sending ------------------------------------------------------------ */

static struct ucx_sreq *sreq_get(struct ucx_ctx *uc)
{
	struct ucx_sreq *s = uc->sfree;

	if (s) {
		uc->sfree = s->next;
		return s;
	}
	return malloc(sizeof(*s));
}

static void sreq_put(struct ucx_ctx *uc, struct ucx_sreq *s)
{
	free(s->blob);
	s->blob = NULL;
	s->next = uc->sfree;
	uc->sfree = s;
}

static void ucx_send_cb(void *request, ucs_status_t status, void *user_data)
{
	struct ucx_sreq *s = user_data;
	struct wp_ep *ep = s->ep;

	ep->io_inflight--;
	uctx_of(ep->ctx)->sends--;
	if (s->done)
		wp_defer(ep->ctx, s->done, s->arg, ucx_errno(status));
	req_done(&s->rq);
	sreq_put(uctx_of(ep->ctx), s);
}

static void ucx_send_abort(struct ucx_req *rq)
{
	ucx_send_cb(rq->handle, UCS_ERR_CANCELED, ucx_container(rq, struct ucx_sreq, rq));
}

/* One active message: header (copied into the request) and data (the
 * caller's until done runs). Returns 0 (done deferred, or runs at the
 * completion) or -errno (nothing taken). */
static int ucx_am_send(struct wp_ep *ep, unsigned id, const void *hdr, size_t hlen,
		       const void *data, size_t len, wp_done_fn done, void *arg, void *blob)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_sreq *s;
	ucs_status_ptr_t p;
	ucp_request_param_t rp = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FIELD_FLAGS,
		.cb.send = ucx_send_cb,
		.flags = UCP_AM_SEND_FLAG_REPLY,
	};

	if (!ue->uep || ue->closed || ue->err != UCS_OK)
		return -ENOTCONN;
	s = sreq_get(uc);
	if (!s)
		return -ENOMEM;
	s->ep = ep;
	s->done = done;
	s->arg = arg;
	s->blob = blob;
	if (hlen)
		memcpy(s->hdr, hdr, hlen);
	rp.user_data = s;
	p = ucp_am_send_nbx(ue->uep, id, hlen ? s->hdr : NULL, hlen, data, len, &rp);
	if (p == NULL) {
		if (done)
			wp_defer(ep->ctx, done, arg, 0);
		sreq_put(uc, s);
		return 0;
	}
	if (UCS_PTR_IS_ERR(p)) {
		s->blob = NULL; /* the caller still owns it */
		sreq_put(uc, s);
		return ucx_errno(UCS_PTR_STATUS(p));
	}
	req_hold(ep->ctx, &s->rq, p, ucx_send_abort);
	ep->io_inflight++;
	uc->sends++;
	return 0;
}

/* A control message whose bytes are copied (the copy freed at completion). */
static int ucx_ctl_send(struct wp_ep *ep, unsigned id, const void *a, size_t alen, const void *b,
			size_t blen)
{
	uint8_t *blob = malloc(alen + blen + 1);
	int ret;

	if (!blob)
		return -ENOMEM;
	if (alen)
		memcpy(blob, a, alen);
	if (blen)
		memcpy(blob + alen, b, blen);
	ret = ucx_am_send(ep, id, NULL, 0, blob, alen + blen, NULL, NULL, blob);
	if (ret < 0)
		free(blob);
	return ret;
}

static int ucx_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		    wp_done_fn done, void *arg)
{
	uint8_t hdr[WP_FRAME_HDR];
	bool copied = false;
	int ret;

	/* Without a completion the payload is copied now (counted): UCX may
	 * still read it after this call returns. */
	if (!done && len) {
		ret = wp_payload_copy(&data, len, &done, &arg);
		if (ret < 0)
			return ret;
		copied = true;
	}
	{
		struct wp_frame_hdr hh = *h;

		hh.len = (uint32_t)len;
		if (!hh.tenant)
			hh.tenant = ep->tenant;
		wp_frame_encode(&hh, hdr);
	}
	ret = ucx_am_send(ep, UCX_AM_FRAME, hdr, sizeof(hdr), data, len, done, arg, NULL);
	if (ret < 0 && copied)
		wp_copy_done(arg, ret);
	if (ret == 0) {
		WP_CNT_ADD(msgs_tx, 1);
		WP_CNT_ADD(bytes_tx, WP_FRAME_HDR + len);
	}
	return ret;
}

/* Sends go to UCX at once (ucx_send): nothing waits for a burst. */
static void ucx_flush(struct wp_ep *ep)
{
}

static const struct wp_fast_ops ucx_fast = { .send = ucx_send, .flush = ucx_flush };

/* ---- regions: mapping, rkeys ------------------------------------------- */

static struct ucx_memh *mh_find(struct ucx_ctx *uc, const struct wp_mr *mr)
{
	for (uint32_t i = 0; i < uc->nmh; i++)
		if (uc->mh[i].memh && uc->mh[i].mr == mr)
			return &uc->mh[i];
	return NULL;
}

static int ucx_mem_register(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	ucp_mem_map_params_t mp = { .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
						  UCP_MEM_MAP_PARAM_FIELD_LENGTH,
				    .address = mr->addr,
				    .length = mr->len };
	ucs_status_t st;
	uint32_t i;

	mr->idx = -1;
	for (i = 0; i < uc->nmh && uc->mh[i].memh; i++)
		;
	if (i == uc->nmh) {
		uint32_t n = uc->nmh ? uc->nmh * 2 : 16;
		struct ucx_memh *m = realloc(uc->mh, n * sizeof(*m));

		if (!m)
			return -ENOMEM;
		memset(m + uc->nmh, 0, (n - uc->nmh) * sizeof(*m));
		uc->mh = m;
		uc->nmh = n;
	}
	st = ucp_mem_map(uc->uctx, &mp, &uc->mh[i].memh);
	if (st != UCS_OK) {
		uc->mh[i].memh = NULL;
		wp_log(ctx, WP_LOG_WARN, "ucp_mem_map %p+%zu: %s", (void *)mr->addr, mr->len,
		       ucs_status_string(st));
		return ucx_errno(st);
	}
	uc->mh[i].mr = mr;
	return 0;
}

static void rkey_msg(const struct wp_mr *mr, struct ucx_rkey_msg *m)
{
	m->id = htole32(mr->id);
	m->key = htole32(mr->key);
	m->addr = htole64((uint64_t)(uintptr_t)mr->addr);
	m->len = htole64(mr->len);
}

/* The packed rkey of an exported region (packed at the first need). */
static struct ucx_memh *mr_packed(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	struct ucx_memh *m;
	ucs_status_t st;

	m = mh_find(uc, mr);
	if (!m && (ucx_mem_register(ctx, mr) < 0 || !(m = mh_find(uc, mr))))
		return NULL;
	if (m->rkey_buf)
		return m;
	st = ucp_rkey_pack(uc->uctx, m->memh, &m->rkey_buf, &m->rkey_len);
	if (st != UCS_OK) {
		m->rkey_buf = NULL;
		wp_log(ctx, WP_LOG_WARN, "ucp_rkey_pack (region %u): %s", mr->id,
		       ucs_status_string(st));
		return NULL;
	}
	return m;
}

static void send_rkey(struct wp_ep *ep, struct wp_mr *mr)
{
	struct ucx_memh *m = mr_packed(ep->ctx, mr);
	struct ucx_rkey_msg msg;

	if (!m)
		return; /* transfers naming it go as frames */
	rkey_msg(mr, &msg);
	if (ucx_ctl_send(ep, UCX_AM_RKEY, &msg, sizeof(msg), m->rkey_buf, m->rkey_len) < 0)
		wp_log(ep->ctx, WP_LOG_WARN, "could not announce region %u's rkey", mr->id);
}

static bool ep_live(const struct wp_ep *ep)
{
	const struct ucx_ep *ue = uep_of(ep);

	return ep->state == WP_EPS_OPEN && ue->uep && !ue->closed && ue->err == UCS_OK;
}

static void ucx_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr)
{
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (ep_live(ep))
			send_rkey(ep, mr);
}

static void ucx_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	struct ucx_memh *m = mh_find(uc, mr);

	if (!m)
		return;
	if (m->rkey_buf) {
		struct ucx_rkey_msg msg;

		/* Peers forget it before the memory goes (a later put would
		 * land in unmapped memory here). */
		rkey_msg(mr, &msg);
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
			if (ep_live(ep))
				ucx_ctl_send(ep, UCX_AM_UNEXPORT, &msg, sizeof(msg), NULL, 0);
		ucp_rkey_buffer_release(m->rkey_buf);
		m->rkey_buf = NULL;
	}
	ucp_mem_unmap(uc->uctx, m->memh);
	m->memh = NULL;
	m->mr = NULL;
}

static void rrkey_drop(struct ucx_ep *ue, uint32_t id)
{
	for (struct ucx_rrkey **pp = &ue->rkeys; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct ucx_rrkey *r = *pp;

			*pp = r->next;
			ucp_rkey_destroy(r->rkey);
			free(r);
			ue->nrkeys--;
			return;
		}
}

/* A peer announced (or withdrew) a region: bytes it controls, checked. */
static void rkey_rx(struct wp_ep *ep, unsigned id, const uint8_t *p, size_t len)
{
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_rkey_msg m;
	struct ucx_rrkey *r;
	ucs_status_t st;

	if (len < sizeof(m) || (id == UCX_AM_RKEY && len - sizeof(m) > UCX_RKEY_MAX)) {
		wp_log_rl(ep->ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "ucx: malformed region announcement (%zu bytes) ignored", len);
		return;
	}
	memcpy(&m, p, sizeof(m));
	rrkey_drop(ue, le32toh(m.id));
	if (id == UCX_AM_UNEXPORT)
		return;
	if (ue->nrkeys >= UCX_PEER_RKEYS || !ue->uep) {
		wp_log_rl(ep->ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "ucx: peer announced more than %u regions: region %u ignored",
			  UCX_PEER_RKEYS, le32toh(m.id));
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return;
	st = ucp_ep_rkey_unpack(ue->uep, p + sizeof(m), &r->rkey);
	if (st != UCS_OK) {
		wp_log(ep->ctx, WP_LOG_WARN, "ucx: ucp_ep_rkey_unpack (region %u): %s",
		       le32toh(m.id), ucs_status_string(st));
		free(r);
		return;
	}
	r->id = le32toh(m.id);
	r->key = le32toh(m.key);
	r->addr = le64toh(m.addr);
	r->len = le64toh(m.len);
	r->next = ue->rkeys;
	ue->rkeys = r;
	ue->nrkeys++;
}

/* ---- bulk transfers as RMA -------------------------------------------- */

static void ucx_flush_cb(void *request, ucs_status_t status, void *user_data)
{
	struct ucx_xfer *x = user_data;
	struct wp_ep *ep = x->ep;

	ep->io_inflight--;
	wp_xfer_direct_done(x->st, x->status ? x->status : ucx_errno(status)); /* deferred */
	req_done(&x->rq);
	free(x);
}

static void ucx_flush_abort(struct ucx_req *rq)
{
	ucx_flush_cb(rq->handle, UCS_ERR_CANCELED, ucx_container(rq, struct ucx_xfer, rq));
}

static int ucx_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p,
			   struct wp_xfer_stats *st)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_memh *lm;
	struct ucx_rrkey *r;
	struct ucx_xfer *x;
	ucs_status_ptr_t sp;
	ucp_request_param_t rp = { 0 };
	uint64_t total = 0;

	if (!ep_live(ep))
		return -ENOTCONN;
	for (r = ue->rkeys; r && r->id != p->remote->id; r = r->next)
		;
	/* Unknown region or key, or ranges past it: frames, and the peer
	 * answers EACCES or ERANGE as on every path. */
	if (!r || r->key != p->remote->key)
		return -EOPNOTSUPP;
	for (uint32_t i = 0; i < p->ndesc; i++)
		if (p->desc[i].remote_off > r->len ||
		    p->desc[i].len > r->len - p->desc[i].remote_off)
			return -EOPNOTSUPP;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->ep = ep;
	x->st = st;
	lm = mh_find(uc, p->local);
	if (lm) { /* mapped once at registration: UCX maps nothing per transfer */
		rp.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
		rp.memh = lm->memh;
	}
	for (uint32_t i = 0; i < p->ndesc && !x->status; i++) {
		const struct wp_xfer_desc *d = &p->desc[i];
		void *local = p->local->addr + d->local_off;
		uint64_t raddr = r->addr + d->remote_off;

		if (!d->len)
			continue;
		sp = p->op == WP_XFER_WRITE
			     ? ucp_put_nbx(ue->uep, local, d->len, raddr, r->rkey, &rp)
			     : ucp_get_nbx(ue->uep, local, d->len, raddr, r->rkey, &rp);
		if (UCS_PTR_IS_ERR(sp))
			x->status = ucx_errno(UCS_PTR_STATUS(sp));
		else if (sp)
			ucp_request_free(sp); /* completes with the flush below */
		total += d->len;
		uc->rma_ops++;
	}
	uc->rma_bytes += total;
	st->copied_local = 0;
	st->copied_remote = 0;
	/* The flush completes when every put has landed in the peer's region
	 * and every get in ours. */
	rp = (ucp_request_param_t){ .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
						    UCP_OP_ATTR_FIELD_USER_DATA,
				    .cb.send = ucx_flush_cb,
				    .user_data = x };
	sp = ucp_ep_flush_nbx(ue->uep, &rp);
	if (sp == NULL || UCS_PTR_IS_ERR(sp)) {
		int err = sp ? ucx_errno(UCS_PTR_STATUS(sp)) : 0;

		wp_xfer_direct_done(st, x->status ? x->status : err); /* deferred */
		free(x);
		return 1;
	}
	req_hold(ep->ctx, &x->rq, sp, ucx_flush_abort);
	ep->io_inflight++;
	return 1;
}

/* ---- receiving ---------------------------------------------------------- */

static ucs_status_t ucx_am_cb(struct wp_ctx *ctx, unsigned id, const void *header, size_t hlen,
			      void *data, size_t len, const ucp_am_recv_param_t *param)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	bool rndv = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV;
	bool held = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_DATA;
	ucp_ep_h reply = param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP ? param->reply_ep
									    : NULL;
	struct wp_ep *ep = ucx_find(ctx, reply);
	struct ucx_rx *r;

	if (!ep || ep->state == WP_EPS_CLOSED || ep->state == WP_EPS_LISTEN)
		return rndv ? UCS_ERR_CANCELED : UCS_OK; /* dropped */
	if (id == UCX_AM_RKEY || id == UCX_AM_UNEXPORT) {
		if (rndv)
			return UCS_ERR_UNSUPPORTED;
		rkey_rx(ep, id, data, len);
		return UCS_OK;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return rndv ? UCS_ERR_NO_MEMORY
			    : UCS_OK; /* a frame lost: the peer's call times out */
	uc->am_rx++;
	if (id == UCX_AM_HELLO || id == UCX_AM_BYE) {
		r->kind = id == UCX_AM_HELLO ? RX_HELLO : RX_BYE;
		r->ready = true;
		rx_push(ep, r);
		return rndv ? UCS_ERR_UNSUPPORTED : UCS_OK;
	}
	if (hlen != WP_FRAME_HDR) {
		r->kind = RX_BAD;
		r->reason = WP_BAD_MAGIC;
	} else {
		int reason = 0, n = wp_frame_decode(header, hlen, ctx->o.max_frame, &r->h, &reason);

		if (n != (int)WP_FRAME_HDR || r->h.len != len) {
			r->kind = RX_BAD;
			r->reason = n < 0 ? reason : WP_BAD_TRUNCATED;
		}
	}
	if (r->kind == RX_BAD) {
		r->ready = true;
		rx_push(ep, r);
		return rndv ? UCS_ERR_REJECTED : UCS_OK;
	}
	r->len = len;
	if (rndv) {
		/* Received after progress returns, into a buffer of the
		 * validated length (ucx_rx_start). */
		r->kind = RX_RNDV;
		r->data = data;
		uc->am_rndv++;
		rx_push(ep, r);
		return UCS_INPROGRESS;
	}
	r->ready = true;
	if (held || !len) {
		static uint8_t empty[1];

		r->kind = RX_HELD;
		/* An empty payload still points somewhere, as on every path. */
		r->data = len ? data : empty;
		uc->am_held += len != 0;
		rx_push(ep, r);
		return len ? UCS_INPROGRESS : UCS_OK;
	}
	/* UCX cannot keep this data past the callback: copy it (counted). */
	r->kind = RX_COPY;
	r->buf = malloc(len);
	if (!r->buf) {
		free(r);
		return UCS_OK;
	}
	memcpy(r->buf, data, len);
	r->data = r->buf;
	WP_CNT_ADD(bytes_copied, len);
	uc->am_copied += len;
	rx_push(ep, r);
	return UCS_OK;
}

#define UCX_AM_HANDLER(n)                                                                         \
	static ucs_status_t ucx_am_cb_##n(void *arg, const void *header, size_t hlen, void *data, \
					  size_t len, const ucp_am_recv_param_t *param)           \
	{                                                                                         \
		return ucx_am_cb(arg, n, header, hlen, data, len, param);                         \
	}
UCX_AM_HANDLER(0)
UCX_AM_HANDLER(1)
UCX_AM_HANDLER(2)
UCX_AM_HANDLER(3)
UCX_AM_HANDLER(4)
static const ucp_am_recv_callback_t ucx_am_cbs[UCX_AM__COUNT] = {
	ucx_am_cb_0, ucx_am_cb_1, ucx_am_cb_2, ucx_am_cb_3, ucx_am_cb_4,
};

static void ucx_rndv_cb(void *request, ucs_status_t status, size_t length, void *user_data)
{
	struct ucx_rx *r = user_data;

	r->ep->io_inflight--;
	r->ready = true;
	r->status = ucx_errno(status);
	req_done(&r->rq);
	if (r->orphan) { /* UCX is done with buf only now */
		free(r->buf);
		free(r);
	}
}

static void ucx_rndv_abort(struct ucx_req *rq)
{
	ucx_rndv_cb(rq->handle, UCS_ERR_CANCELED, 0, ucx_container(rq, struct ucx_rx, rq));
}

/* Post the rendezvous receives queued on ep. */
static void ucx_rx_start(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);

	for (struct ucx_rx *r = uep_of(ep)->rxq; r; r = r->next) {
		ucp_request_param_t rp = { .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
							   UCP_OP_ATTR_FIELD_USER_DATA,
					   .cb.recv_am = ucx_rndv_cb,
					   .user_data = r };
		ucs_status_ptr_t sp;

		if (r->kind != RX_RNDV || r->started)
			continue;
		r->started = true;
		r->buf = malloc(r->len);
		if (!r->buf) {
			ucp_am_data_release(uc->w, r->data); /* drops it */
			r->status = -ENOMEM;
			r->ready = true;
			continue;
		}
		sp = ucp_am_recv_data_nbx(uc->w, r->data, r->buf, r->len, &rp);
		r->data = r->buf; /* UCX owns the descriptor now */
		if (sp == NULL) {
			r->ready = true;
		} else if (UCS_PTR_IS_ERR(sp)) {
			r->status = ucx_errno(UCS_PTR_STATUS(sp));
			r->ready = true;
		} else {
			req_hold(ep->ctx, &r->rq, sp, ucx_rndv_abort);
			ep->io_inflight++;
		}
	}
}

/* Lanes UCX selected for ep, from its own dump; the data lanes'
 * transports into ue->tls. */
static void ucx_lanes(struct wp_ep *ep)
{
	struct ucx_ep *ue = uep_of(ep);
	char *dump = NULL, *line, *save = NULL;
	size_t dlen = 0;
	FILE *f;

	ue->lanes[0] = 0;
	ue->tls[0] = 0;
	if (!ue->uep || !(f = open_memstream(&dump, &dlen)))
		return;
	ucp_ep_print_info(ue->uep, f);
	fclose(f);
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *l = strstr(line, "lane["), *c, *tl, *ops, *e;
		char tname[32];
		bool data;

		if (!l && (l = strstr(line, "am_send: "))) {
			/* where UCX switches protocol: "0..<egr/short>..93..<rndv>.." */
			snprintf(ue->lanes + strlen(ue->lanes),
				 sizeof(ue->lanes) - strlen(ue->lanes), "; %s", l);
			continue;
		}
		if (!l || !(c = strchr(l, ':')))
			continue;
		c++;
		while (*c == ' ')
			c++;
		if (!strncmp(c, "cm ", 3)) {
			snprintf(ue->lanes + strlen(ue->lanes),
				 sizeof(ue->lanes) - strlen(ue->lanes), "%scm %s",
				 *ue->lanes ? "; " : "", c + 3);
			continue;
		}
		/* " 2:tcp/lo.0 md[1]  -> md[1]/tcp/sysdev[255] rma_bw#0 am am_bw#0 wireup" */
		tl = strchr(c, ':');
		if (!tl)
			continue;
		tl++;
		e = strchr(tl, ' ');
		ops = strstr(tl, "sysdev[");
		ops = ops ? strchr(ops, ' ') : NULL;
		ops = ops ? ops + 1 : "";
		snprintf(ue->lanes + strlen(ue->lanes), sizeof(ue->lanes) - strlen(ue->lanes),
			 "%s%.*s (%s)", *ue->lanes ? "; " : "", e ? (int)(e - tl) : 24, tl,
			 *ops ? ops : "no operation of its own");
		data = strstr(ops, "am") || strstr(ops, "rma");
		snprintf(tname, sizeof(tname), "%.*s", (int)strcspn(tl, "/ "), tl);
		if (data && !strstr(ue->tls, tname))
			snprintf(ue->tls + strlen(ue->tls), sizeof(ue->tls) - strlen(ue->tls),
				 "%s%s", *ue->tls ? "," : "", tname);
	}
	free(dump);
}

/* Is transport t one of those `need` names (names or classes)? */
static bool tl_allowed(const char *need, const char *t)
{
	char buf[64], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", need);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (!strcmp(tok, t))
			return true;
		if (!strcmp(tok, "rdma") &&
		    (!strncmp(t, "rc", 2) || !strncmp(t, "ud", 2) || !strncmp(t, "dc", 2)))
			return true;
		if (!strcmp(tok, "shm") &&
		    (!strcmp(t, "posix") || !strcmp(t, "sysv") || !strcmp(t, "cma") ||
		     !strcmp(t, "xpmem") || !strcmp(t, "knem") || !strcmp(t, "self")))
			return true;
	}
	return false;
}

/* 0 when every data lane is on a transport ucx_need allows (or none is
 * asked for), else the first that is not, in *bad. */
static bool need_met(const struct wp_ctx *ctx, const struct ucx_ep *ue, char *bad, size_t len)
{
	const char *need = uctx_of(ctx)->need;
	char buf[96], *tok, *save = NULL;

	if (!*need)
		return true;
	if (!*ue->tls) {
		snprintf(bad, len, "(no data lane reported)");
		return false;
	}
	snprintf(buf, sizeof(buf), "%s", ue->tls);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!tl_allowed(need, tok)) {
			snprintf(bad, len, "%s", tok);
			return false;
		}
	return true;
}

/* The connection is up: see what UCX chose, hold it to ucx_need, announce
 * our exported regions. Returns 0, or -EPROTONOSUPPORT (the caller fails
 * the connection). */
static int ucx_up(struct wp_ep *ep)
{
	struct wp_ctx *ctx = ep->ctx;
	struct ucx_ep *ue = uep_of(ep);
	char bad[32];

	ucx_lanes(ep);
	if (!need_met(ctx, ue, bad, sizeof(bad))) {
		if (ctx->o.select == WP_SELECT_REQUIRE) {
			wp_log(ctx, WP_LOG_ERR,
			       "ucx: UCX put this connection on %s (lanes: %s) but ucx_need=%s is "
			       "required (select=require): refusing it",
			       bad, ue->lanes, uctx_of(ctx)->need);
			return -EPROTONOSUPPORT;
		}
		wp_log(ctx, WP_LOG_WARN,
		       "ucx: UCX put this connection on %s (lanes: %s), not on ucx_need=%s; "
		       "keeping it (select=%s)",
		       bad, ue->lanes, uctx_of(ctx)->need,
		       ctx->o.select == WP_SELECT_PREFER ? "prefer" : "any");
	}
	wp_conn_established(ep);
	for (struct wp_mr *mr = ctx->mrs; mr && ep_live(ep); mr = mr->next)
		if (mr->exported)
			send_rkey(ep, mr);
	return 0;
}

/* Deliver what is ready on ep, in order. */
static int ucx_rx_deliver(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_rx *r;
	int n = 0;

	ucx_rx_start(ep);
	while ((r = ue->rxq) && r->ready) {
		ue->rxq = r->next;
		if (!ue->rxq)
			ue->rxq_tail = &ue->rxq;
		n++;
		if (ep->state == WP_EPS_CLOSED) {
			/* dropped with the connection */
		} else if (r->kind == RX_HELLO) {
			int err = ep->state == WP_EPS_CONNECTING ? ucx_up(ep) : 0;

			if (err)
				wp_conn_fail(ep, err);
		} else if (r->kind == RX_BYE) {
			wp_conn_fail(ep, 0);
		} else if (r->kind == RX_BAD) {
			wp_conn_refuse(ep, r->reason, -EPROTO, "ucx: bad frame header from peer");
		} else if (r->status) {
			wp_log(ep->ctx, WP_LOG_WARN, "ucx: rendezvous receive of %zu bytes: %s",
			       r->len, strerror(-r->status));
			wp_conn_fail(ep, r->status);
		} else {
			ep->partial_since = 0;
			WP_CNT_ADD(bytes_rx, WP_FRAME_HDR + r->len);
			wp_conn_deliver(ep, &r->h, r->data);
		}
		rx_release(uc, r);
	}
	return n;
}

/* ---- connections -------------------------------------------------------- */

static void ucx_err_cb(void *arg, ucp_ep_h uep, ucs_status_t status)
{
	struct wp_ep *ep = arg;
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);

	if (ue->err != UCS_OK || ue->closed)
		return;
	ue->err = status;
	if (uc->nfailed == uc->failed_cap) {
		uint32_t n = uc->failed_cap ? uc->failed_cap * 2 : 16;
		struct wp_ep **f = realloc(uc->failed, n * sizeof(*f));

		if (!f)
			return; /* acted on at the next send or close */
		uc->failed = f;
		uc->failed_cap = n;
	}
	uc->failed[uc->nfailed++] = ep;
	ep->io_inflight++; /* until acted on: the pointer stays valid */
}

static ucp_ep_params_t ep_params(struct wp_ep *ep)
{
	return (ucp_ep_params_t){
		.field_mask = UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER,
		.err_mode = UCP_ERR_HANDLING_MODE_PEER,
		.err_handler = { .cb = ucx_err_cb, .arg = ep },
	};
}

static void ucx_conn_cb(ucp_conn_request_h req, void *arg)
{
	struct wp_ep *l = arg;
	struct ucx_ep *ul = uep_of(l);
	struct ucx_ctx *uc = uctx_of(l->ctx);
	struct ucx_connreq *c;

	if (ul->ncreq >= UCX_CONNREQ_MAX || !(c = calloc(1, sizeof(*c)))) {
		ucp_listener_reject(ul->lst, req);
		wp_log_rl(l->ctx, WP_RL_ACCEPT, WP_LOG_WARN,
			  "ucx: %u connection requests waiting: one rejected", ul->ncreq);
		return;
	}
	c->req = req;
	if (!ul->creq_tail)
		ul->creq_tail = &ul->creq;
	*ul->creq_tail = c;
	ul->creq_tail = &c->next;
	ul->ncreq++;
	for (unsigned i = 0; i < sizeof(uc->listeners) / sizeof(uc->listeners[0]); i++) {
		if (uc->listeners[i] == l)
			break;
		if (!uc->listeners[i]) {
			uc->listeners[i] = l;
			break;
		}
	}
}

static int ucx_accept(struct wp_ep *l)
{
	struct ucx_ep *ul = uep_of(l);
	struct ucx_connreq *c;
	int n = 0;

	while (!l->rx_paused && l->state == WP_EPS_LISTEN && (c = ul->creq)) {
		ucp_conn_request_attr_t ca = { .field_mask =
						       UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR };
		struct wp_admit adm;
		ucp_ep_params_t p;
		struct wp_ep *ep;
		ucs_status_t st;
		bool have_addr;
		int ret;

		ul->creq = c->next;
		if (!ul->creq)
			ul->creq_tail = &ul->creq;
		ul->ncreq--;
		n++;
		have_addr = ucp_conn_request_query(c->req, &ca) == UCS_OK;
		if (wp_conn_admit(l->ctx, have_addr ? (struct sockaddr *)&ca.client_address : NULL,
				  have_addr ? sizeof(ca.client_address) : 0, &adm) < 0) {
			ucp_listener_reject(ul->lst, c->req);
			free(c);
			continue;
		}
		ep = wp_ep_alloc(l->ctx, &l->cbs);
		if (!ep) {
			ucp_listener_reject(ul->lst, c->req);
			free(c);
			wp_accept_error(l, -ENOMEM);
			continue;
		}
		ep->accepted = true;
		wp_conn_admitted(ep, &adm);
		p = ep_params(ep);
		p.field_mask |= UCP_EP_PARAM_FIELD_CONN_REQUEST;
		p.conn_request = c->req;
		free(c);
		st = ucp_ep_create(uctx_of(l->ctx)->w, &p, &uep_of(ep)->uep);
		if (st != UCS_OK) {
			uep_of(ep)->uep = NULL;
			wp_log_rl(l->ctx, WP_RL_ACCEPT, WP_LOG_WARN,
				  "ucx: ucp_ep_create (accept): %s", ucs_status_string(st));
			wp_ep_accept_failed(ep, ucx_errno(st));
			continue;
		}
		wp_accept_ok(l);
		/* The connector's CONNECTED waits for HELLO. */
		ret = ucx_up(ep);
		if (!ret)
			ret = ucx_ctl_send(ep, UCX_AM_HELLO, NULL, 0, NULL, 0);
		if (ret < 0)
			wp_ep_accept_failed(ep, ret);
	}
	return n;
}

/* Act on what the callbacks recorded. Returns events handled. */
static int ucx_after(struct wp_ctx *ctx)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	struct wp_ep *list;
	int n = 0;

	for (unsigned i = 0; i < sizeof(uc->listeners) / sizeof(uc->listeners[0]); i++) {
		struct wp_ep *l = uc->listeners[i];

		if (!l)
			continue;
		n += ucx_accept(l);
		if (!uep_of(l)->creq)
			uc->listeners[i] = NULL;
	}
	/* Frames first: what the peer sent before it died is delivered. */
	list = uc->rx_list;
	uc->rx_list = NULL;
	while (list) {
		struct wp_ep *ep = list;
		struct ucx_ep *ue = uep_of(ep);

		list = ue->next_rx;
		ue->on_rx = false;
		n += ucx_rx_deliver(ep);
		if (ue->rxq && !ue->on_rx) { /* a rendezvous still arriving */
			ue->on_rx = true;
			ue->next_rx = uc->rx_list;
			uc->rx_list = ep;
		}
	}
	for (uint32_t i = 0; i < uc->nfailed; i++) {
		struct wp_ep *ep = uc->failed[i];
		struct ucx_ep *ue = uep_of(ep);

		ep->io_inflight--;
		if (ue->err_seen || ep->state == WP_EPS_CLOSED)
			continue;
		ue->err_seen = true;
		n++;
		wp_log(ctx, WP_LOG_INFO, "ucx: connection error: %s", ucs_status_string(ue->err));
		wp_conn_fail(ep,
			     ep->state == WP_EPS_CONNECTING && (ue->err == UCS_ERR_UNREACHABLE ||
								ue->err == UCS_ERR_REJECTED ||
								ue->err == UCS_ERR_CONNECTION_RESET)
				     ? -ECONNREFUSED
				     : ucx_errno(ue->err));
	}
	uc->nfailed = 0;
	return n;
}

/* Progress until UCX has nothing more, then act. */
static int ucx_progress(struct wp_ctx *ctx)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	int n = 0;

	while (ucp_worker_progress(uc->w))
		n++;
	return n + ucx_after(ctx);
}

/* Did the callbacks record anything for ucx_after to act on? A
 * rendezvous still arriving is not work: its completion wakes the worker. */
static bool ucx_recorded(const struct ucx_ctx *uc)
{
	if (uc->nfailed)
		return true;
	for (unsigned i = 0; i < sizeof(uc->listeners) / sizeof(uc->listeners[0]); i++)
		if (uc->listeners[i] && uep_of(uc->listeners[i])->creq &&
		    !uc->listeners[i]->rx_paused)
			return true;
	for (const struct wp_ep *ep = uc->rx_list; ep; ep = uep_of(ep)->next_rx)
		for (const struct ucx_rx *r = uep_of(ep)->rxq; r; r = r->next) {
			if (r == uep_of(ep)->rxq && r->ready)
				return true;
			if (r->kind == RX_RNDV && !r->started)
				return true;
		}
	return false;
}

static int ucx_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	uint64_t end;
	int n, ret;
	ucs_status_t st;

	n = ucx_progress(ctx);
	if (n || timeout_us == 0)
		return n;
	if (ctx->o.busy_poll) {
		end = timeout_us < 0 ? UINT64_MAX : wp_now_ns() + (uint64_t)timeout_us * 1000;
		while (!(n = ucx_progress(ctx)) && wp_now_ns() < end)
			__builtin_ia32_pause();
		return n;
	}
	if (uc->sends && (timeout_us < 0 || timeout_us > UCX_SEND_WAIT_US))
		timeout_us = UCX_SEND_WAIT_US;
	/* Arm, then sleep: BUSY means events came in since the progress. */
	st = ucp_worker_arm(uc->w);
	if (st == UCS_ERR_BUSY)
		return ucx_progress(ctx);
	if (st != UCS_OK)
		return ucx_errno(st);
	ret = wp_epoll_wait(ctx, uc->ev, UCX_EVENTS, timeout_us);
	if (ret < 0)
		return ret;
	return ucx_progress(ctx);
}

/* Embedding: never act here (no callback may run inside wp_ctx_arm):
 * progress UCX, whose callbacks only record, and say -EAGAIN if they did. */
static int ucx_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	ucs_status_t st;
	int n = 0;

	while (ucp_worker_progress(uc->w))
		n++;
	if (n || ucx_recorded(uc))
		return -EAGAIN;
	st = ucp_worker_arm(uc->w);
	if (st == UCS_ERR_BUSY)
		return -EAGAIN;
	if (uc->sends && timeout_us && (*timeout_us < 0 || *timeout_us > UCX_SEND_WAIT_US))
		*timeout_us = UCX_SEND_WAIT_US;
	return st == UCS_OK ? 0 : ucx_errno(st);
}

static int ucx_init(struct wp_ctx *ctx)
{
	ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
				   .thread_mode = UCS_THREAD_MODE_SINGLE };
	struct ucx_ctx *uc;
	char why[160];
	ucs_status_t st;
	int ret;

	ret = wp_epoll_bk_init(ctx, sizeof(struct ucx_ctx));
	if (ret < 0)
		return ret;
	uc = uctx_of(ctx);
	uc->efd = -1;
	uc->inflight.next = uc->inflight.prev = &uc->inflight;
	snprintf(uc->need, sizeof(uc->need), "%s", ctx->o.ucx_need);
	ret = ucx_open(&uc->uctx, why, sizeof(why));
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "ucx: %s", why);
		goto out_epoll;
	}
	st = ucp_worker_create(uc->uctx, &wp, &uc->w);
	if (st != UCS_OK) {
		wp_log(ctx, WP_LOG_ERR, "ucx: ucp_worker_create: %s", ucs_status_string(st));
		ret = ucx_errno(st);
		goto out_cleanup;
	}
	for (unsigned id = 0; id < UCX_AM__COUNT; id++) {
		ucp_am_handler_param_t ah = { .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
							    UCP_AM_HANDLER_PARAM_FIELD_CB |
							    UCP_AM_HANDLER_PARAM_FIELD_ARG |
							    UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
					      .id = id,
					      .flags = UCP_AM_FLAG_WHOLE_MSG,
					      .cb = ucx_am_cbs[id],
					      .arg = ctx };

		st = ucp_worker_set_am_recv_handler(uc->w, &ah);
		if (st != UCS_OK) {
			wp_log(ctx, WP_LOG_ERR, "ucx: ucp_worker_set_am_recv_handler: %s",
			       ucs_status_string(st));
			ret = ucx_errno(st);
			goto out_worker;
		}
	}
	st = ucp_worker_get_efd(uc->w, &uc->efd);
	if (st != UCS_OK) {
		wp_log(ctx, WP_LOG_ERR, "ucx: ucp_worker_get_efd: %s", ucs_status_string(st));
		ret = ucx_errno(st);
		goto out_worker;
	}
	ret = wp_epoll_ctl(ctx, EPOLL_CTL_ADD, uc->efd, EPOLLIN, 0);
	if (ret < 0)
		goto out_worker;
	return 0;

out_worker:
	ucp_worker_destroy(uc->w);
out_cleanup:
	ucp_cleanup(uc->uctx);
out_epoll:
	wp_epoll_bk_fini(ctx);
	return ret;
}

static void ucx_close_cb(void *request, ucs_status_t status, void *user_data)
{
	struct wp_ep *ep = user_data;

	ep->io_inflight--;
	req_done(&uep_of(ep)->close_rq);
}

static void ucx_close_abort(struct ucx_req *rq)
{
	ucx_close_cb(rq->handle, UCS_ERR_CANCELED, ucx_container(rq, struct ucx_ep, close_rq)->ep);
}

/* Everything ep holds from UCX but its ucp endpoint: queued messages,
 * rkeys, waiting connection requests. Idempotent. */
static void ucx_ep_release(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);

	if (!uc)
		return;
	while (ue->rxq) {
		struct ucx_rx *r = ue->rxq;

		ue->rxq = r->next;
		if (r->kind == RX_RNDV && r->started && !r->ready) {
			/* A rendezvous receive in flight: UCX writes into r->buf
			 * until its callback runs. Cancel it; the callback frees
			 * both (the endpoint stays until then: io_inflight). */
			r->orphan = true;
			ucp_request_cancel(uc->w, r->rq.handle);
			continue;
		}
		rx_release(uc, r);
	}
	ue->rxq_tail = &ue->rxq;
	while (ue->rkeys)
		rrkey_drop(ue, ue->rkeys->id);
	while (ue->creq) {
		struct ucx_connreq *c = ue->creq;

		ue->creq = c->next;
		if (ue->lst)
			ucp_listener_reject(ue->lst, c->req);
		free(c);
	}
	ue->creq_tail = &ue->creq;
	ue->ncreq = 0;
}

static void ucx_close(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);

	if (uc->last_ep == ep)
		uc->last_ep = NULL;
	if (ue->on_rx) { /* freed once its owner lets go: off the list now */
		for (struct wp_ep **pp = &uc->rx_list; *pp; pp = &uep_of(*pp)->next_rx)
			if (*pp == ep) {
				*pp = ue->next_rx;
				break;
			}
		ue->on_rx = false;
	}
	if (ue->lst) {
		ucx_ep_release(ep); /* rejects the waiting requests */
		ucp_listener_destroy(ue->lst);
		ue->lst = NULL;
		for (unsigned i = 0; i < sizeof(uc->listeners) / sizeof(uc->listeners[0]); i++)
			if (uc->listeners[i] == ep)
				uc->listeners[i] = NULL;
	}
	if (ue->uep && !ue->closed) {
		bool force = ue->err != UCS_OK;
		ucp_request_param_t rp = {
			.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
					UCP_OP_ATTR_FIELD_FLAGS,
			.cb.send = ucx_close_cb,
			.user_data = ep,
			.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
		};
		ucs_status_ptr_t sp;

		/* Orderly: the peer sees EOF after what we sent. */
		if (!force && ep->state != WP_EPS_CONNECTING)
			ucx_ctl_send(ep, UCX_AM_BYE, NULL, 0, NULL, 0);
		/* Messages queued but not delivered go now, while the worker
		 * that holds their data is sure to exist. */
		ucx_ep_release(ep);
		ue->closed = true;
		sp = ucp_ep_close_nbx(ue->uep, &rp);
		if (sp && !UCS_PTR_IS_ERR(sp)) {
			req_hold(ep->ctx, &ue->close_rq, sp, ucx_close_abort);
			ep->io_inflight++;
		}
	}
}

static void ucx_fini(struct wp_ctx *ctx)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	uint64_t end = wp_now_ns() + UCX_CLOSE_WAIT_NS;
	bool busy;

	if (!uc)
		return;
	/* Closes and sends still in flight: at most 1 s, as on uring. */
	do {
		busy = false;
		while (ucp_worker_progress(uc->w))
			;
		for (uint32_t i = 0; i < uc->nfailed; i++)
			uc->failed[i]->io_inflight--;
		uc->nfailed = 0;
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
			struct ucx_ep *ue = uep_of(ep);

			if ((ue->uep && !ue->closed) || ue->lst) {
				ue->err = UCS_ERR_CANCELED;
				ucx_close(ep);
			}
			busy |= ep->io_inflight != 0;
		}
	} while (busy && wp_now_ns() < end);
	if (busy)
		wp_log(ctx, WP_LOG_WARN,
		       "ucx: requests still in flight after 1 s at destroy: aborted");
	while (uc->inflight.next != &uc->inflight)
		uc->inflight.next->abort(uc->inflight.next);
	wp_ctx_run_deferred(ctx);
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		ucx_ep_release(ep);
		uep_of(ep)->uep = NULL;
		ep->io_inflight = 0;
	}
	wp_epoll_ctl(ctx, EPOLL_CTL_DEL, uc->efd, 0, 0);
	ucp_worker_destroy(uc->w);
	for (uint32_t i = 0; i < uc->nmh; i++) {
		if (uc->mh[i].rkey_buf)
			ucp_rkey_buffer_release(uc->mh[i].rkey_buf);
		if (uc->mh[i].memh)
			ucp_mem_unmap(uc->uctx, uc->mh[i].memh);
	}
	ucp_cleanup(uc->uctx);
	free(uc->mh);
	free(uc->failed);
	while (uc->sfree) {
		struct ucx_sreq *s = uc->sfree;

		uc->sfree = s->next;
		free(s);
	}
	wp_epoll_bk_fini(ctx);
}

static void ucx_ep_init(struct wp_ep *ep)
{
	struct ucx_ep *ue = uep_of(ep);

	ue->rxq_tail = &ue->rxq;
	ue->creq_tail = &ue->creq;
	ue->ep = ep;
}

static void ucx_ep_free(struct wp_ep *ep)
{
	struct ucx_ep *ue = uep_of(ep);

	if (ep->ctx->bk && !ue->closed && (ue->uep || ue->lst))
		ucx_close(ep); /* a failed listen or connect */
	if (ep->ctx->bk)
		ucx_ep_release(ep);
}

static int ucx_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	ucp_listener_params_t lp = {
		.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
			      UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.sockaddr = { .addr = sa, .addrlen = salen },
		.conn_handler = { .cb = ucx_conn_cb, .arg = ep },
	};
	ucp_listener_attr_t la = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
	ucs_status_t st;

	if (ep->ctx->guard) {
		wp_log(ep->ctx, WP_LOG_ERR,
		       "ucx: authentication v2 runs on the stream paths; ucx has no records");
		return -EOPNOTSUPP;
	}
	st = ucp_listener_create(uc->w, &lp, &ue->lst);
	if (st != UCS_OK) {
		ue->lst = NULL;
		return st == UCS_ERR_BUSY ? -EADDRINUSE : ucx_errno(st);
	}
	if (ucp_listener_query(ue->lst, &la) == UCS_OK)
		ep->local_port = ntohs(la.sockaddr.ss_family == AF_INET6
					       ? ((struct sockaddr_in6 *)&la.sockaddr)->sin6_port
					       : ((struct sockaddr_in *)&la.sockaddr)->sin_port);
	ep->state = WP_EPS_LISTEN;
	return 0;
}

static int ucx_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	ucp_ep_params_t p = ep_params(ep);
	ucs_status_t st;

	p.field_mask |= UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
	p.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
	p.sockaddr.addr = sa;
	p.sockaddr.addrlen = salen;
	st = ucp_ep_create(uc->w, &p, &uep_of(ep)->uep);
	if (st != UCS_OK) {
		uep_of(ep)->uep = NULL;
		return ucx_errno(st);
	}
	ep->state = WP_EPS_CONNECTING; /* open at the acceptor's HELLO */
	return 0;
}

static void ucx_rx_pause(struct wp_ep *ep, bool pause)
{
	/* Listeners only: connection requests wait in our queue (UCX keeps
	 * them) until accepting resumes. Frames arrive whole: a connection
	 * needs no assembly memory, so there is nothing to stop. */
	if (ep->state == WP_EPS_LISTEN && !pause && uep_of(ep)->creq) {
		struct ucx_ctx *uc = uctx_of(ep->ctx);

		for (unsigned i = 0; i < sizeof(uc->listeners) / sizeof(uc->listeners[0]); i++)
			if (!uc->listeners[i] || uc->listeners[i] == ep) {
				uc->listeners[i] = ep;
				break;
			}
	}
}

static void ucx_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	const struct ucx_ep *first = NULL;
	int nconn = 0, nmet = 0;
	char bad[32] = "";

	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct ucx_ep *ue = uep_of(ep);

		if (ep->state != WP_EPS_OPEN)
			continue;
		ucx_lanes(ep); /* UCX may have reconfigured since (wireup) */
		nconn++;
		if (!first)
			first = ue;
		nmet += need_met(ctx, ue, bad, sizeof(bad));
	}
	snprintf(buf, len,
		 "UCX %s: frames as active messages, bulk transfers as RMA put/get; worker %s; "
		 "%s; %d connection(s)%s%s%s",
		 ucp_get_version_string(),
		 ctx->o.busy_poll ? "busy-polled" : "armed in epoll (ucp_worker_get_efd + arm)",
		 getenv("UCX_MM_ERROR_HANDLING") && strchr("yY1", *getenv("UCX_MM_ERROR_HANDLING"))
			 ? "UCX_MM_ERROR_HANDLING=y: shared memory between processes allowed"
			 : "no shared-memory lanes (UCX 1.13 keeps them off endpoints with "
			   "peer-failure handling; UCX_MM_ERROR_HANDLING=y allows them)",
		 nconn, first ? "; lanes UCX selected: " : "", first ? first->lanes : "",
		 first ? "" : " (lanes are reported once one is open)");
	if (*uc->need)
		snprintf(buf + strlen(buf), len - strlen(buf),
			 "; ucx_need=%s: %s (%d of %d connections)", uc->need,
			 nmet == nconn ? "met" : "NOT met, UCX chose another transport", nmet,
			 nconn);
	snprintf(buf + strlen(buf), len - strlen(buf),
		 "; received: %llu messages, %llu held in place, %llu rendezvous, %llu bytes "
		 "copied; RMA: %llu ops, %llu bytes",
		 (unsigned long long)uc->am_rx, (unsigned long long)uc->am_held,
		 (unsigned long long)uc->am_rndv, (unsigned long long)uc->am_copied,
		 (unsigned long long)uc->rma_ops, (unsigned long long)uc->rma_bytes);
}

const struct wp_backend_ops wp_ucx_ops = {
	.name = "ucx",
	.caps = WP_CAP_BUSY_POLL,
	.fast = &ucx_fast,
	.available = ucx_available,
	.probe = ucx_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = ucx_init,
	.fini = ucx_fini,
	.listen = ucx_listen,
	.connect = ucx_connect,
	.close = ucx_close,
	.poll = ucx_poll,
	.explain = ucx_explain,
	.mem_register = ucx_mem_register,
	.mem_unregister = ucx_mem_unregister,
	.ep_size = sizeof(struct ucx_ep),
	.ep_init = ucx_ep_init,
	.ep_free = ucx_ep_free,
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = wp_local_uri_inet,
	.mr_exported = ucx_mr_exported,
	.xfer_direct = ucx_xfer_direct,
	.pools = wp_no_pools,
	.rx_pause = ucx_rx_pause,
	.fd = wp_epoll_fd, /* the worker's efd is in it */
	.arm = ucx_arm,
};
