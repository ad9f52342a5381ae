#include "control/daemon/daemon.h"

#include "control/mesh/etcd_config_file.h"
#include "control/mesh/mesh_reflector.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace xdpmesh {

namespace json = boost::json;
namespace asio = boost::asio;

std::string read_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

namespace {

// Largest MTU whose frames fit one XDP buffer (4 KiB page minus XDP headroom
// and skb_shared_info) with our tunnel headers.
constexpr uint32_t kMaxXdpMtu = 3400;
}  // namespace

Daemon::Daemon(Config cfg) : cfg_(std::move(cfg)) {
  mesh_ = MeshState::from_config(cfg_);

  // Interfaces: existence, MTU, queue count, all checked before anything starts.
  links_.push_back(read_link(cfg_.uplink));
  for (const PodInterfaceConfig& p : cfg_.pods) links_.push_back(read_link(p.interface));
  for (std::size_t i = 0; i < links_.size(); ++i) {
    const std::string& name = i == 0 ? cfg_.uplink : cfg_.pods[i - 1].interface;
    if (links_[i].mtu > kMaxXdpMtu)
      throw std::runtime_error(fmt::format("{}: MTU {} is too large for XDP (at most {}); lower it: ip link set dev {} "
                                           "mtu 1500",
                                           name, links_[i].mtu, kMaxXdpMtu, name));
    // Every rx queue needs a worker: traffic steered on a queue without a
    // socket would fall back to the kernel, bypassing the engine.
    if (links_[i].rx_queues != cfg_.queues)
      throw std::runtime_error(fmt::format("{} has {} rx queue(s) but dataplane.queues is {}; they must match: set "
                                           "dataplane.queues: {} or change the queues (ethtool -L {} combined {}, or "
                                           "numrxqueues and numtxqueues for veth)",
                                           name, links_[i].rx_queues, cfg_.queues, links_[i].rx_queues, name,
                                           cfg_.queues));
  }
  for (std::size_t i = 0; i < links_.size(); ++i)
    locks_.push_back(std::make_unique<InterfaceLock>(i == 0 ? cfg_.uplink : cfg_.pods[i - 1].interface,
                                                     links_[i].ifindex));
  facts_.uplink_mac = links_[0].mac;
  facts_.uplink_mtu = links_[0].mtu;
  if (cfg_.uplink_ip)
    facts_.node_ip = *cfg_.uplink_ip;
  else if (links_[0].first_ipv4)
    facts_.node_ip = *links_[0].first_ipv4;
  else
    throw std::runtime_error(fmt::format("uplink {} has no IPv4 address; add one (ip addr add ... dev {}) or set "
                                         "uplink.ip in {}",
                                         cfg_.uplink, cfg_.uplink, cfg_.source));
  // The node's own addresses: no endpoint may use one, and pods reach them
  // through the kernel (host map below).
  const LocalAddresses host = local_addresses();
  {
    for (const PodInterfaceConfig& p : cfg_.pods)
      for (const LocalEndpointConfig& e : p.endpoints) {
        const bool v4_clash = e.ipv4 && (e.ipv4->be == facts_.node_ip.be ||
                                         std::find(host.v4.begin(), host.v4.end(), *e.ipv4) != host.v4.end());
        const bool v6_clash = e.ipv6 && std::find(host.v6.begin(), host.v6.end(), *e.ipv6) != host.v6.end();
        if (v4_clash || v6_clash)
          throw std::runtime_error(fmt::format(
              "endpoint {} on {} uses an address of this node; the node's traffic (SSH, etcd) would go to the pod: "
              "give the pod another address",
              v4_clash ? format_ip4(*e.ipv4) : format_ip6(*e.ipv6), p.interface));
      }
  }
  if (facts_.uplink_mtu < 1280 + 50 + cfg_.encryption.overhead())
    throw std::runtime_error(fmt::format("uplink MTU {} leaves less than 1280 bytes for pods after the tunnel{} header",
                                         facts_.uplink_mtu, cfg_.encryption.overhead() ? " and encryption" : ""));
  for (std::size_t i = 0; i < links_.size(); ++i) {
    PortInfo pi;
    std::copy(links_[i].mac.begin(), links_[i].mac.end(), pi.mac);
    pi.role = i == 0 ? PortRole::uplink : PortRole::pod;
    pi.ifindex = links_[i].ifindex;
    facts_.ports.push_back(pi);
  }

  neighbors_ = std::make_unique<Neighbors>();
  qsbr_ = std::make_unique<Qsbr>(cfg_.queues);
  published_ = std::make_unique<Published<Snapshot>>(*qsbr_);
  builder_ = std::make_unique<SnapshotBuilder>(cfg_);
  steering_ = std::make_unique<SteeringProgram>(SteeringProgram::locate_object());
  start_encryption();

  // Maps first, sockets next, the XDP hook last: until it is attached the
  // kernel keeps getting everything, as before we started.
  const uint16_t tport = cfg_.effective_tunnel_port();
  for (std::size_t i = 0; i < links_.size(); ++i)
    steering_->configure_iface(links_[i].ifindex, i == 0 ? XDPMESH_ROLE_UPLINK : XDPMESH_ROLE_POD,
                               static_cast<uint32_t>(i * XDPMESH_MAX_QUEUES),
                               tport ? std::vector<uint16_t>{tport} : std::vector<uint16_t>{}, facts_.node_ip,
                               cfg_.encryption.mode == EncryptionMode::wireguard ? cfg_.encryption.wireguard_port : 0,
                               cfg_.encryption.mode == EncryptionMode::ipsec);
  for (std::size_t i = 0; i < cfg_.pods.size(); ++i)
    for (const LocalEndpointConfig& e : cfg_.pods[i].endpoints) {
      if (e.ipv4) steering_->add_local_prefix(*e.ipv4, 32, links_[i + 1].ifindex);
      if (e.ipv6) steering_->add_local_prefix(*e.ipv6, 128, links_[i + 1].ifindex);
    }
  // Pods reach the node's own stack through the kernel: the steering program
  // passes their traffic to host addresses, and host routes lead back.
  for (const Ip4& a : host.v4) steering_->add_host_address(a);
  for (const Ip6& a : host.v6) steering_->add_host_address(a);
  for (const ServiceConfig& svc : cfg_.services)
    if (svc.gateway)
      for (const ServicePortConfig& p : svc.ports) steering_->add_frontend(facts_.node_ip, p.port, p.proto);
  pod_routes_ = std::make_unique<PodRoutes>();
  for (std::size_t i = 0; i < cfg_.pods.size(); ++i)
    for (const LocalEndpointConfig& e : cfg_.pods[i].endpoints) {
      if (e.ipv4) pod_routes_->add(links_[i + 1].ifindex, *e.ipv4);
      if (e.ipv6) pod_routes_->add(links_[i + 1].ifindex, *e.ipv6);
    }

  const BindMode bind = cfg_.bind_mode == BindModePref::copy        ? BindMode::copy
                        : cfg_.bind_mode == BindModePref::zero_copy ? BindMode::zero_copy
                                                                    : BindMode::auto_;
  for (uint32_t q = 0; q < cfg_.queues; ++q) {
    // Sockets sharing a UMEM inherit the first one's mode: a zero-copy uplink
    // cannot share with veth pods. In auto mode, fall back to copy for all.
    auto make_ports = [&](BindMode mode, std::unique_ptr<Umem>& umem) {
      umem = std::make_unique<Umem>(cfg_.frames_per_worker);
      std::vector<std::unique_ptr<XskPort>> ports;
      for (std::size_t i = 0; i < links_.size(); ++i) {
        const std::string& name = i == 0 ? cfg_.uplink : cfg_.pods[i - 1].interface;
        ports.push_back(std::make_unique<XskPort>(*umem, name, q, mode, i == 0));
      }
      return ports;
    };
    std::unique_ptr<Umem> umem;
    std::vector<std::unique_ptr<XskPort>> ports;
    try {
      ports = make_ports(bind, umem);
    } catch (const std::runtime_error& e) {
      if (bind != BindMode::auto_) throw;
      spdlog::warn("worker {}: {}; binding every socket in copy mode", q, e.what());
      ports.clear();
      ports = make_ports(BindMode::copy, umem);
    }
    for (std::size_t i = 0; i < ports.size(); ++i)
      steering_->set_xsk(static_cast<uint32_t>(i * XDPMESH_MAX_QUEUES + q), ports[i]->fd());
    WorkerOptions wo;
    wo.id = q;
    wo.workers = cfg_.queues;
    wo.flows = cfg_.conntrack;
    workers_.push_back(std::make_unique<Worker>(wo, std::move(umem), std::move(ports), *published_, *qsbr_));
  }
  for (std::size_t i = 0; i < links_.size(); ++i)
    steering_->attach(i == 0 ? cfg_.uplink : cfg_.pods[i - 1].interface, links_[i].ifindex, cfg_.xdp_mode);

  resolve_next_hops();
  services_ = std::make_unique<ServiceManager>(cfg_, facts_.node_ip);
  load_policies(true);
  rebuild_now();
  api_ = std::make_unique<ApiServer>(io_, cfg_.api_socket);
  register_api();
  if (cfg_.clustermesh) start_clustermesh();
}

