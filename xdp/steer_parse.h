/* Bounds-checked header parsing for the steering program (BPF only). */
#ifndef XDPMESH_STEER_PARSE_H
#define XDPMESH_STEER_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

struct steer_hdrs {
	__u16 eth_proto;   /* host order */
	__u8 l4_proto;     /* IPPROTO_* or 0 */
	__u8 is_fragment;  /* IPv4 MF set or offset non-zero */
	__u16 udp_dport;   /* network order, 0 if not UDP */
	__u16 l4_dport;    /* network order, UDP or TCP destination port, 0 otherwise */
	__u16 arp_op;      /* host order, 0 if not ARP */
	__u8 icmp6_type;   /* 0 if not ICMPv6 */
	__u8 udp_first;    /* first byte of the UDP payload (WireGuard's message type), 0 if none */
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
};

/* Returns 0 when the headers needed for a decision are present, -1 when the
 * frame is too short for what its headers announce. */
static __always_inline int steer_parse(void *data, void *data_end, struct steer_hdrs *h)
{
	struct ethhdr *eth = data;
	void *cur = eth + 1;

	if (cur > data_end)
		return -1;
	h->eth_proto = bpf_ntohs(eth->h_proto);
	h->l4_proto = 0;
	h->udp_dport = 0;
	h->l4_dport = 0;
	h->ip4 = 0;
	h->ip6 = 0;
	h->is_fragment = 0;
	h->arp_op = 0;
	h->icmp6_type = 0;
	h->udp_first = 0;

	/* VLAN-tagged frames are the kernel's: the engine forwards untagged only. */
	if (h->eth_proto == ETH_P_IP) {
		struct iphdr *ip = cur;
		if ((void *)(ip + 1) > data_end)
			return -1;
		if (ip->ihl < 5)
			return -1;
		h->ip4 = ip;
		h->l4_proto = ip->protocol;
		/* A fragmented datagram is the kernel's to reassemble; only a
		 * first fragment would carry the UDP header anyway. */
		if (ip->frag_off & bpf_htons(0x3fff)) {
			h->is_fragment = 1;
			return 0;
		}
		cur = (void *)ip + ip->ihl * 4;
	} else if (h->eth_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = cur;
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		h->ip6 = ip6;
		h->l4_proto = ip6->nexthdr; /* tunnels never use extension headers here */
		cur = ip6 + 1;
	} else if (h->eth_proto == ETH_P_ARP) {
		__be16 *op = cur + 6;
		if ((void *)(op + 1) > data_end)
			return -1;
		h->arp_op = bpf_ntohs(*op);
		return 0;
	} else {
		return 0;
	}

	if (h->ip6 && h->l4_proto == IPPROTO_ICMPV6) {
		__u8 *type = cur;
		if ((void *)(type + 1) > data_end)
			return -1;
		h->icmp6_type = *type;
		return 0;
	}

	if (h->l4_proto == IPPROTO_UDP) {
		struct udphdr *udp = cur;
		if ((void *)(udp + 1) > data_end)
			return -1;
		h->udp_dport = udp->dest;
		if ((void *)(udp + 1) + 1 <= data_end)
			h->udp_first = *(__u8 *)(udp + 1);
		h->l4_dport = udp->dest;
	} else if (h->l4_proto == IPPROTO_TCP && !h->is_fragment) {
		struct tcphdr *tcp = cur;
		if ((void *)(tcp + 1) > data_end)
			return -1;
		h->l4_dport = tcp->dest;
	}
	return 0;
}

#endif
