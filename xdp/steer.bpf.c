/* xdpmesh steering program: decides per frame whether the poll-mode engine
 * (an AF_XDP socket of this rx queue) or the kernel gets it. The daemon owns
 * every map; the program holds no policy of its own. No CO-RE: no kernel BTF. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "steer.shared.h"
#include "steer_parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XDPMESH_MAX_IFACES * XDPMESH_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPMESH_MAX_IFACES);
	__type(key, __u32); /* ifindex */
	__type(value, struct xdpmesh_iface_config);
} iface_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XDPMESH_MAX_LOCAL_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpmesh_lpm4_key);
	__type(value, __u32);
} local_prefixes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XDPMESH_MAX_LOCAL_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpmesh_lpm6_key);
	__type(value, __u32);
} local_prefixes6 SEC(".maps");

/* The node's own addresses: pod traffic to them is the kernel's. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpmesh_lpm4_key);
	__type(value, __u32);
} host_prefixes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpmesh_lpm6_key);
	__type(value, __u32);
} host_prefixes6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPMESH_MAX_FRONTENDS);
	__type(key, struct xdpmesh_frontend_key);
	__type(value, __u32);
} frontends4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPMESH_ACT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} action_counters SEC(".maps");

static __always_inline int count(__u32 action, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&action_counters, &action);
	if (c)
		*c += 1;
	return verdict;
}

static __always_inline int steer(struct xdp_md *ctx, const struct xdpmesh_iface_config *cfg,
				 __u32 action)
{
	__u32 key = cfg->xsk_base + ctx->rx_queue_index;
	count(action, 0);
	/* No socket bound yet (start-up) -> the kernel keeps the frame. */
	int rc = bpf_redirect_map(&xsks, key, XDP_PASS);
	if (rc != XDP_REDIRECT)
		return count(XDPMESH_ACT_STEER_NO_SOCKET, rc);
	return rc;
}

static __always_inline int is_tunnel_port(const struct xdpmesh_iface_config *cfg, __u16 port)
{
#pragma unroll
	for (int i = 0; i < XDPMESH_MAX_TUNNEL_PORTS; i++)
		if (cfg->tunnel_ports[i] && cfg->tunnel_ports[i] == port)
			return 1;
	return 0;
}

static __always_inline int dst_in(const struct steer_hdrs *h, void *map4, void *map6)
{
	if (h->ip4) {
		struct xdpmesh_lpm4_key k = {.prefixlen = 32};
		__builtin_memcpy(k.addr, &h->ip4->daddr, 4);
		return bpf_map_lookup_elem(map4, &k) != 0;
	}
	if (h->ip6) {
		struct xdpmesh_lpm6_key k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, &h->ip6->daddr, 16);
		return bpf_map_lookup_elem(map6, &k) != 0;
	}
	return 0;
}

static __always_inline int link_scoped6(const struct ipv6hdr *ip6)
{
	return ip6->daddr.in6_u.u6_addr8[0] == 0xff ||
	       (ip6->daddr.in6_u.u6_addr8[0] == 0xfe && (ip6->daddr.in6_u.u6_addr8[1] & 0xc0) == 0x80);
}

/* The source is an endpoint behind this very interface (local_prefixes values
 * are the host-side ifindex): no pod reaches the host with another's address. */
static __always_inline int src_is_pod_of(const struct steer_hdrs *h, __u32 ifindex)
{
	__u32 *owner = 0;
	if (h->ip4) {
		struct xdpmesh_lpm4_key k = {.prefixlen = 32};
		__builtin_memcpy(k.addr, &h->ip4->saddr, 4);
		owner = bpf_map_lookup_elem(&local_prefixes4, &k);
	} else if (h->ip6) {
		struct xdpmesh_lpm6_key k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, &h->ip6->saddr, 16);
		owner = bpf_map_lookup_elem(&local_prefixes6, &k);
	}
	return owner && *owner == ifindex;
}