void Daemon::start_clustermesh() {
  const ClusterMeshConfig& cm = *cfg_.clustermesh;
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  if (!cm.config_dir.empty()) {
    RemoteClusterOptions opts;
    opts.status_check_interval = seconds(cm.status_check_interval);
    opts.heartbeat_timeout = seconds(cm.heartbeat_timeout);
    opts.failure_timeout = seconds(cm.failure_timeout);
    clustermesh_ = std::make_unique<ClusterMesh>(
        io_, cm.config_dir, cfg_.cluster_name, cfg_.cluster_id, opts, milliseconds(cm.poll_interval_ms),
        [this](const std::string& cluster) {
          return std::make_unique<MeshReflector>(cluster, mesh_, [this] { schedule_rebuild(); });
        });
    clustermesh_->start();
  }
  if (!cm.etcd_config.empty()) {
    etcd::ClientConfig etcd = load_etcd_config_file(cm.etcd_config);
    etcd.request_timeout = seconds(cm.request_timeout);
    OwnStateOptions o;
    o.cluster = cfg_.cluster_name;
    o.cluster_id = cfg_.cluster_id;
    o.node = cfg_.node_name;
    o.node_ip = facts_.node_ip;
    for (const Ipv4Prefix& p : cm.pod_cidrs4) o.pod_cidrs.push_back(IpcachePrefix::v4(p.addr, p.len));
    for (const Ipv6Prefix& p : cm.pod_cidrs6) o.pod_cidrs.push_back(IpcachePrefix::v6_(p.addr, p.len));
    o.boot_id = read_boot_id();
    o.lease_ttl_seconds = cm.lease_ttl;
    o.heartbeat_interval = seconds(cm.heartbeat_interval);
    o.services = services_->exported();
    if (!cm.pod_cidrs4.empty()) o.router_ip = router_ip(cm.pod_cidrs4.front());
    if (wireguard_) {
      o.wireguard_pub_key = wireguard_->public_key_base64();
      o.encryption_key = 255;  // Cilium's StaticEncryptKey
    }
    if (ipsec_) o.encryption_key = ipsec_->outbound_spi();  // the node's current SPI
    std::vector<OwnEndpoint> eps;
    std::vector<std::pair<std::size_t, std::size_t>> where;  // own endpoint -> (pod, endpoint)
    for (std::size_t i = 0; i < cfg_.pods.size(); ++i)
      for (std::size_t j = 0; j < cfg_.pods[i].endpoints.size(); ++j) {
        const LocalEndpointConfig& e = cfg_.pods[i].endpoints[j];
        OwnEndpoint oe;
        if (e.ipv4) oe.ips.push_back(IpcachePrefix::v4(*e.ipv4, 32));
        if (e.ipv6) oe.ips.push_back(IpcachePrefix::v6_(*e.ipv6, 128));
        oe.labels = cilium::labels_from_map(e.labels);
        oe.labels.push_back("k8s:io.kubernetes.pod.namespace=" + e.namespace_);
        oe.labels.push_back(std::string(cilium::kClusterLabel) + "=" + cfg_.cluster_name);
        oe.identity = e.identity;
        oe.namespace_ = e.namespace_;
        oe.pod_name = e.name;
        eps.push_back(std::move(oe));
        where.emplace_back(i, j);
      }
    own_state_ = std::make_shared<OwnState>(io_, std::move(etcd), std::move(o), std::move(eps),
                                            [this, where](std::size_t k, uint32_t id) {
                                              auto [i, j] = where.at(k);
                                              uint32_t& current = cfg_.pods[i].endpoints[j].identity;
                                              if (current == id) return;
                                              current = id;
                                              schedule_rebuild();
                                            });
    own_state_->start();
  }
}

