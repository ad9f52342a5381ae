/* Map layouts shared by steer.bpf.c and the daemon (src/control/bpf).
 * Plain C only: this header is compiled by clang -target bpf and by g++.
 * The C++ side static_asserts the sizes; never keep a second copy. */
#ifndef XDPMESH_STEER_SHARED_H
#define XDPMESH_STEER_SHARED_H

#include <linux/types.h>

#define XDPMESH_MAX_IFACES 64
#define XDPMESH_MAX_QUEUES 64
#define XDPMESH_MAX_TUNNEL_PORTS 4
#define XDPMESH_MAX_LOCAL_PREFIXES 65536

/* What the program does on one interface. */
enum xdpmesh_iface_role {
	XDPMESH_ROLE_NONE = 0,   /* not ours: pass everything */
	XDPMESH_ROLE_UPLINK = 1, /* tunnel ports and local pod addresses -> XSK */
	XDPMESH_ROLE_POD = 2,    /* all IPv4/IPv6/ARP -> XSK */
};

/* Value of the iface_config map, keyed by ifindex. */
struct xdpmesh_iface_config {
	__u32 role;              /* enum xdpmesh_iface_role */
	__u32 xsk_base;          /* key of queue 0 of this interface in xsks */
	__u16 tunnel_ports[XDPMESH_MAX_TUNNEL_PORTS]; /* network byte order, 0 = unused */
	__u32 node_ip4; /* network byte order: tunnel packets must be addressed to it */
	__u16 wg_port;  /* network byte order, 0 = no WireGuard: its data messages -> XSK,
			 * handshakes and cookies -> the kernel (the daemon's socket) */
	__u8 esp;       /* 1: ESP (IP protocol 50) to node_ip4 -> XSK */
	__u8 pad;
};

/* Keys of the local_prefixes4/6 LPM tries (value: __u32 ifindex of the
 * host-side interface the endpoint is behind) and host_prefixes4/6 (value 1). */
struct xdpmesh_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};
struct xdpmesh_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Key of the frontends4 hash: a service exposed on an address of this node
 * (gateway frontends), whose TCP/UDP traffic the engine must get. */
struct xdpmesh_frontend_key {
	__u32 addr;  /* network order */
	__u16 port;  /* network order */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad;
};
#define XDPMESH_MAX_FRONTENDS 4096

/* Index of the per-CPU action counters. One table, names in the same order
 * (xdpmesh_steer_action_names in the daemon). */
#define XDPMESH_FOREACH_STEER_ACTION(X)                              \
	X(PASS_NOT_OURS, "pass_not_ours")                              \
	X(PASS_OTHER, "pass_other")                                    \
	X(PASS_MALFORMED, "pass_malformed")                            \
	X(PASS_HOST, "pass_host")                                      \
	X(STEER_TUNNEL, "steer_tunnel")                                \
	X(STEER_LOCAL_DST, "steer_local_dst")                          \
	X(STEER_POD, "steer_pod")                                      \
	X(STEER_FRONTEND, "steer_frontend")                            \
	X(STEER_NO_SOCKET, "steer_no_socket")                          \
	X(STEER_WIREGUARD, "steer_wireguard")                          \
	X(PASS_WIREGUARD_HANDSHAKE, "pass_wireguard_handshake")        \
	X(STEER_ESP, "steer_esp")

enum xdpmesh_steer_action {
#define XDPMESH_X_ENUM(name, str) XDPMESH_ACT_##name,
	XDPMESH_FOREACH_STEER_ACTION(XDPMESH_X_ENUM)
#undef XDPMESH_X_ENUM
	XDPMESH_ACT__COUNT
};

#endif