SEC("xdp")
int xdpmesh_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct steer_hdrs h;

	const struct xdpmesh_iface_config *cfg = bpf_map_lookup_elem(&iface_config, &ifindex);
	if (!cfg || cfg->role == XDPMESH_ROLE_NONE)
		return count(XDPMESH_ACT_PASS_NOT_OURS, XDP_PASS);

	if (steer_parse(data, data_end, &h) < 0) {
		/* A pod's malformed frame is the engine's to count and drop; on
		 * the uplink the kernel owns anything we do not recognise. */
		if (cfg->role == XDPMESH_ROLE_POD)
			return steer(ctx, cfg, XDPMESH_ACT_STEER_POD);
		return count(XDPMESH_ACT_PASS_MALFORMED, XDP_PASS);
	}

	if (cfg->role == XDPMESH_ROLE_POD) {
		/* The node's own stack talks to pods directly: the pods' answers
		 * to the kernel's neighbor resolution (ARP reply; a neighbor
		 * advertisement, which is link-scoped with hop limit 255) and
		 * traffic to host addresses from the pod's own address. */
		if (h.arp_op == 2 || (h.ip6 && h.icmp6_type == 136 && h.ip6->hop_limit == 255 && link_scoped6(h.ip6)))
			return count(XDPMESH_ACT_PASS_HOST, XDP_PASS);
		if (dst_in(&h, &host_prefixes4, &host_prefixes6) && src_is_pod_of(&h, ifindex))
			return count(XDPMESH_ACT_PASS_HOST, XDP_PASS);
		if (h.eth_proto == ETH_P_IP || h.eth_proto == ETH_P_IPV6 || h.eth_proto == ETH_P_ARP)
			return steer(ctx, cfg, XDPMESH_ACT_STEER_POD);
		return count(XDPMESH_ACT_PASS_OTHER, XDP_PASS);
	}

	/* Uplink: tunnel traffic is unfragmented IPv4 UDP to our node IP and
	 * port; the same port on another address (a VIP, a routed packet) or
	 * any fragment stays with the kernel. */
	if (h.ip4 && !h.is_fragment && h.ip4->daddr == cfg->node_ip4) {
		if (h.l4_proto == IPPROTO_UDP && h.udp_dport) {
			if (is_tunnel_port(cfg, h.udp_dport))
				return steer(ctx, cfg, XDPMESH_ACT_STEER_TUNNEL);
			/* WireGuard: transport data (type 4) is the workers';
			 * handshakes and cookie replies go to the daemon's socket. */
			if (cfg->wg_port && h.udp_dport == cfg->wg_port) {
				if (h.udp_first == 4)
					return steer(ctx, cfg, XDPMESH_ACT_STEER_WIREGUARD);
				return count(XDPMESH_ACT_PASS_WIREGUARD_HANDSHAKE, XDP_PASS);
			}
		}
		if (cfg->esp && h.l4_proto == IPPROTO_ESP)
			return steer(ctx, cfg, XDPMESH_ACT_STEER_ESP);
	}
	if (dst_in(&h, &local_prefixes4, &local_prefixes6))
		return steer(ctx, cfg, XDPMESH_ACT_STEER_LOCAL_DST);
	/* A service exposed on this node's address (gateway): its port only;
	 * SSH, etcd and the rest on the same address stay with the kernel. */
	if (h.ip4 && !h.is_fragment && h.l4_dport &&
	    (h.l4_proto == IPPROTO_TCP || h.l4_proto == IPPROTO_UDP)) {
		struct xdpmesh_frontend_key fk = {.addr = h.ip4->daddr, .port = h.l4_dport, .proto = h.l4_proto};
		if (bpf_map_lookup_elem(&frontends4, &fk))
			return steer(ctx, cfg, XDPMESH_ACT_STEER_FRONTEND);
	}
	return count(XDPMESH_ACT_PASS_OTHER, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