void Daemon::resolve_new_tunnel_endpoints() {
  // Endpoints learnt at run time (etcd) are looked up once here; later
  // changes arrive as neighbor events or through the workers' slow path.
  bool changed = false;
  for (uint32_t ip : builder_->tunnel_endpoints()) {
    if (facts_.next_hop_macs.count(ip) || !resolution_attempted_.insert(ip).second) continue;
    auto nh = neighbors_->route_to(Ip4{ip});
    if (!nh || nh->oif != links_[0].ifindex) continue;
    if (auto mac = neighbors_->neighbor_mac(nh->oif, nh->via)) {
      facts_.next_hop_macs[ip] = *mac;
      changed = true;
    } else {
      neighbors_->request_resolution(nh->oif, nh->via);
    }
  }
  if (changed) schedule_rebuild();
}

Daemon::~Daemon() {
  stop_workers();
  api_.reset();
  if (steering_) steering_->detach_all();
  workers_.clear();  // sockets and UMEMs after the hook is gone
}

void Daemon::start_workers() {
  for (auto& w : workers_) threads_.emplace_back([wp = w.get()] { wp->run(); });
}

void Daemon::stop_workers() {
  for (auto& w : workers_) w->request_stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void Daemon::resolve_next_hops() {
  std::map<uint32_t, MacAddr> macs;
  std::set<uint32_t> endpoints;
  for (const auto& [k, n] : mesh_.nodes())
    if (n.ip.be) endpoints.insert(n.ip.be);
  mesh_.for_each_ipcache([&](const IpcachePrefix&, const IpcacheValue& v) {
    if (v.tunnel_endpoint) endpoints.insert(v.tunnel_endpoint->be);
  });
  endpoints.erase(facts_.node_ip.be);
  for (uint32_t ep : endpoints) {
    const Ip4 ip{ep};
    auto nh = neighbors_->route_to(ip);
    if (!nh) {
      spdlog::warn("no route to tunnel endpoint {}; traffic to it is dropped (neighbor_unresolved)", format_ip4(ip));
      continue;
    }
    if (nh->oif != links_[0].ifindex) {
      spdlog::warn("tunnel endpoint {} is routed via ifindex {}, not the uplink {}; traffic to it is dropped",
                   format_ip4(ip), nh->oif, cfg_.uplink);
      continue;
    }
    if (auto mac = neighbors_->neighbor_mac(nh->oif, nh->via))
      macs[ep] = *mac;
    else if (!neighbors_->request_resolution(nh->oif, nh->via))
      spdlog::warn("could not ask the kernel to resolve next hop {} of {}", format_ip4(nh->via), format_ip4(ip));
  }
  facts_.next_hop_macs = std::move(macs);
}

void Daemon::rebuild_now() {
  rebuild_pending_ = false;
  const auto t0 = std::chrono::steady_clock::now();
  auto snap = builder_->build(++version_, mesh_, mesh_.take_changes(), facts_);
  refresh_services_and_policy(*snap);
  refresh_encryption(*snap);
  pacer_.record(std::chrono::steady_clock::now() - t0);  // the build, not the grace period
  const bool new_tunnels = snap->tunnels.size() > 0 && builder_->last_stats().rebuilt_tunnel_chunks > 0;
  if (!published_->publish(std::move(snap)))
    spdlog::error("a worker did not pass a quiescent point within 5 s; the previous tables were kept alive");
  if (new_tunnels && neighbors_) resolve_new_tunnel_endpoints();
}

void Daemon::schedule_rebuild() {
  if (rebuild_pending_) return;
  rebuild_pending_ = true;
  // Coalesce bursts of changes into one publish.
  rebuild_timer_.expires_after(pacer_.delay());
  rebuild_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) rebuild_now();
  });
}

void Daemon::watch_neighbors() {
  neighbor_events_->async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    if (ec) return;
    const Neighbors::Changes changes = neighbors_->drain_events();
    if (changes.links) pod_routes_->reinstall();  // a device that went down lost its routes
    if (changes.neighbors_or_routes || changes.links) {
      auto before = facts_.next_hop_macs;
      resolve_next_hops();
      if (before != facts_.next_hop_macs) schedule_rebuild();
    }
    watch_neighbors();
  });
}

void Daemon::drain_slow_path() {
  slow_path_timer_.expires_after(std::chrono::milliseconds(20));
  slow_path_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    bool asked = false;
    const Snapshot* s = published_->load();
    for (auto& w : workers_) {
      uint32_t tunnel;
      while (w->neighbor_requests().pop(tunnel)) asked |= s && tunnel < s->tunnels.size();
    }
    // At most once a second: workers ask once per dropped packet, and a full
    // resolution walks every tunnel endpoint with netlink round trips.
    const auto now = std::chrono::steady_clock::now();
    if (asked && now - last_slow_path_resolve_ >= std::chrono::seconds(1)) {
      last_slow_path_resolve_ = now;
      auto before = facts_.next_hop_macs;
      resolve_next_hops();
      if (before != facts_.next_hop_macs) schedule_rebuild();
    }
    drain_slow_path();
  });
}

bool Daemon::healthy(std::vector<std::string>* problems) {
  bool ok = true;
  for (const AttachedIface& a : steering_->attached()) {
    if (!steering_->still_attached(a)) {
      ok = false;
      if (problems) problems->push_back(a.ifname + ": the steering program is no longer attached");
    }
  }
  // Sockets are in place before the program is attached, so a frame steered
  // to a queue without one means the queues changed under us (ethtool -L):
  // that traffic now bypasses the engine.
  if (const uint64_t orphaned = steering_->action_counters()[XDPMESH_ACT_STEER_NO_SOCKET]) {
    ok = false;
    if (problems)
      problems->push_back(fmt::format("{} frame(s) steered to rx queues without a worker socket; the interfaces' queue "
                                      "count no longer matches dataplane.queues: restart xdpmeshd",
                                      orphaned));
  }
  return ok;
}

int Daemon::run() {
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    io_.stop();
  });
  neighbor_events_ = std::make_unique<asio::posix::stream_descriptor>(io_, ::dup(neighbors_->event_fd()));
  watch_neighbors();
  drain_slow_path();
  poll_policies();
  poll_monitor();
  start_workers();  // workers inherit the blocked SIGINT/SIGTERM of main()
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);  // the signal_set handles them from here
  api_->start();
  spdlog::info("xdpmeshd {} node {}/{} up: uplink {} ({}), {} pod interface(s), {} worker(s), {} mode port {}",
               XDPMESH_VERSION, cfg_.cluster_name, cfg_.node_name, cfg_.uplink, format_ip4(facts_.node_ip),
               cfg_.pods.size(), workers_.size(), tunnel_mode_name(cfg_.tunnel_mode),
               cfg_.effective_tunnel_port());
  io_.run();
  if (clustermesh_) clustermesh_->stop();  // no drain: peers' entries stay valid across our restart
  if (own_state_) own_state_->stop();
  // A second signal during teardown must not kill us half-way (routes, XDP).
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // Hook first: from here the kernel gets the traffic, none is steered to
  // sockets that no worker empties any more.
  steering_->detach_all();
  stop_workers();
  return 0;
}

}  // namespace xdpmesh
